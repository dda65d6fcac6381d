package io.quiver.core;

import java.util.Locale;

/**
 * The one error type of Quiver: a canonical {@link ErrorCode}, a message that names the field and
 * the value at fault, and optionally the field itself and a retry hint. Messages are safe to send to
 * clients; they never contain stack traces.
 *
 * <p>Stack traces are not filled in: these exceptions are expected outcomes of bad input and
 * overload, created on hot paths, and their message says everything needed.
 */
public final class InferenceException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;
  private final String field;
  private final long retryAfterNanos;

  public InferenceException(ErrorCode code, String message) {
    this(code, message, null, 0L, null);
  }

  public InferenceException(ErrorCode code, String message, String field, long retryAfterNanos, Throwable cause) {
    super(message, cause, false, false);
    this.code = code;
    this.field = field;
    this.retryAfterNanos = retryAfterNanos;
  }

  public ErrorCode code() {
    return code;
  }

  /** The request field at fault (e.g. "inputs[INPUT0].shape"), or null. */
  public String field() {
    return field;
  }

  /** A suggested delay before retrying, in nanoseconds; 0 when none is given. */
  public long retryAfterNanos() {
    return retryAfterNanos;
  }

  public static InferenceException invalidArgument(String format, Object... args) {
    return new InferenceException(ErrorCode.INVALID_ARGUMENT, fmt(format, args));
  }

  /** INVALID_ARGUMENT that names the request field at fault. */
  public static InferenceException invalidField(String field, String format, Object... args) {
    return new InferenceException(ErrorCode.INVALID_ARGUMENT, fmt(format, args), field, 0L, null);
  }

  public static InferenceException notFound(String format, Object... args) {
    return new InferenceException(ErrorCode.NOT_FOUND, fmt(format, args));
  }

  public static InferenceException unavailable(String format, Object... args) {
    return new InferenceException(ErrorCode.UNAVAILABLE, fmt(format, args));
  }

  public static InferenceException failedPrecondition(String format, Object... args) {
    return new InferenceException(ErrorCode.FAILED_PRECONDITION, fmt(format, args));
  }

  /** RESOURCE_EXHAUSTED with a retry hint (the gRPC layer sends it as a RetryInfo detail). */
  public static InferenceException resourceExhausted(long retryAfterNanos, String format, Object... args) {
    return new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, fmt(format, args), null, retryAfterNanos, null);
  }

  public static InferenceException deadlineExceeded(String format, Object... args) {
    return new InferenceException(ErrorCode.DEADLINE_EXCEEDED, fmt(format, args));
  }

  public static InferenceException cancelled(String format, Object... args) {
    return new InferenceException(ErrorCode.CANCELLED, fmt(format, args));
  }

  public static InferenceException unimplemented(String format, Object... args) {
    return new InferenceException(ErrorCode.UNIMPLEMENTED, fmt(format, args));
  }

  /** UNAUTHENTICATED: no valid credential. The message says what was missing, never a secret. */
  public static InferenceException unauthenticated(String format, Object... args) {
    return new InferenceException(ErrorCode.UNAUTHENTICATED, fmt(format, args));
  }

  /** PERMISSION_DENIED: a valid credential whose roles do not allow the operation. */
  public static InferenceException permissionDenied(String format, Object... args) {
    return new InferenceException(ErrorCode.PERMISSION_DENIED, fmt(format, args));
  }

  public static InferenceException internal(String message, Throwable cause) {
    return new InferenceException(ErrorCode.INTERNAL, message, null, 0L, cause);
  }

  private static String fmt(String format, Object... args) {
    return args.length == 0 ? format : String.format(Locale.ROOT, format, args);
  }
}
