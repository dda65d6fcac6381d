/** The bare grpc-java echo baseline: the same RPC and bytes as Quiver's ModelInfer, with no inference behind it. */
package io.quiver.bench.echo;
