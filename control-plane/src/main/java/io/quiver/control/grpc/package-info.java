/** The {@code quiver.control.v1.ModelControl} gRPC service, its server on its own port, and the audit log. */
package io.quiver.control.grpc;
