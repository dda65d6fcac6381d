package io.quiver.server;

import io.quiver.server.DataPlane.Completion;
import io.quiver.server.security.SecurityPolicy;
import io.quiver.transport.GrpcErrors;

import io.grpc.Context;
import io.opentelemetry.api.trace.Span;
import io.grpc.Deadline;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.RequestValidator;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.InferBatchStatistics;
import io.quiver.proto.inference.InferStatistics;
import io.quiver.proto.inference.ModelConfigRequest;
import io.quiver.proto.inference.ModelConfigResponse;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelReadyResponse;
import io.quiver.proto.inference.ModelStatistics;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelStatisticsResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelLoadResponse;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadResponse;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerLiveResponse;
import io.quiver.proto.inference.ServerMetadataRequest;
import io.quiver.proto.inference.ServerMetadataResponse;
import io.quiver.proto.inference.ServerReadyRequest;
import io.quiver.proto.inference.ServerReadyResponse;
import io.quiver.proto.inference.StatisticDuration;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The KServe v2 / Triton gRPC data plane. It translates and validates, then hands each request to
 * its model version's scheduler; it keeps no state of its own.
 *
 * <p>Threading: the server runs this service on a direct executor, so every handler runs on a Netty
 * event loop and must not block: validation and {@code submit} are non-blocking, and responses are
 * sent from the runner thread that finishes the request. RepositoryModelLoad/Unload block while a
 * model loads or drains, so they run on {@code repositoryExecutor}, never on the event loop.
 */
