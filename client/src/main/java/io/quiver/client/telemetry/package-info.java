/**
 * Optional OpenTelemetry hooks for the client: a {@link io.grpc.ClientInterceptor} that records a client span
 * and a duration per call and propagates W3C {@code traceparent}. Only this package touches OpenTelemetry's API,
 * which the client declares optional: an application that uses these classes brings its own OpenTelemetry.
 */
package io.quiver.client.telemetry;
