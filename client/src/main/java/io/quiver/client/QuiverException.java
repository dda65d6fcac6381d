package io.quiver.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The one error type of the client: a failed call, a request the client refused to send, or an error a
 * stream answered in-band. It carries the gRPC status code, the server's message and the
 * {@code google.rpc} details the server attached: the fields a {@link BadRequest} names
 * ({@link #fieldViolations()}, {@link #badRequestField()}) and a {@link RetryInfo} delay
 * ({@link #retryDelay()}) so that a caller can back off as long as the server asks.
 *
 * <p>Errors answered in-band on a ModelStreamInfer stream have no status code on the wire: they come as
 * {@link Status.Code#UNKNOWN} with {@link #isInBand()} true and the request's id in {@link #requestId()}.
 * Immutable.
 */
public final class QuiverException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** One {@code google.rpc.BadRequest.FieldViolation}: the field (e.g. {@code inputs[INPUT0].shape}) and why. */
  public record FieldViolation(String field, String description) {}

  private final Status.Code code;
  private final String description;
  private final transient List<FieldViolation> fieldViolations;
  private final Duration retryDelay;
  private final transient List<Any> details;
  private final String requestId;
  private final boolean inBand;

  private QuiverException(Status.Code code, String description, List<FieldViolation> fieldViolations,
      Duration retryDelay, List<Any> details, String requestId, boolean inBand, Throwable cause) {
    super(message(code, description, fieldViolations, retryDelay), cause);
    this.code = code;
    this.description = description == null ? "" : description;
    this.fieldViolations = List.copyOf(fieldViolations);
    this.retryDelay = retryDelay;
    this.details = List.copyOf(details);
    this.requestId = requestId;
    this.inBand = inBand;
  }

  /**
   * The QuiverException for any throwable from a call: a gRPC status (with its details read from the
   * trailers), a cancellation, or something else (INTERNAL, or UNKNOWN for an unexpected throwable). A
   * QuiverException is returned as is; CompletionException and ExecutionException are unwrapped.
   */
  public static QuiverException from(Throwable t) {
    if (t instanceof QuiverException q) {
      return q;
    }
    if ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      return from(t.getCause());
    }
    if (t instanceof StatusRuntimeException e) {
      return from(e.getStatus(), e.getTrailers(), e);
    }
    if (t instanceof StatusException e) {
      return from(e.getStatus(), e.getTrailers(), e);
    }
    if (t instanceof CancellationException) {
      return new QuiverException(Status.Code.CANCELLED, "cancelled by the caller", List.of(), null, List.of(), null,
          false, t);
    }
    Status status = Status.fromThrowable(t);
    return from(status.getCode() == Status.Code.UNKNOWN ? status.withDescription(String.valueOf(t)) : status, null, t);
  }

  /** From a call's closing status and trailers (the details travel in {@code grpc-status-details-bin}). */
  static QuiverException from(Status status, Metadata trailers, Throwable cause) {
    List<FieldViolation> violations = new ArrayList<>();
    List<Any> details = new ArrayList<>();
    Duration retry = null;
    com.google.rpc.Status rich = trailers == null ? null : StatusProto.fromStatusAndTrailers(status, trailers);
    if (rich != null) {
      for (Any detail : rich.getDetailsList()) {
        details.add(detail);
        try {
          if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (detail.is(RetryInfo.class)) {
            com.google.protobuf.Duration d = detail.unpack(RetryInfo.class).getRetryDelay();
            retry = Duration.ofSeconds(d.getSeconds(), d.getNanos());
          }
        } catch (InvalidProtocolBufferException e) {
          // A malformed detail is kept in details() undecoded; the status itself still stands.
        }
      }
    }
    return new QuiverException(status.getCode(), status.getDescription(), violations, retry, details, null, false,
        cause == null ? status.asRuntimeException(trailers) : cause);
  }

  /** A request refused by the client before sending, naming the field as the server would. */
  static QuiverException invalidArgument(String field, String message) {
    return new QuiverException(Status.Code.INVALID_ARGUMENT, message,
        List.of(new FieldViolation(field, message)), null, List.of(), null, false, null);
  }

  /** An error a stream answered in-band for one request. */
  static QuiverException inBand(String message, String requestId) {
    return new QuiverException(Status.Code.UNKNOWN, message, List.of(), null, List.of(), requestId, true, null);
  }

  /** A failure of the client itself with a status code (e.g. a response that breaks the protocol). */
  static QuiverException of(Status.Code code, String message) {
    return new QuiverException(code, message, List.of(), null, List.of(), null, false, null);
  }

  /** The gRPC status code; UNKNOWN for in-band stream errors. */
  public Status.Code code() {
    return code;
  }

  /** The server's message (the status description), "" when it sent none. */
  public String description() {
    return description;
  }

  /** The fields a {@code google.rpc.BadRequest} detail names, in order; empty when none. */
  public List<FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /** The first field a {@code BadRequest} detail names (e.g. {@code inputs[INPUT0].shape}), or null. */
  public String badRequestField() {
    return fieldViolations.isEmpty() ? null : fieldViolations.get(0).field();
  }

  /** How long the server asks the caller to wait before retrying ({@code google.rpc.RetryInfo}), if it said. */
  public Optional<Duration> retryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  /** Every {@code google.rpc.Status} detail as sent, decoded or not. */
  public List<Any> details() {
    return details;
  }

  /** For an in-band stream error, the id of the request it answers; otherwise null. */
  public String requestId() {
    return requestId;
  }

  /** True for an error answered in-band on a ModelStreamInfer stream (the stream itself goes on). */
  public boolean isInBand() {
    return inBand;
  }

  private static String message(Status.Code code, String description, List<FieldViolation> violations,
      Duration retry) {
    StringBuilder m = new StringBuilder(code.name());
    if (description != null && !description.isEmpty()) {
      m.append(": ").append(description);
    }
    if (!violations.isEmpty()) {
      m.append(" [field ").append(violations.get(0).field()).append(']');
    }
    if (retry != null) {
      m.append(" [retry after ").append(retry.toMillis()).append(" ms]");
    }
    return m.toString();
  }
}
