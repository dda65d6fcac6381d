/**
 * The typed Java client of Quiver and of any KServe v2 / Triton gRPC server: {@link io.quiver.client.QuiverClient}
 * (data plane), {@link io.quiver.client.ModelControlClient} (Quiver's control plane), typed tensors
 * ({@link io.quiver.client.Tensors}) and the one error type {@link io.quiver.client.QuiverException}.
 */
package io.quiver.client;
