package io.quiver.core;

/**
 * The canonical outcome of a failed operation. Each code maps to one gRPC status code and one HTTP
 * status (the mappers: {@code io.quiver.transport.GrpcErrors} for every gRPC port, {@code
 * io.quiver.server.http.HttpErrors} for REST; the names here are gRPC's).
 */
public enum ErrorCode {
  INVALID_ARGUMENT,
  NOT_FOUND,
  ALREADY_EXISTS,
  FAILED_PRECONDITION,
  UNAVAILABLE,
  RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED,
  CANCELLED,
  UNIMPLEMENTED,
  INTERNAL,
  /** No credential, or none that is valid (HTTP 401). */
  UNAUTHENTICATED,
  /** A valid credential whose roles do not allow the operation (HTTP 403). */
  PERMISSION_DENIED
}
