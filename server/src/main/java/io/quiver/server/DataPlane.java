package io.quiver.server;

import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ModelLifecycle;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.RequestValidator;
import io.quiver.core.SequenceControl;
import io.quiver.server.shm.SharedMemoryRegistry;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.InferBatchStatistics;
import io.quiver.proto.inference.InferStatistics;
import io.quiver.proto.inference.ModelStatistics;
import io.quiver.proto.inference.ModelStatisticsResponse;
import io.quiver.proto.inference.StatisticDuration;
import io.quiver.registry.ModelNames;
import io.quiver.server.metrics.ServerMetrics;
import io.quiver.server.security.SecurityPolicy;
import io.quiver.server.metrics.VersionMetrics;
import io.quiver.server.monitoring.ModelMonitoring;
import io.quiver.server.monitoring.MonitoredScheduler;
import io.quiver.server.tracing.ServerTracing;
import io.opentelemetry.api.trace.Span;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * What the gRPC and REST transports share: the one submission path (validate, build the request,
 * submit to the version's scheduler, record metrics, optionally write the access log), statistics,
 * and the blocking repository operations. Thread-safe and stateless apart from counters.
 *
 * <p>{@link #submit} never blocks and may run on an event loop. {@link #load} and {@link #unload}
 * block; transports run them through {@link #runRepositoryOperation}.
 */
public final class DataPlane {
  private static final Logger log = LoggerFactory.getLogger(DataPlane.class);
  /** Access log lines, one per finished inference request when enabled; off by default. */
  static final Logger ACCESS = LoggerFactory.getLogger("quiver.access");
  /** The MDC key under which every log line about a request carries its id. */
  public static final String MDC_REQUEST_ID = "request_id";
  /**
   * Protocol extensions every Quiver implements; {@link #extensions()} adds those that depend on the
   * machine or the options (system shared memory, trace).
   */
  static final List<String> BASE_EXTENSIONS = List.of("model_configuration", "model_repository", "statistics",
      "binary_tensor_data", "classification", "sequence", "logging");

  /**
   * How a finished request reaches its caller. Called once: on the event loop that submitted it when it
   * came from one (the batcher delivers a batch's answers per loop), else on the thread that finished it.
   * The output tensors are valid during the call only: encode them there.
   */
  public interface Completion {
    void succeeded(InferRequest request, String version, Tensor[] outputs);

    void failed(InferRequest request, InferenceException error);
  }

  private final ModelLifecycle lifecycle;
  private final ModelManager models;
  private final ServerMetrics metrics;
  private final BooleanSupplier serverReady;
  private final String serverVersion;
  private final Executor repositoryExecutor;
  private final boolean accessLog;
  private final ServerOptions.Limits limits;
  private final SecurityPolicy security;
  private final ServerTracing tracing; // null = tracing off
  private final ModelMonitoring monitoring;
  private final AtomicLong sequence = new AtomicLong();
  private final SharedMemoryRegistry sharedMemory; // null = not available here
  private final TraceSettings traceSettings;
  private final RepositoryLoads repositoryLoads;
  private final List<String> extensions;

  DataPlane(ModelLifecycle lifecycle, ServerMetrics metrics, BooleanSupplier serverReady, String serverVersion,
      Executor repositoryExecutor, boolean accessLog, ServerOptions.Limits limits, SecurityPolicy security,
      ServerTracing tracing, ModelMonitoring monitoring) {
    this(lifecycle, metrics, serverReady, serverVersion, repositoryExecutor, accessLog, limits, security, tracing,
        monitoring, null, null);
  }

  /**
   * @param sharedMemory the system shared memory regions, or null when the machine has none
   * @param repositoryLoads RepositoryModelLoad's config overrides and files (null: the defaults' limits)
   */
  DataPlane(ModelLifecycle lifecycle, ServerMetrics metrics, BooleanSupplier serverReady, String serverVersion,
      Executor repositoryExecutor, boolean accessLog, ServerOptions.Limits limits, SecurityPolicy security,
      ServerTracing tracing, ModelMonitoring monitoring, SharedMemoryRegistry sharedMemory,
      RepositoryLoads repositoryLoads) {
    this.sharedMemory = sharedMemory;
    this.traceSettings = new TraceSettings(tracing != null);
    this.repositoryLoads = repositoryLoads != null ? repositoryLoads : RepositoryLoads.defaults();
    List<String> ext = new java.util.ArrayList<>(BASE_EXTENSIONS);
    if (sharedMemory != null) {
      ext.add("system_shared_memory");
    }
    if (tracing != null) {
      ext.add("trace");
    }
    this.extensions = List.copyOf(ext);
    this.tracing = tracing;
    this.monitoring = monitoring;
    this.limits = limits;
    this.security = security;
    this.lifecycle = lifecycle;
    this.models = lifecycle.manager();
    this.metrics = metrics;
    this.serverReady = serverReady;
    this.serverVersion = serverVersion;
    this.repositoryExecutor = repositoryExecutor;
    this.accessLog = accessLog;
  }

  public ModelManager models() {
    return models;
  }

  /** The protocol extensions that work on this server (ServerMetadata, GET /v2). */
  public List<String> extensions() {
    return extensions;
  }

  /** The system shared memory regions, or null when this machine has no POSIX shared memory. */
  public SharedMemoryRegistry sharedMemory() {
    return sharedMemory;
  }

  /** Triton's trace settings (TraceSetting, /v2/trace/setting) and the sampling they decide. */
  public TraceSettings traceSettings() {
    return traceSettings;
  }

  /** The security policy both transports ask, or null when security is off (no --security-config). */
  public SecurityPolicy security() {
    return security;
  }

  /** Model monitoring: reports of monitored versions (docs/monitoring.md). */
  public ModelMonitoring monitoring() {
    return monitoring;
  }

  /** Request tracing, or null when it is off (transports then start no span and pass null). */
  public ServerTracing tracing() {
    return tracing;
  }

  /**
   * Starts a request's server span, or returns null when tracing is off (one null check, no allocation).
   *
   * @param parent the caller's trace context from the transport's headers
   */
  public Span startSpan(io.opentelemetry.context.Context parent, String model, String id, String protocol) {
    if (tracing == null || !traceSettings.sample(model)) {
      return null;
    }
    return tracing.startRequest(parent, model, id, protocol, System.nanoTime());
  }

  /** Ends a span whose request failed before {@link #submit} took it; no-op for null. */
  public void failSpan(Span span, Throwable error) {
    if (span != null) {
      tracing.failEarly(span, error, System.nanoTime());
    }
  }

  /**
   * Checks a model name and version string from a request before anything looks them up: a name that
   * could leave the repository directory (or form another S3 key) is INVALID_ARGUMENT, a version that is
   * not a decimal number is INVALID_ARGUMENT. Touches no filesystem.
   */
  public static void checkModelReference(String model, String version) {
    String problem = ModelNames.problem(model);
    if (problem != null) {
      throw InferenceException.invalidField("model_name", "%s", problem);
    }
    if (version != null && !version.isEmpty() && !isVersionOrLabel(version)) {
      throw InferenceException.invalidField("model_version",
          "model version must be a decimal number, a traffic label such as 'canary' (letters, digits, '_', '-'), or empty;"
              + " was '%s'", ModelNames.printable(version.length() > 40 ? version.substring(0, 40) + "..." : version));
    }
  }

  /** A decimal version of at most 18 digits, or a label: a letter then up to 63 letters, digits, '_' or '-'. */
  private static boolean isVersionOrLabel(String version) {
    char first = version.charAt(0);
    boolean label = Character.isLetter(first) && first < 128;
    if (label ? version.length() > 64 : version.length() > 18) {
      return false;
    }
    for (int i = 0; i < version.length(); i++) {
      char c = version.charAt(i);
      boolean ok = (c >= '0' && c <= '9') || (label && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'));
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  /** The most concurrent HTTP/2 streams one connection may open: gRPC calls, and REST over HTTP/2. */
  public int maxConcurrentStreamsPerConnection() {
    return limits.maxConcurrentCallsPerConnection();
  }

  /** Element count and BYTES element length limits; before validation allocates anything per element. */
  private void checkLimits(List<Tensor> decoded) {
    for (Tensor t : decoded) {
      long elements = Tensor.elementCount(t.shape());
      if (elements > limits.maxTensorElements()) { // negative dims (-1 here) are the validator's to report
        throw InferenceException.invalidField("inputs[" + t.name() + "].shape",
            "input '%s' has %s elements; the limit is %d", t.name(),
            elements == Long.MAX_VALUE ? "more than 2^63" : String.valueOf(elements),
            limits.maxTensorElements());
      }
      if (t.dataType() == io.quiver.core.DataType.BYTES) {
        long length = io.quiver.core.BytesElements.firstLengthOver(t.data(), limits.maxBytesElementLength());
        if (length >= 0) { // malformed framing is the validator's to report
          throw InferenceException.invalidField("inputs[" + t.name() + "]",
              "input '%s' has a BYTES element of %d bytes; the limit is %d", t.name(), length,
              limits.maxBytesElementLength());
        }
      }
    }
  }

  public boolean isReady() {
    return serverReady.getAsBoolean();
  }

  /**
   * Early, cheap admission, before a request's tensors are decoded or validated: refuses at once what the
   * version's queue would refuse (full: RESOURCE_EXHAUSTED with a retry hint; closing: UNAVAILABLE), and
   * a request whose deadline has passed or will pass before its expected queue wait (DEADLINE_EXCEEDED,
   * with that wait as the retry hint). Routes as {@link #submit} will (the same id lands on the same
   * version). Never blocks; refusals are counted and logged like submit's.
   *
   * @param priority the request's priority (0 = default), or {@code InferenceScheduler.UNKNOWN_PRIORITY}
   * @param deadlineNanos {@link System#nanoTime} deadline, or {@link InferRequest#NO_DEADLINE}
   */
  public void admit(String model, String versionString, String id, int priority, long deadlineNanos,
      String protocol) {
    long start = System.nanoTime();
    checkModelReference(model, versionString);
    LoadedVersion version = models.tryAcquire(model, versionString, id);
    if (version == null) {
      return; // not resident, loads on demand (lazy mode, memory budget): submit parks it, bounded there
    }
    try {
      long wait = version.scheduler().admit(priority);
      if (deadlineNanos != InferRequest.NO_DEADLINE) {
        long left = deadlineNanos - start;
        if (left <= 0) {
          throw InferenceException.deadlineExceeded("model '%s': the request's deadline passed before it was admitted",
              model);
        }
        if (left < wait) {
          throw new InferenceException(io.quiver.core.ErrorCode.DEADLINE_EXCEEDED, String.format(java.util.Locale.ROOT,
              "model '%s': the request's deadline (%d us away) would pass in the queue (expected wait %d us)", model,
              left / 1000, wait / 1000), null, wait, null);
        }
      }
    } catch (InferenceException e) {
      metrics.forVersion(version.name(), version.version()).failed(e.code(), System.nanoTime() - start);
      if (accessLog) {
        access(protocol, model, version.versionLabel(), id, e.code().name(), System.nanoTime() - start);
      }
      throw e;
    } finally {
      version.release();
    }
  }

  public String serverVersion() {
    return serverVersion;
  }

  /**
   * Routes, validates and submits one request; never blocks. On success the completion is called
   * later (exactly once); on failure the exception leaves and the completion is never called.
   *
   * @param id the client's request id ("" when none)
   * @param protocol "grpc" or "http", for the access log
   */
  public InferRequest submit(String model, String versionString, String id, List<Tensor> decoded,
      List<String> requestedOutputs, int priority, long timeoutMicros, long deadlineNanos, Completion completion,
      String protocol) {
    return submit(model, versionString, id, decoded, requestedOutputs, priority, timeoutMicros, deadlineNanos,
        completion, protocol, null);
  }

  /**
   * {@link #submit} for a traced request: this call owns {@code span} (from {@link #startSpan}; null when
   * tracing is off) and ends it, before the completion is called or before an exception leaves.
   */
  public InferRequest submit(String model, String versionString, String id, List<Tensor> decoded,
      List<String> requestedOutputs, int priority, long timeoutMicros, long deadlineNanos, Completion completion,
      String protocol, Span span) {
    return submit(model, versionString, id, decoded, requestedOutputs, priority, timeoutMicros, deadlineNanos,
        completion, protocol, span, null, OutputPlan.PLAIN);
  }

  /**
   * {@link #submit} with Triton's extras: the request's sequence (sequence batching; null for none) and its
   * output plan (classification, shared memory; {@link OutputPlan#PLAIN} for none). This call owns the plan:
   * it is released once the request is answered, or before an exception leaves.
   */
  public InferRequest submit(String model, String versionString, String id, List<Tensor> decoded,
      List<String> requestedOutputs, int priority, long timeoutMicros, long deadlineNanos, Completion completion,
      String protocol, Span span, SequenceControl sequenceControl, OutputPlan plan) {
    long start = System.nanoTime();
    LoadedVersion version;
    try {
      checkModelReference(model, versionString);
      checkLimits(decoded);
      // The request id makes traffic-split routing sticky: a retry lands on the version that saw it first.
      version = models.tryAcquire(model, versionString, id);
    } catch (RuntimeException e) {
      plan.release();
      failSpan(span, e);
      throw e;
    }
    // ---- Lazy mode / memory budget: the model is not resident but loads on demand. The request waits
    // in the model's bounded queue (never blocking this thread) and continues in submitTo() once the
    // lifecycle hands it an acquired version; the returned placeholder carries cancellation until then.
    if (version == null) {
      OnDemandRequest parked = new OnDemandRequest(this, model, id, decoded, requestedOutputs, priority, timeoutMicros,
          deadlineNanos, completion, protocol, span, start, sequenceControl, plan);
      try {
        models.awaitResident(model, versionString, id, parked.deadlineNanos(), parked);
      } catch (RuntimeException e) {
        plan.release();
        failSpan(span, e);
        throw e;
      }
      return parked.placeholder();
    }
    // ---- end of the on-demand branch
    return submitTo(version, id, decoded, requestedOutputs, priority, timeoutMicros, deadlineNanos, completion, protocol,
        span, start, sequenceControl, plan);
  }

  /**
   * Validates and submits a request to an acquired version (whose hold it takes over); never blocks.
   * Called by {@link #submit} and, for a request that waited for an on-demand load, by
   * {@link OnDemandRequest} on a lifecycle thread.
   */
  InferRequest submitTo(LoadedVersion version, String id, List<Tensor> decoded, List<String> requestedOutputs,
      int priority, long timeoutMicros, long deadlineNanos, Completion completion, String protocol, Span span,
      long start, SequenceControl sequenceControl, OutputPlan plan) {
    String model = version.name();
    VersionMetrics versionMetrics = metrics.forVersion(version.name(), version.version());
    try {
      ModelSignature signature = version.signature();
      Tensor[] inputs = new Tensor[signature.inputs().size()];
      int batchSize = RequestValidator.validateInputs(version.name(), signature, decoded, inputs);
      int[] outputs = RequestValidator.resolveOutputs(version.name(), signature, requestedOutputs);
      plan.check(version.name(), signature, outputs);
      if (sequenceControl != null && !version.config().hasSequenceBatching()) {
        throw InferenceException.invalidField("parameters[sequence_id]", "model '%s' has no sequence_batching: a"
            + " request to it must not carry a sequence_id (was %s)", version.name(), sequenceControl.describe());
      }
      if (span != null) {
        ServerTracing.routed(span, version.versionLabel(), batchSize);
      }
      MonitoredScheduler.sampleInputs(version.scheduler(), inputs, batchSize); // monitoring (issue 20): a type check when off
      // On an event loop (gRPC, REST) the answer comes back to this loop, one task per batch; elsewhere
      // (in-process callers) it is given on the thread that finishes the request.
      InferRequest request = new InferRequest(version.name(), version.version(), id, inputs, outputs, batchSize,
          priority, timeoutMicros, deadlineNanos,
          new VersionCallback(this, version, versionMetrics, completion, start, protocol, span, plan),
          EventLoopTransports.current(), sequenceControl);
      version.scheduler().submit(request);
      return request;
    } catch (RuntimeException e) {
      plan.release();
      // Triton counts a request the model refuses (invalid input, full queue) in its failure statistics.
      version.scheduler().stats().recordFailure(System.nanoTime() - start);
      version.release();
      failSpan(span, e);
      InferenceException error = e instanceof InferenceException ie ? ie : null;
      versionMetrics.failed(error != null ? error.code() : io.quiver.core.ErrorCode.INTERNAL, System.nanoTime() - start);
      if (accessLog) {
        access(protocol, model, version.versionLabel(), id, error != null ? error.code().name() : "INTERNAL",
            System.nanoTime() - start);
      }
      throw e;
    }
  }

  /**
   * Counts a request that failed before {@link #submit} (its transport could not decode it) in the model's
   * failure statistics, as Triton does, when the model is loaded and ready; otherwise does nothing.
   */
  public void countFailure(String model, String versionString, long nanos) {
    if (model == null || model.isEmpty() || ModelNames.problem(model) != null || !models.isReady(model,
        versionString == null ? "" : versionString)) {
      return;
    }
    try {
      LoadedVersion version = models.acquire(model, versionString == null ? "" : versionString);
      try {
        version.scheduler().stats().recordFailure(nanos);
      } finally {
        version.release();
      }
    } catch (InferenceException e) {
      // unloaded meanwhile, or a version string that names nothing: nothing to count
    }
  }

  /** A request id for logs: the client's, or one generated here (never sent back). */
  String logId(String clientId) {
    return clientId == null || clientId.isEmpty() ? "q-" + Long.toHexString(sequence.incrementAndGet()) : clientId;
  }

  private void access(String protocol, String model, String version, String id, String outcome, long nanos) {
    MDC.put(MDC_REQUEST_ID, logId(id));
    try {
      ACCESS.atInfo()
          .addKeyValue("protocol", protocol)
          .addKeyValue("model", model)
          .addKeyValue("version", version)
          .addKeyValue("outcome", outcome)
          .addKeyValue("duration_us", nanos / 1000)
          .log("{} {} v{} {} in {} us", protocol, model, version, outcome, nanos / 1000);
    } finally {
      MDC.remove(MDC_REQUEST_ID);
    }
  }

  /** Logs an unexpected failure of one request with its id in the MDC. */
  public void logFailure(String model, String id, Throwable t) {
    MDC.put(MDC_REQUEST_ID, logId(id));
    try {
      log.error("inference failed for model '{}'", model, t);
    } finally {
      MDC.remove(MDC_REQUEST_ID);
    }
  }

  /**
   * Runs a blocking repository operation on the repository executor and then {@code done} with null or
   * the failure. {@code done} runs on the executor's thread.
   */
  public void runRepositoryOperation(Runnable operation, java.util.function.Consumer<RuntimeException> done) {
    try {
      repositoryExecutor.execute(() -> {
        RuntimeException failure = null;
        try {
          operation.run();
        } catch (RuntimeException e) {
          failure = e;
        }
        done.accept(failure);
      });
    } catch (RejectedExecutionException e) {
      done.accept(InferenceException.unavailable("the server is shutting down, or too many repository operations are queued"));
    }
  }

  /**
   * Loads (or reloads) a model through the lifecycle (recorded in the desired state first; a loaded
   * model whose files changed is reloaded), blocking; records the load's duration and outcome.
   */
  public void load(String model) {
    load(model, RepositoryLoads.Request.NONE);
  }

  /**
   * Loads (or reloads) a model as RepositoryModelLoad asks, blocking: plainly, or with a config override
   * and/or {@code file:} contents (see {@link RepositoryLoads}). Records the load's duration and outcome.
   */
  public void load(String model, RepositoryLoads.Request parameters) {
    checkModelReference(model, "");
    long t0 = System.nanoTime();
    boolean failed = true;
    try {
      if (parameters.isEmpty()) {
        lifecycle.load(model);
      } else {
        // Triton's override is for this load only: the model manager loads it, the desired state is not changed.
        repositoryLoads.load(models, model, parameters);
      }
      failed = false;
    } finally {
      metrics.recordLoad(model, System.nanoTime() - t0, failed);
    }
  }

  /** RepositoryModelLoad's parameter rules and limits. */
  public RepositoryLoads repositoryLoads() {
    return repositoryLoads;
  }

  /**
   * Unloads a model through the lifecycle (recorded in the desired state first), blocking until it
   * drained. A model that is not loaded (never loaded, already unloaded, or its files already deleted)
   * is not an error: Triton answers such an unload with success, and KServe's model puller deletes a
   * model's directory before it asks for the unload.
   */
  public void unload(String model) {
    checkModelReference(model, "");
    try {
      lifecycle.unload(model);
    } catch (InferenceException e) {
      if (e.code() != io.quiver.core.ErrorCode.NOT_FOUND) {
        throw e;
      }
    }
  }

  /** KServe model metadata of a model (version "" = the routed one). */
  public io.quiver.proto.inference.ModelMetadataResponse metadata(String name, String versionString) {
    checkModelReference(name, versionString);
    LoadedVersion version = models.acquire(name, versionString);
    try {
      ModelSignature signature = version.signature();
      String platform = version.config().getPlatform().isEmpty() ? version.config().getBackend() : version.config().getPlatform();
      io.quiver.proto.inference.ModelMetadataResponse.Builder response =
          io.quiver.proto.inference.ModelMetadataResponse.newBuilder().setName(version.name()).setPlatform(platform);
      for (long v : models.readyVersions(version.name())) {
        response.addVersions(Long.toString(v));
      }
      for (io.quiver.core.TensorSpec spec : signature.inputs()) {
        response.addInputs(tensorMetadata(signature, spec));
      }
      for (io.quiver.core.TensorSpec spec : signature.outputs()) {
        response.addOutputs(tensorMetadata(signature, spec));
      }
      return response.build();
    } finally {
      version.release();
    }
  }

  /** The completed config of a model version. */
  public io.quiver.proto.inference.ModelConfig config(String name, String versionString) {
    checkModelReference(name, versionString);
    LoadedVersion version = models.acquire(name, versionString);
    try {
      return version.config();
    } finally {
      version.release();
    }
  }

  private static io.quiver.proto.inference.ModelMetadataResponse.TensorMetadata tensorMetadata(ModelSignature signature,
      io.quiver.core.TensorSpec spec) {
    io.quiver.proto.inference.ModelMetadataResponse.TensorMetadata.Builder tensor =
        io.quiver.proto.inference.ModelMetadataResponse.TensorMetadata.newBuilder()
            .setName(spec.name())
            .setDatatype(spec.dataType().wireName());
    for (long dim : signature.metadataShape(spec)) {
      tensor.addShape(dim);
    }
    return tensor.build();
  }

  /** Statistics of one model (version "" = its ready versions... here: the routed one), or of every READY version when name is empty. */
  public ModelStatisticsResponse statistics(String name, String version) {
    ModelStatisticsResponse.Builder response = ModelStatisticsResponse.newBuilder();
    if (name == null || name.isEmpty()) {
      for (ModelVersionStatus status : models.index()) {
        if (status.state() == ModelVersionStatus.State.READY) {
          try {
            addStatistics(response, status.name(), status.version());
          } catch (InferenceException e) {
            // unloaded since the index was read
          }
        }
      }
    } else {
      checkModelReference(name, version);
      addStatistics(response, name, version);
    }
    return response.build();
  }

  private void addStatistics(ModelStatisticsResponse.Builder response, String name, String versionString) {
    LoadedVersion version = models.acquire(name, versionString);
    try {
      InferenceStats stats = version.scheduler().stats();
      ModelStatistics.Builder model = response.addModelStatsBuilder()
          .setName(version.name())
          .setVersion(Long.toString(version.version()))
          .setLastInference(stats.lastInferenceMillis())
          .setInferenceCount(stats.inferenceCount())
          .setExecutionCount(stats.executionCount())
          .setInferenceStats(InferStatistics.newBuilder()
              .setSuccess(duration(stats.success()))
              .setFail(duration(stats.fail()))
              .setQueue(duration(stats.queue()))
              .setComputeInput(duration(stats.computeInput()))
              .setComputeInfer(duration(stats.computeInfer()))
              .setComputeOutput(duration(stats.computeOutput()))
              .setCacheHit(duration(stats.cacheHit()))
              .setCacheMiss(duration(stats.cacheMiss())));
      for (int rows = 1; rows <= stats.maxBatchRows(); rows++) {
        long count = stats.batchCount(rows);
        if (count == 0) {
          continue;
        }
        model.addBatchStats(InferBatchStatistics.newBuilder()
            .setBatchSize(rows)
            .setComputeInput(StatisticDuration.newBuilder().setCount(count).setNs(stats.batchInputNanos(rows)))
            .setComputeInfer(StatisticDuration.newBuilder().setCount(count).setNs(stats.batchInferNanos(rows)))
            .setComputeOutput(StatisticDuration.newBuilder().setCount(count).setNs(stats.batchOutputNanos(rows))));
      }
    } finally {
      version.release();
    }
  }

  private static StatisticDuration duration(InferenceStats.Duration d) {
    return StatisticDuration.newBuilder().setCount(d.count()).setNs(d.nanos()).build();
  }

  /** Releases the routed version exactly once, records the outcome, then completes the call. Runner thread. */
  private static final class VersionCallback implements InferCallback {
    private final DataPlane plane;
    private final LoadedVersion version;
    private final VersionMetrics metrics;
    private final Completion completion;
    private final long startNanos;
    private final String protocol;
    private final Span span; // null when tracing is off
    private final OutputPlan plan;

    VersionCallback(DataPlane plane, LoadedVersion version, VersionMetrics metrics, Completion completion,
        long startNanos, String protocol, Span span, OutputPlan plan) {
      this.plan = plan;
      this.span = span;
      this.plane = plane;
      this.version = version;
      this.metrics = metrics;
      this.completion = completion;
      this.startNanos = startNanos;
      this.protocol = protocol;
    }

    @Override
    public void onSuccess(InferRequest request, Tensor[] outputs) {
      Tensor[] answer;
      try {
        // Classification and shared-memory outputs, while the runner's outputs are valid (this call).
        answer = plan.apply(version.signature(), version.outputLabels(), request.outputIndices(), outputs);
      } catch (InferenceException e) {
        onFailure(request, e);
        return;
      }
      version.release();
      if (span != null) {
        // Ended before the answer is sent: a client holding the answer finds the span exported.
        plane.tracing.finish(span, request, null, System.nanoTime());
      }
      try {
        completion.succeeded(request, version.versionLabel(), answer);
      } finally {
        plan.release(); // the answer is encoded: the regions may go
      }
      // The model's own outputs (before classification), still valid in this call.
      MonitoredScheduler.sampleOutputs(version.scheduler(), request, outputs); // monitoring (issue 20): a type check when off
      long nanos = System.nanoTime() - startNanos;
      metrics.succeeded(nanos);
      metrics.timings(request.queueNanos(), request.computeInputNanos(), request.computeInferNanos(),
          request.computeOutputNanos());
      if (plane.accessLog) {
        plane.access(protocol, request.modelName(), version.versionLabel(), request.id(), "OK", nanos);
      }
    }

    @Override
    public void onFailure(InferRequest request, InferenceException error) {
      version.release();
      if (span != null) {
        plane.tracing.finish(span, request, error, System.nanoTime());
      }
      try {
        completion.failed(request, error);
      } finally {
        plan.release();
      }
      long nanos = System.nanoTime() - startNanos;
      metrics.failed(error.code(), nanos);
      if (plane.accessLog) {
        plane.access(protocol, request.modelName(), version.versionLabel(), request.id(), error.code().name(), nanos);
      }
    }
  }
}
