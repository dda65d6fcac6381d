package io.quiver.server.http;

import io.netty.handler.codec.http.HttpResponseStatus;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;

/**
 * The one place where Quiver's errors become HTTP statuses (the REST twin of
 * {@code io.quiver.transport.GrpcErrors}). Bodies are {@code {"error": "<message>"}}; RESOURCE_EXHAUSTED
 * is 429 with a Retry-After header; UNAUTHENTICATED is 401 (with {@code WWW-Authenticate: Bearer}),
 * PERMISSION_DENIED 403. Stateless.
 */
public final class HttpErrors {
  /** Nginx's "client closed request": only the log ever sees it, the client has gone. */
  static final HttpResponseStatus CLIENT_CLOSED = HttpResponseStatus.valueOf(499, "Client Closed Request");

  private HttpErrors() {}

  public static HttpResponseStatus status(ErrorCode code) {
    return switch (code) {
      case INVALID_ARGUMENT, FAILED_PRECONDITION -> HttpResponseStatus.BAD_REQUEST;
      case NOT_FOUND -> HttpResponseStatus.NOT_FOUND;
      case ALREADY_EXISTS -> HttpResponseStatus.CONFLICT;
      case UNAVAILABLE -> HttpResponseStatus.SERVICE_UNAVAILABLE;
      case RESOURCE_EXHAUSTED -> HttpResponseStatus.TOO_MANY_REQUESTS;
      case DEADLINE_EXCEEDED -> HttpResponseStatus.GATEWAY_TIMEOUT;
      case CANCELLED -> CLIENT_CLOSED;
      case UNIMPLEMENTED -> HttpResponseStatus.NOT_IMPLEMENTED;
      case INTERNAL -> HttpResponseStatus.INTERNAL_SERVER_ERROR;
      case UNAUTHENTICATED -> HttpResponseStatus.UNAUTHORIZED;
      case PERMISSION_DENIED -> HttpResponseStatus.FORBIDDEN;
    };
  }

  /** Any throwable from a handler: InferenceExceptions keep their code; anything else is INTERNAL with no detail. */
  static InferenceException toInferenceException(Throwable t) {
    if (t instanceof InferenceException e) {
      return e;
    }
    return InferenceException.internal("internal error: " + t.getClass().getSimpleName(), t);
  }

  /** Retry-After in whole seconds (at least 1), or -1 when the error carries no hint. */
  static long retryAfterSeconds(InferenceException e) {
    if (e.code() != ErrorCode.RESOURCE_EXHAUSTED && e.code() != ErrorCode.UNAVAILABLE || e.retryAfterNanos() <= 0) {
      return e.code() == ErrorCode.RESOURCE_EXHAUSTED ? 1 : -1;
    }
    return Math.max(1, (e.retryAfterNanos() + 999_999_999L) / 1_000_000_000L);
  }
}