final class InferenceServiceImpl extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(InferenceServiceImpl.class);

  /** Protocol extensions that this server really implements (reported in ServerMetadata). */
  static final List<String> EXTENSIONS = DataPlane.EXTENSIONS;

  private final DataPlane plane;
  private final ModelManager models;
  private final SecurityPolicy security;
  /** ModelStreamInfer: most requests read from one stream and not yet answered. */
  private final int streamWindow;

  InferenceServiceImpl(DataPlane plane) {
    this(plane, io.quiver.transport.ConnectionOptions.DEFAULT_MAX_UNANSWERED_PER_STREAM);
  }

  InferenceServiceImpl(DataPlane plane, int streamWindow) {
    this.streamWindow = streamWindow;
    this.plane = plane;
    this.models = plane.models();
    this.security = plane.security();
  }

  /**
   * The per-model authorization of {@code method} as {@code security.Operations} lists it (and, for
   * inference, the rate limit); a no-op when security is off.
   */
  private void guard(String method, String model) {
    GrpcSecurityInterceptor.check(security, method, model);
  }

  @Override
  public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> out) {
    out.onNext(ServerLiveResponse.newBuilder().setLive(true).build());
    out.onCompleted();
  }

  @Override
  public void serverReady(ServerReadyRequest request, StreamObserver<ServerReadyResponse> out) {
    out.onNext(ServerReadyResponse.newBuilder().setReady(plane.isReady()).build());
    out.onCompleted();
  }

  @Override
  public void serverMetadata(ServerMetadataRequest request, StreamObserver<ServerMetadataResponse> out) {
    out.onNext(ServerMetadataResponse.newBuilder()
        .setName("quiver")
        .setVersion(plane.serverVersion())
        .addAllExtensions(EXTENSIONS)
        .build());
    out.onCompleted();
  }

  @Override
  public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> out) {
    try {
      guard("ModelReady", request.getName());
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    // Unknown models are not an error here: the protocol answers ready=false.
    out.onNext(ModelReadyResponse.newBuilder().setReady(models.isReady(request.getName(), request.getVersion())).build());
    out.onCompleted();
  }

  @Override
  public void modelMetadata(ModelMetadataRequest request, StreamObserver<ModelMetadataResponse> out) {
    ModelMetadataResponse response;
    try {
      guard("ModelMetadata", request.getName());
      response = plane.metadata(request.getName(), request.getVersion());
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }

  @Override
  public void modelConfig(ModelConfigRequest request, StreamObserver<ModelConfigResponse> out) {
    LoadedVersion version;
    try {
      guard("ModelConfig", request.getName());
      DataPlane.checkModelReference(request.getName(), request.getVersion());
      version = models.acquire(request.getName(), request.getVersion());
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    try {
      out.onNext(ModelConfigResponse.newBuilder().setConfig(version.config()).build());
      out.onCompleted();
    } finally {
      version.release();
    }
  }

  @Override
  public void modelStatistics(ModelStatisticsRequest request, StreamObserver<ModelStatisticsResponse> out) {
    ModelStatisticsResponse response;
    try {
      guard("ModelStatistics", request.getName().isEmpty() ? "*" : request.getName());
      response = plane.statistics(request.getName(), request.getVersion());
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    out.onNext(response);
    out.onCompleted();
  }

  @Override
  public void repositoryIndex(RepositoryIndexRequest request, StreamObserver<RepositoryIndexResponse> out) {
    if (!request.getRepositoryName().isEmpty()) {
      out.onError(GrpcErrors.toStatus(InferenceException.invalidField("repository_name",
          "this server has one model repository; leave repository_name empty (was '%s')", request.getRepositoryName())));
      return;
    }
    RepositoryIndexResponse.Builder response = RepositoryIndexResponse.newBuilder();
    for (ModelVersionStatus status : models.index()) {
      if (request.getReady() && status.state() != ModelVersionStatus.State.READY) {
        continue;
      }
      response.addModelsBuilder()
          .setName(status.name())
          .setVersion(status.version())
          .setState(status.state() == ModelVersionStatus.State.UNAVAILABLE ? "UNAVAILABLE" : status.state().name())
          .setReason(status.reason() == null ? "" : status.reason());
    }
    out.onNext(response.build());
    out.onCompleted();
  }

  @Override
  public void repositoryModelLoad(RepositoryModelLoadRequest request, StreamObserver<RepositoryModelLoadResponse> out) {
    if (!request.getRepositoryName().isEmpty() || !request.getParametersMap().isEmpty()) {
      out.onError(GrpcErrors.toStatus(InferenceException.invalidField(
          request.getRepositoryName().isEmpty() ? "parameters" : "repository_name",
          "RepositoryModelLoad supports neither repository_name nor parameters (config overrides, files) yet")));
      return;
    }
    runRepositoryOperation(out, () -> plane.load(request.getModelName()),
        RepositoryModelLoadResponse.getDefaultInstance());
  }

  @Override
  public void repositoryModelUnload(RepositoryModelUnloadRequest request,
      StreamObserver<RepositoryModelUnloadResponse> out) {
    if (!request.getRepositoryName().isEmpty()) {
      out.onError(GrpcErrors.toStatus(InferenceException.invalidField("repository_name",
          "this server has one model repository; leave repository_name empty (was '%s')", request.getRepositoryName())));
      return;
    }
    runRepositoryOperation(out, () -> plane.unload(request.getModelName()),
        RepositoryModelUnloadResponse.getDefaultInstance());
  }

  private <T> void runRepositoryOperation(StreamObserver<T> out, Runnable operation, T response) {
    // Blocks while the model loads or drains: never on the event loop.
    plane.runRepositoryOperation(operation, failure -> {
      if (failure == null) {
        out.onNext(response);
        out.onCompleted();
      } else {
        out.onError(GrpcErrors.toStatus(failure));
      }
    });
  }

  @Override
  public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> out) {
    ServerCallStreamObserver<ModelInferResponse> call = (ServerCallStreamObserver<ModelInferResponse>) out;
    UnaryResponder responder = new UnaryResponder(call);
    // Set before submitting: once submitted, a runner thread may answer at any moment.
    call.setOnCancelHandler(responder);
    try {
      responder.accepted(submit(request, responder, deadlineNanos()));
    } catch (InferenceException e) {
      call.onError(GrpcErrors.toStatus(e));
    } catch (RuntimeException e) {
      plane.logFailure(request.getModelName(), request.getId(), e);
      call.onError(GrpcErrors.toStatus(e));
    }
  }

  @Override
  public StreamObserver<ModelInferRequest> modelStreamInfer(StreamObserver<ModelStreamInferResponse> out) {
    return new StreamSession((ServerCallStreamObserver<ModelStreamInferResponse>) out, streamWindow);
  }

  /**
   * Validates, routes and submits one request. Never blocks. On success the callback owns the
   * acquired version and releases it; on failure it is released here before the exception leaves.
   */
  private InferRequest submit(ModelInferRequest request, Completion completion, long deadlineNanos) {
    Span span = null;
    if (plane.tracing() != null) {
      GrpcTracingInterceptor.CallTrace trace = GrpcTracingInterceptor.CALL_TRACE.get();
      if (trace != null) {
        span = plane.startSpan(trace.parent, request.getModelName(), request.getId(), "grpc");
        trace.started(span.getSpanContext());
      }
    }
    List<Tensor> decoded;
    List<String> outputs;
    int priority;
    long timeoutMicros;
    try {
      guard("ModelInfer", request.getModelName());
      KServeCodec.checkUnsupportedParameters(request);
      priority = KServeCodec.priority(request);
      timeoutMicros = KServeCodec.timeoutMicros(request);
      // Before the tensors are decoded or validated: a full queue or a deadline that the queue would
      // outlast is refused for the price of a lookup (docs/hardening.md, "Early admission").
      plane.admit(request.getModelName(), request.getModelVersion(), request.getId(), priority, deadlineNanos, "grpc");
      decoded = KServeCodec.decodeInputs(request);
      outputs = KServeCodec.requestedOutputs(request);
    } catch (RuntimeException e) {
      plane.failSpan(span, e); // from here on plane.submit owns the span
      throw e;
    }
    return plane.submit(request.getModelName(), request.getModelVersion(), request.getId(), decoded, outputs,
        priority, timeoutMicros, deadlineNanos, completion, "grpc", span);
  }

  /**
   * The call's observer as one that takes any answer its marshaller writes: a protobuf message or an
   * {@link InferResponseStream} (see {@link AliasingRequestMarshaller#withInferMarshallers}).
   */
  @SuppressWarnings("unchecked")
  private static StreamObserver<Object> responses(StreamObserver<?> call) {
    return (StreamObserver<Object>) call;
  }

  private static long deadlineNanos() {
    Deadline deadline = Context.current().getDeadline();
    if (deadline == null) {
      return InferRequest.NO_DEADLINE;
    }
    return System.nanoTime() + deadline.timeRemaining(TimeUnit.NANOSECONDS);
  }

  /** Answers a unary call; as its cancel handler (event loop), it cancels the scheduled request. */
  private static final class UnaryResponder implements Completion, Runnable {
    private final ServerCallStreamObserver<ModelInferResponse> call;
    private volatile InferRequest request;

    UnaryResponder(ServerCallStreamObserver<ModelInferResponse> call) {
      this.call = call;
    }

    void accepted(InferRequest accepted) {
      this.request = accepted;
      if (call.isCancelled()) {
        accepted.cancel();
      }
    }

    @Override
    public void run() {
      InferRequest cancelled = request;
      if (cancelled != null) {
        cancelled.cancel();
      }
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      if (call.isCancelled()) {
        return;
      }
      try {
        // Written straight from the outputs (see InferResponseStream): the method's marshaller takes it.
        responses(call).onNext(InferResponseStream.unary(request.modelName(), version, request.id(), outputs));
        call.onCompleted();
      } catch (RuntimeException e) {
        // The client went away between the check and the send; nothing more to deliver.
        log.debug("could not deliver response for id '{}': {}", request.id(), e.toString());
      }
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      if (call.isCancelled()) {
        return;
      }
      try {
        call.onError(GrpcErrors.toStatus(error));
      } catch (RuntimeException e) {
        log.debug("could not deliver error for id '{}': {}", request.id(), e.toString());
      }
    }
  }

  /**
   * One ModelStreamInfer call, flow-controlled: messages are requested from the transport only while the
   * stream has fewer than {@code window} requests read and unanswered and its client reads its answers
   * ({@code isReady}); otherwise the stream is not read and HTTP/2 flow control holds the client back.
   * Requests arrive on the event loop; responses come from wherever requests complete, so state is
   * guarded by this object. Errors travel in-band and keep the stream open; the stream completes once the
   * client has half-closed and every accepted request is answered.
   */
  private final class StreamSession implements StreamObserver<ModelInferRequest>, Completion, Runnable {
    private final ServerCallStreamObserver<ModelStreamInferResponse> out;
    private final int window;
    // Guarded by this: requests read and not yet answered, messages asked of the transport and not yet
    // received, whether the client half-closed.
    private int pending;
    private int requested;
    private boolean halfClosed;
    private boolean finished;

    StreamSession(ServerCallStreamObserver<ModelStreamInferResponse> out, int window) {
      this.out = out;
      this.window = window;
      out.disableAutoRequest();
      out.setOnReadyHandler(this); // the client read enough: more requests may be read
      pump();
    }

    /** The stream became ready (the transport's onReady). */
    @Override
    public void run() {
      pump();
    }

    /** Asks the transport for as many messages as the window has room for, while the client reads. */
    private synchronized void pump() {
      if (finished || halfClosed) {
        return;
      }
      int room = window - pending - requested;
      if (room > 0 && out.isReady()) {
        requested += room;
        out.request(room);
      }
    }

    @Override
    public void onNext(ModelInferRequest request) {
      synchronized (this) {
        pending++;
        requested = Math.max(0, requested - 1);
      }
      try {
        submit(request, this, deadlineNanos());
      } catch (InferenceException e) {
        sendError(request.getModelName(), request.getId(), e.getMessage());
      } catch (RuntimeException e) {
        plane.logFailure(request.getModelName(), request.getId(), e);
        sendError(request.getModelName(), request.getId(), "internal error: " + e.getClass().getSimpleName());
      }
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      send(InferResponseStream.streamed(request.modelName(), version, request.id(), outputs));
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      sendError(request.modelName(), request.id(), error.getMessage());
    }

    private void sendError(String model, String id, String message) {
      send(ModelStreamInferResponse.newBuilder()
          .setErrorMessage(message == null ? "" : message)
          .setInferResponse(ModelInferResponse.newBuilder().setModelName(model).setId(id))
          .build());
    }

    /** Sends a ModelStreamInferResponse, or an {@link InferResponseStream} that writes one. */
    private synchronized void send(Object response) {
      pending--;
      if (finished || out.isCancelled()) {
        return;
      }
      try {
        responses(out).onNext(response);
      } catch (RuntimeException e) {
        log.debug("could not deliver stream response: {}", e.toString());
      }
      completeIfDone();
      pump();
    }

    @Override
    public synchronized void onError(Throwable t) {
      // Client cancelled or the transport failed: nothing more can be sent.
      finished = true;
    }

    @Override
    public synchronized void onCompleted() {
      halfClosed = true;
      completeIfDone();
    }

    private void completeIfDone() {
      if (halfClosed && pending == 0 && !finished) {
        finished = true;
        try {
          out.onCompleted();
        } catch (RuntimeException e) {
          log.debug("could not complete stream: {}", e.toString());
        }
      }
    }
  }
}
