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
        .addAllExtensions(plane.extensions())
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
    if (!request.getRepositoryName().isEmpty()) {
      out.onError(GrpcErrors.toStatus(InferenceException.invalidField("repository_name",
          "this server has one model repository; leave repository_name empty (was '%s')", request.getRepositoryName())));
      return;
    }
    RepositoryLoads.Request parameters;
    try {
      // config override and file: contents (Triton's); checked here, staged and loaded on the repository executor
      parameters = plane.repositoryLoads().fromGrpc(request.getParametersMap());
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    runRepositoryOperation(out, () -> plane.load(request.getModelName(), parameters),
        RepositoryModelLoadResponse.getDefaultInstance());
  }

  // ---- Triton's system shared memory, CUDA shared memory, trace and log settings ----

  /** The principal that owns shared-memory regions it registers (null when security is off). */
  private String owner() {
    if (security == null) {
      return null;
    }
    io.quiver.server.security.CallerPrincipal principal = GrpcSecurityInterceptor.PRINCIPAL.get();
    return principal == null ? null : principal.name();
  }

  private io.quiver.server.shm.SharedMemoryRegistry sharedMemory() {
    io.quiver.server.shm.SharedMemoryRegistry shm = plane.sharedMemory();
    if (shm == null) {
      throw InferenceException.unimplemented("system shared memory is not available on this server (no %s)",
          io.quiver.server.shm.SharedMemoryRegistry.DEFAULT_ROOT);
    }
    return shm;
  }

  @Override
  public void systemSharedMemoryStatus(io.quiver.proto.inference.SystemSharedMemoryStatusRequest request,
      StreamObserver<io.quiver.proto.inference.SystemSharedMemoryStatusResponse> out) {
    try {
      var response = io.quiver.proto.inference.SystemSharedMemoryStatusResponse.newBuilder();
      for (var region : sharedMemory().status(request.getName(), owner())) {
        response.putRegions(region.name(), io.quiver.proto.inference.SystemSharedMemoryStatusResponse.RegionStatus
            .newBuilder().setName(region.name()).setKey(region.key()).setOffset(region.offset())
            .setByteSize(region.byteSize()).build());
      }
      out.onNext(response.build());
      out.onCompleted();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }

  @Override
  public void systemSharedMemoryRegister(io.quiver.proto.inference.SystemSharedMemoryRegisterRequest request,
      StreamObserver<io.quiver.proto.inference.SystemSharedMemoryRegisterResponse> out) {
    try {
      // Opens and maps a tmpfs file: a few system calls, no disk I/O.
      sharedMemory().register(request.getName(), request.getKey(), request.getOffset(), request.getByteSize(), owner());
      out.onNext(io.quiver.proto.inference.SystemSharedMemoryRegisterResponse.getDefaultInstance());
      out.onCompleted();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }

  @Override
  public void systemSharedMemoryUnregister(io.quiver.proto.inference.SystemSharedMemoryUnregisterRequest request,
      StreamObserver<io.quiver.proto.inference.SystemSharedMemoryUnregisterResponse> out) {
    try {
      sharedMemory().unregister(request.getName(), owner());
      out.onNext(io.quiver.proto.inference.SystemSharedMemoryUnregisterResponse.getDefaultInstance());
      out.onCompleted();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }

  /** CUDA shared memory: not offered until GPU paths are verified on a GPU (docs/triton-compatibility.md). */
  static final String CUDA_SHM_UNSUPPORTED = "CUDA shared memory is not supported by Quiver yet (its GPU paths are not"
      + " verified on a GPU); use system shared memory (SystemSharedMemoryRegister) or send tensors in the request";

  @Override
  public void cudaSharedMemoryStatus(io.quiver.proto.inference.CudaSharedMemoryStatusRequest request,
      StreamObserver<io.quiver.proto.inference.CudaSharedMemoryStatusResponse> out) {
    out.onError(GrpcErrors.toStatus(InferenceException.unimplemented("%s", CUDA_SHM_UNSUPPORTED)));
  }

  @Override
  public void cudaSharedMemoryRegister(io.quiver.proto.inference.CudaSharedMemoryRegisterRequest request,
      StreamObserver<io.quiver.proto.inference.CudaSharedMemoryRegisterResponse> out) {
    out.onError(GrpcErrors.toStatus(InferenceException.unimplemented("%s", CUDA_SHM_UNSUPPORTED)));
  }

  @Override
  public void cudaSharedMemoryUnregister(io.quiver.proto.inference.CudaSharedMemoryUnregisterRequest request,
      StreamObserver<io.quiver.proto.inference.CudaSharedMemoryUnregisterResponse> out) {
    out.onError(GrpcErrors.toStatus(InferenceException.unimplemented("%s", CUDA_SHM_UNSUPPORTED)));
  }

  @Override
  public void traceSetting(io.quiver.proto.inference.TraceSettingRequest request,
      StreamObserver<io.quiver.proto.inference.TraceSettingResponse> out) {
    try {
      String model = request.getModelName();
      if (!model.isEmpty() && !models.isReady(model, "")) {
        throw InferenceException.invalidField("model_name", "Request for unknown model : %s", model);
      }
      java.util.Map<String, List<String>> changes = new java.util.LinkedHashMap<>();
      request.getSettingsMap().forEach((key, value) -> changes.put(key, value.getValueList()));
      java.util.Map<String, List<String>> now = changes.isEmpty() ? plane.traceSettings().get(model)
          : plane.traceSettings().update(model, changes);
      var response = io.quiver.proto.inference.TraceSettingResponse.newBuilder();
      now.forEach((key, values) -> response.putSettings(key,
          io.quiver.proto.inference.TraceSettingResponse.SettingValue.newBuilder().addAllValue(values).build()));
      out.onNext(response.build());
      out.onCompleted();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }

  @Override
  public void logSettings(io.quiver.proto.inference.LogSettingsRequest request,
      StreamObserver<io.quiver.proto.inference.LogSettingsResponse> out) {
    try {
      java.util.Map<String, Object> changes = new java.util.LinkedHashMap<>();
      request.getSettingsMap().forEach((key, value) -> changes.put(key, switch (value.getParameterChoiceCase()) {
        case BOOL_PARAM -> value.getBoolParam();
        case UINT32_PARAM -> Integer.toUnsignedLong(value.getUint32Param());
        case STRING_PARAM -> value.getStringParam();
        default -> null;
      }));
      java.util.Map<String, Object> now = LogSettings.apply(changes);
      var response = io.quiver.proto.inference.LogSettingsResponse.newBuilder();
      now.forEach((key, value) -> {
        var setting = io.quiver.proto.inference.LogSettingsResponse.SettingValue.newBuilder();
        if (value instanceof Boolean b) {
          setting.setBoolParam(b);
        } else if (value instanceof Number n) {
          setting.setUint32Param(n.intValue());
        } else {
          setting.setStringParam(String.valueOf(value));
        }
        response.putSettings(key, setting.build());
      });
      out.onNext(response.build());
      out.onCompleted();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
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
        if (span != null) { // null: not sampled (TraceSetting's trace_level, trace_rate, trace_count)
          trace.started(span.getSpanContext());
        }
      }
    }
    List<Tensor> decoded;
    List<String> outputs;
    int priority;
    long timeoutMicros;
    io.quiver.core.SequenceControl sequence;
    long start = System.nanoTime();
    // A plan only when an extension is used (classification, shared memory): the usual request allocates none.
    OutputPlan plan = usesExtensions(request) ? OutputPlan.forOutputs(request.getOutputsCount()) : OutputPlan.PLAIN;
    try {
      guard("ModelInfer", request.getModelName());
      KServeCodec.checkUnsupportedParameters(request);
      priority = KServeCodec.priority(request);
      timeoutMicros = KServeCodec.timeoutMicros(request);
      // Before the tensors are decoded or validated: a full queue or a deadline that the queue would
      // outlast is refused for the price of a lookup (docs/hardening.md, "Early admission").
      plane.admit(request.getModelName(), request.getModelVersion(), request.getId(), priority, deadlineNanos, "grpc");
      String owner = owner();
      decoded = KServeCodec.decodeInputs(request, plane.sharedMemory(), owner, plan);
      outputs = KServeCodec.requestedOutputs(request, plane.sharedMemory(), owner, plan);
      sequence = KServeCodec.sequence(request);
    } catch (RuntimeException e) {
      plan.release();
      plane.failSpan(span, e); // from here on plane.submit owns the span
      if (e instanceof InferenceException) {
        plane.countFailure(request.getModelName(), request.getModelVersion(), System.nanoTime() - start);
      }
      throw e;
    }
    if (completion instanceof Planned planned) {
      planned.plan(plan);
    }
    return plane.submit(request.getModelName(), request.getModelVersion(), request.getId(), decoded, outputs,
        priority, timeoutMicros, deadlineNanos, completion, "grpc", span, sequence, plan);
  }

  /** Whether the request names shared memory or classification anywhere (a few map lookups). */
  private static boolean usesExtensions(ModelInferRequest request) {
    for (int i = 0; i < request.getInputsCount(); i++) {
      if (request.getInputs(i).getParametersCount() > 0
          && request.getInputs(i).getParametersMap().containsKey(KServeCodec.PARAM_SHM_REGION)) {
        return true;
      }
    }
    for (int i = 0; i < request.getOutputsCount(); i++) {
      var params = request.getOutputs(i);
      if (params.getParametersCount() > 0 && (params.getParametersMap().containsKey(KServeCodec.PARAM_SHM_REGION)
          || params.getParametersMap().containsKey(KServeCodec.PARAM_CLASSIFICATION))) {
        return true;
      }
    }
    return false;
  }

  /** A completion that encodes outputs the plan put in shared memory: told its request's plan before submit. */
  private interface Planned {
    void plan(OutputPlan plan);
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
  private static final class UnaryResponder implements Completion, Runnable, Planned {
    private final ServerCallStreamObserver<ModelInferResponse> call;
    private volatile InferRequest request;
    private OutputPlan plan = OutputPlan.PLAIN; // set on the event loop before submit; read when answering

    @Override
    public void plan(OutputPlan plan) {
      this.plan = plan;
    }

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
        responses(call).onNext(InferResponseStream.unary(request.modelName(), version, request.id(), outputs, plan));
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
        // A message using an extension (or naming a version, which an error answer echoes) gets its own
        // completion with its plan; the usual message answers through the session itself (no allocation).
        Completion completion = usesExtensions(request) || !request.getModelVersion().isEmpty()
            ? new StreamRequest(this, request.getModelVersion()) : this;
        submit(request, completion, deadlineNanos());
      } catch (InferenceException e) {
        sendError(request.getModelName(), request.getModelVersion(), request.getId(), e.getMessage());
      } catch (RuntimeException e) {
        plane.logFailure(request.getModelName(), request.getId(), e);
        sendError(request.getModelName(), request.getModelVersion(), request.getId(),
            "internal error: " + e.getClass().getSimpleName());
      }
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      send(InferResponseStream.streamedFinal(request.modelName(), version, request.id(), outputs, OutputPlan.PLAIN));
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      sendError(request.modelName(), "", request.id(), error.getMessage());
    }

    /**
     * An error answer as Triton's stream sends it: the message, and the request's id, model and version
     * with {@code triton_final_response: true}.
     */
    void sendError(String model, String version, String id, String message) {
      send(ModelStreamInferResponse.newBuilder()
          .setErrorMessage(message == null ? "" : message)
          .setInferResponse(ModelInferResponse.newBuilder().setModelName(model).setModelVersion(version).setId(id)
              .putParameters(InferResponseStream.FINAL_RESPONSE,
                  io.quiver.proto.inference.InferParameter.newBuilder().setBoolParam(true).build()))
          .build());
    }

    /** Sends a ModelStreamInferResponse, or an {@link InferResponseStream} that writes one. */
    synchronized void send(Object response) {
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

  /** One message of a stream: answers through its session with its own output plan. */
  private static final class StreamRequest implements Completion, Planned {
    private final StreamSession session;
    private final String requestedVersion;
    private OutputPlan plan = OutputPlan.PLAIN;

    StreamRequest(StreamSession session, String requestedVersion) {
      this.session = session;
      this.requestedVersion = requestedVersion;
    }

    @Override
    public void plan(OutputPlan plan) {
      this.plan = plan;
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      session.send(InferResponseStream.streamedFinal(request.modelName(), version, request.id(), outputs, plan));
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      session.sendError(request.modelName(), requestedVersion, request.id(), error.getMessage());
    }
  }
}
