package io.quiver.core;

/**
 * The canonical outcome of a failed operation. Each code maps to one gRPC status code and one HTTP
 * status (the mappers live in the server module; the names here are gRPC's).
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
  INTERNAL
}
