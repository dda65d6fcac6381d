package io.quiver.transport;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.ProtoUtils;
import io.quiver.core.InferenceException;

/**
 * The one place where Quiver's errors become gRPC statuses, for every gRPC port (data plane, control
 * plane): the canonical code, the message, and google.rpc details where they help a client (RetryInfo on
 * overload, BadRequest naming the field on invalid input). Stateless.
 *
 * <p>The exceptions it makes carry no stack trace: they only carry a status to the transport (the
 * handler that failed is logged where it fails), and under overload a server refuses thousands of
 * requests a second on its event loops, where filling in a trace of some fifty frames per refusal
 * would cost more than the rest of the refusal (RefusalBenchmark).
 */
public final class GrpcErrors {
  /** The trailer clients read rich errors from (the key grpc-java's {@code StatusProto} uses). */
  private static final Metadata.Key<com.google.rpc.Status> STATUS_DETAILS = Metadata.Key.of(
      "grpc-status-details-bin", ProtoUtils.metadataMarshaller(com.google.rpc.Status.getDefaultInstance()));

  private GrpcErrors() {}

  public static StatusRuntimeException toStatus(InferenceException e) {
    com.google.rpc.Status.Builder status = com.google.rpc.Status.newBuilder()
        .setCode(code(e).getNumber())
        .setMessage(e.getMessage() == null ? "" : e.getMessage());
    if (e.retryAfterNanos() > 0) {
      long nanos = e.retryAfterNanos();
      status.addDetails(Any.pack(RetryInfo.newBuilder()
          .setRetryDelay(com.google.protobuf.Duration.newBuilder()
              .setSeconds(nanos / 1_000_000_000L)
              .setNanos((int) (nanos % 1_000_000_000L)))
          .build()));
    }
    if (e.field() != null) {
      status.addDetails(Any.pack(BadRequest.newBuilder()
          .addFieldViolations(BadRequest.FieldViolation.newBuilder()
              .setField(e.field())
              .setDescription(e.getMessage() == null ? "" : e.getMessage()))
          .build()));
    }
    com.google.rpc.Status details = status.build();
    Metadata trailers = new Metadata();
    trailers.put(STATUS_DETAILS, details);
    return new Untraced(Status.fromCodeValue(details.getCode()).withDescription(details.getMessage()), trailers);
  }

  /**
   * Any throwable from a handler: InferenceExceptions keep their code, gRPC statuses stay as they are;
   * anything else is INTERNAL naming only the exception's class (the log has the rest).
   */
  public static StatusRuntimeException toStatus(Throwable t) {
    if (t instanceof InferenceException e) {
      return toStatus(e);
    }
    if (t instanceof StatusRuntimeException sre) {
      return sre;
    }
    return toStatus(InferenceException.internal("internal error: " + t.getClass().getSimpleName(), t));
  }

  /** Closes a call with the status (and its details) that {@link #toStatus(Throwable)} gives. */
  public static void close(ServerCall<?, ?> call, Throwable error) {
    StatusRuntimeException status = toStatus(error);
    Metadata trailers = status.getTrailers();
    call.close(status.getStatus(), trailers == null ? new Metadata() : trailers);
  }

  /** A status on its way to the transport; a stack trace would only say which handler threw it. */
  private static final class Untraced extends StatusRuntimeException {
    private static final long serialVersionUID = 1L;

    Untraced(Status status, Metadata trailers) {
      super(status, trailers);
    }

    @Override
    public synchronized Throwable fillInStackTrace() {
      return this;
    }
  }

  private static Code code(InferenceException e) {
    return switch (e.code()) {
      case INVALID_ARGUMENT -> Code.INVALID_ARGUMENT;
      case NOT_FOUND -> Code.NOT_FOUND;
      case ALREADY_EXISTS -> Code.ALREADY_EXISTS;
      case FAILED_PRECONDITION -> Code.FAILED_PRECONDITION;
      case UNAVAILABLE -> Code.UNAVAILABLE;
      case RESOURCE_EXHAUSTED -> Code.RESOURCE_EXHAUSTED;
      case DEADLINE_EXCEEDED -> Code.DEADLINE_EXCEEDED;
      case CANCELLED -> Code.CANCELLED;
      case UNIMPLEMENTED -> Code.UNIMPLEMENTED;
      case INTERNAL -> Code.INTERNAL;
      case UNAUTHENTICATED -> Code.UNAUTHENTICATED;
      case PERMISSION_DENIED -> Code.PERMISSION_DENIED;
    };
  }
}
