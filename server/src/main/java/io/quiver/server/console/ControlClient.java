package io.quiver.server.console;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.core.ErrorCode;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.server.http.HttpErrors;
import java.util.concurrent.TimeUnit;

/**
 * The console's channel to the control plane's own service, in this process: console actions are the
 * very RPCs the CLI sends (same validation, desired-state records and audit lines), made with the
 * browser user's credential. Callbacks run on the control plane's handler threads (direct executor).
 * Thread-safe.
 */
final class ControlClient implements AutoCloseable {
  private final ManagedChannel channel;

  ControlClient(String inProcessName) {
    channel = InProcessChannelBuilder.forName(inProcessName)
        .directExecutor()
        .maxInboundMessageSize(ControlPlaneOptions.MAX_MESSAGE_BYTES)
        .build();
  }

  /** A stub whose calls carry the caller's credential and address, with a deadline. */
  ModelControlGrpc.ModelControlStub stub(ConsoleCaller caller, long timeoutSeconds) {
    return ModelControlGrpc.newStub(channel)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(caller.controlMetadata()))
        .withDeadlineAfter(timeoutSeconds, TimeUnit.SECONDS);
  }

  /** The HTTP status of a failed control call: its gRPC code as HttpErrors maps the same code for REST. */
  static HttpResponseStatus httpStatus(Status status) {
    return switch (status.getCode()) {
      case UNAUTHENTICATED -> HttpErrors.status(ErrorCode.UNAUTHENTICATED);
      case PERMISSION_DENIED -> HttpErrors.status(ErrorCode.PERMISSION_DENIED);
      case OK -> HttpResponseStatus.OK;
      case INVALID_ARGUMENT -> HttpErrors.status(ErrorCode.INVALID_ARGUMENT);
      case NOT_FOUND -> HttpErrors.status(ErrorCode.NOT_FOUND);
      case ALREADY_EXISTS -> HttpErrors.status(ErrorCode.ALREADY_EXISTS);
      case FAILED_PRECONDITION -> HttpErrors.status(ErrorCode.FAILED_PRECONDITION);
      case UNAVAILABLE -> HttpErrors.status(ErrorCode.UNAVAILABLE);
      case RESOURCE_EXHAUSTED -> HttpErrors.status(ErrorCode.RESOURCE_EXHAUSTED);
      case DEADLINE_EXCEEDED -> HttpErrors.status(ErrorCode.DEADLINE_EXCEEDED);
      case CANCELLED -> HttpErrors.status(ErrorCode.CANCELLED);
      case UNIMPLEMENTED -> HttpErrors.status(ErrorCode.UNIMPLEMENTED);
      default -> HttpErrors.status(ErrorCode.INTERNAL);
    };
  }

  /** The message to show for a failed control call: its description, or its code when it has none. */
  static String message(Status status) {
    return status.getDescription() != null ? status.getDescription() : status.getCode().name();
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }
}
