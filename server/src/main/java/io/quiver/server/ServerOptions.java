package io.quiver.server;

import io.quiver.lifecycle.ControlMode;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.registry.s3.S3RepositoryOptions;
import io.quiver.server.security.TlsOptions;
import io.quiver.server.tracing.TracingOptions;
import io.quiver.transport.ConnectionOptions;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything the server needs to start, as data (the command line fills it in; tests build it
 * directly).
 *
 * @param grpcPort data-plane port; 0 picks a free one
 * @param maxMessageBytes largest gRPC message accepted or sent
 * @param eventLoopThreads Netty worker threads; 0 = one per available processor
 * @param shutdownGraceMillis how long SIGTERM waits for in-flight requests before cutting them off
 * @param httpPort REST v2 port; 0 picks a free one; negative disables REST
 * @param metricsPort Prometheus /metrics port; 0 picks a free one; negative disables metrics export
 *     (the metrics are still recorded and ModelStatistics still works)
 * @param maxHttpBodyBytes largest REST request body (JSON plus binary tensors)
 * @param accessLog whether REST and gRPC inference requests each get an access-log line (logger
 *     {@code quiver.access})
 * @param tls TLS for the gRPC and REST ports from PEM files (mutual when it names a client CA); null =
 *     plaintext
 * @param securityConfig the security file (API keys, JWT, roles, rate limits); null = no
 *     authentication (the local quick start)
 * @param limits request limits beyond the message and body sizes
 * @param s3 where the models are when they live in an S3-compatible bucket; null = the local
 *     directory {@code modelRepository}
 * @param controlPlane the control-plane gRPC service (port 8003 by default); null = off
 * @param tracing where request spans go; null or {@link TracingOptions#off()} = nowhere (no tracing cost)
 * @param console whether the REST port also serves the operator's web console at /console/ (docs/console.md)
 * @param execution where batches run: the compute pool and the inline bound; null = sized for this machine
 * @param lifecycle memory budget, pins, on-demand queue bound, poll interval, model cache directory; null = defaults
 * @param connections limits and timeouts of client connections on every port (connection counts,
 *     handshake, header, request and idle timeouts, gRPC keep-alive and age, unsent-answer bounds);
 *     null = {@link ConnectionOptions#defaults()} (docs/hardening.md)
 */
public record ServerOptions(
    String host,
    int grpcPort,
    Path modelRepository,
    ControlMode controlMode,
    List<String> startupModels,
    int maxMessageBytes,
    int eventLoopThreads,
    long shutdownGraceMillis,
    int httpPort,
    int metricsPort,
    int maxHttpBodyBytes,
    boolean accessLog,
    TlsOptions tls,
    Path securityConfig,
    Limits limits,
    S3RepositoryOptions s3,
    ControlPlaneOptions controlPlane,
    TracingOptions tracing,
    boolean console,
    Execution execution,
    Lifecycle lifecycle,
    ConnectionOptions connections) {

  /**
   * How the model lifecycle runs, whatever ports are open (docs/lifecycle.md).
   *
   * @param memoryBudgetBytes the most bytes loaded model versions may hold together; beyond it the least
   *     recently used unpinned models are evicted; 0 = no budget
   * @param pinnedModels models never evicted (and, in lazy mode, loaded at start)
   * @param onDemandQueueLimit requests that may wait for one model's on-demand load
   * @param pollIntervalMillis how often the desired state (and in poll mode the repository, in lazy mode its
   *     list of models) is read again; 0 = never
   * @param modelCacheDir the model cache directory: S3 versions are fetched there, uploads are staged under it
   * @param persistDesiredState whether the desired state is written beside the repository; false keeps it in
   *     memory (a repository mounted read-only, as KServe's)
   * @param loadYieldMillis how long each model load may wait for a core under {@code SCHED_IDLE} before it
   *     runs at normal priority ({@link IdleLoads}); 0 = loads are never lowered
   */
  public record Lifecycle(long memoryBudgetBytes, List<String> pinnedModels, int onDemandQueueLimit,
      long pollIntervalMillis, Path modelCacheDir, boolean persistDesiredState, long loadYieldMillis) {
    /** A load yields the CPU to serving for up to 50 ms of run-queue wait ({@link IdleLoads}). */
    public static final long DEFAULT_LOAD_YIELD_MILLIS = 50;

    public Lifecycle {
      if (loadYieldMillis < 0) {
        throw new IllegalArgumentException("--model-load-yield-ms must be >= 0; was " + loadYieldMillis);
      }
      pinnedModels = List.copyOf(pinnedModels);
      modelCacheDir = modelCacheDir != null ? modelCacheDir : io.quiver.lifecycle.LifecycleOptions.defaultCacheDir();
    }

    /** No budget, no pins, the default queue bound, a 10 s poll, the default cache directory. */
    public static Lifecycle defaults() {
      return new Lifecycle(0, List.of(), io.quiver.lifecycle.ModelManagerOptions.DEFAULT_ON_DEMAND_QUEUE_LIMIT,
          io.quiver.lifecycle.LifecycleOptions.DEFAULT_POLL_INTERVAL_MILLIS, null, true, DEFAULT_LOAD_YIELD_MILLIS);
    }

    public Lifecycle withMemoryBudget(long bytes, List<String> pinned) {
      return new Lifecycle(bytes, pinned, onDemandQueueLimit, pollIntervalMillis, modelCacheDir,
          persistDesiredState, loadYieldMillis);
    }

    public Lifecycle withPollIntervalMillis(long millis) {
      return new Lifecycle(memoryBudgetBytes, pinnedModels, onDemandQueueLimit, millis, modelCacheDir,
          persistDesiredState, loadYieldMillis);
    }

    public Lifecycle withOnDemandQueueLimit(int limit) {
      return new Lifecycle(memoryBudgetBytes, pinnedModels, limit, pollIntervalMillis, modelCacheDir,
          persistDesiredState, loadYieldMillis);
    }

    public Lifecycle withModelCacheDir(Path dir) {
      return new Lifecycle(memoryBudgetBytes, pinnedModels, onDemandQueueLimit, pollIntervalMillis, dir,
          persistDesiredState, loadYieldMillis);
    }

    public Lifecycle withPersistDesiredState(boolean persist) {
      return new Lifecycle(memoryBudgetBytes, pinnedModels, onDemandQueueLimit, pollIntervalMillis, modelCacheDir,
          persist, loadYieldMillis);
    }

    /** How long each model load may wait for a core under SCHED_IDLE before it runs at normal priority; 0 = never lowered. */
    public Lifecycle withLoadYieldMillis(long millis) {
      return new Lifecycle(memoryBudgetBytes, pinnedModels, onDemandQueueLimit, pollIntervalMillis, modelCacheDir,
          persistDesiredState, millis);
    }
  }

  /**
   * Where model batches run, and the response cache in front of them.
   *
   * @param computeThreads threads of the shared compute pool; 0 = one per usable core
   * @param inlineMaxMicros the default inline bound: a batch predicted to take at most this long runs on
   *     the event loop that formed it (0 = never); a model's {@code quiver.inline_max_us} overrides it
   * @param cache the response cache models with {@code response_cache { enable: true }} use
   *     ({@code --cache-config}, docs/cache.md); null = none
   * @param eventLoopPolicy the event loops' CPU policy ({@link CpuSharing})
   */
  public record Execution(int computeThreads, long inlineMaxMicros, io.quiver.cache.CacheOptions cache,
      CpuSharing.EventLoopPolicy eventLoopPolicy) {
    public static final long DEFAULT_INLINE_MAX_MICROS = 50;

    public Execution {
      if (computeThreads < 0 || inlineMaxMicros < 0 || inlineMaxMicros > 1_000_000) {
        throw new IllegalArgumentException("compute threads must be >= 0 and the inline bound in [0, 1000000] us; were "
            + computeThreads + ", " + inlineMaxMicros);
      }
      if (eventLoopPolicy == null) {
        throw new IllegalArgumentException("eventLoopPolicy must not be null");
      }
    }

    /** Without a response cache, event loops by {@link CpuSharing.EventLoopPolicy#AUTO}. */
    public Execution(int computeThreads, long inlineMaxMicros) {
      this(computeThreads, inlineMaxMicros, null, CpuSharing.EventLoopPolicy.AUTO);
    }

    public static Execution defaults() {
      return new Execution(0, DEFAULT_INLINE_MAX_MICROS);
    }

    /** The same, with this response cache (null = none). */
    public Execution withCache(io.quiver.cache.CacheOptions options) {
      return new Execution(computeThreads, inlineMaxMicros, options, eventLoopPolicy);
    }

    /** The same, with this event-loop policy. */
    public Execution withEventLoopPolicy(CpuSharing.EventLoopPolicy policy) {
      return new Execution(computeThreads, inlineMaxMicros, cache, policy);
    }
  }

  /**
   * Bounds on what one request may ask for, checked before anything is allocated for it.
   *
   * @param maxTensorElements most elements in one input tensor
   * @param maxBytesElementLength longest single BYTES element, in bytes
   * @param maxConcurrentCallsPerConnection most concurrent gRPC calls (HTTP/2 streams) on one connection
   */
  public record Limits(long maxTensorElements, int maxBytesElementLength, int maxConcurrentCallsPerConnection) {
    /** 2^28 elements: a 1 GiB FP32 tensor, far above any request the message limit lets through. */
    public static final long DEFAULT_MAX_TENSOR_ELEMENTS = 1L << 28;
    /** 64 MiB per BYTES element (an image or an audio clip), below the default message limit. */
    public static final int DEFAULT_MAX_BYTES_ELEMENT_LENGTH = 64 * 1024 * 1024;
    /** 1024 streams per connection: many in flight for pipelined clients, bounded against stream floods. */
    public static final int DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION = 1024;

    public Limits {
      if (maxTensorElements < 1 || maxBytesElementLength < 0 || maxConcurrentCallsPerConnection < 1) {
        throw new IllegalArgumentException("limits must be positive; were " + maxTensorElements + ", "
            + maxBytesElementLength + ", " + maxConcurrentCallsPerConnection);
      }
    }

    public static Limits defaults() {
      return new Limits(DEFAULT_MAX_TENSOR_ELEMENTS, DEFAULT_MAX_BYTES_ELEMENT_LENGTH,
          DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION);
    }
  }

  public ServerOptions {
    limits = limits == null ? Limits.defaults() : limits;
    tracing = tracing == null ? TracingOptions.off() : tracing;
    execution = execution == null ? Execution.defaults() : execution;
    lifecycle = lifecycle == null ? Lifecycle.defaults() : lifecycle;
    connections = connections == null ? ConnectionOptions.defaults() : connections;
  }

  /** The form that predates the connection options (default limits and timeouts). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits,
      S3RepositoryOptions s3, ControlPlaneOptions controlPlane, TracingOptions tracing, boolean console,
      Execution execution, Lifecycle lifecycle) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3,
        controlPlane, tracing, console, execution, lifecycle, null);
  }

  /** Client connections with these limits and timeouts. */
  public ServerOptions withConnections(ConnectionOptions options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, controlPlane, tracing, console, execution, lifecycle, options);
  }

  /** The form that predates the lifecycle settings (defaults). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits,
      S3RepositoryOptions s3, ControlPlaneOptions controlPlane, TracingOptions tracing, boolean console,
      Execution execution) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3,
        controlPlane, tracing, console, execution, null);
  }

  /** The model lifecycle with these settings. */
  public ServerOptions withLifecycle(Lifecycle settings) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, controlPlane, tracing, console, execution, settings, connections);
  }

  /** The form that predates the execution options (sized for this machine). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits,
      S3RepositoryOptions s3, ControlPlaneOptions controlPlane, TracingOptions tracing, boolean console) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3,
        controlPlane, tracing, console, null, null);
  }

  /** Batches run with these execution options. */
  public ServerOptions withExecution(Execution options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, controlPlane, tracing, console, options, lifecycle, connections);
  }

  /** The form that predates tracing (tracing off). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits,
      S3RepositoryOptions s3, ControlPlaneOptions controlPlane) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3,
        controlPlane, null);
  }

  /** The form that predates the console (console on). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits,
      S3RepositoryOptions s3, ControlPlaneOptions controlPlane, TracingOptions tracing) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3,
        controlPlane, tracing, true);
  }

  /** The web console on the REST port on or off. */
  public ServerOptions withConsole(boolean enabled) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, controlPlane, tracing, enabled, execution, lifecycle, connections);
  }

  /** Request tracing with these options. */
  public ServerOptions withTracing(TracingOptions options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, controlPlane, options, console, execution, lifecycle, connections);
  }

  /** The form without TLS, security file or extra limits (plaintext, open, default limits). */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, null, null, Limits.defaults(), null, null);
  }

  public static final int DEFAULT_GRPC_PORT = 8001;
  public static final int DEFAULT_HTTP_PORT = 8000;
  public static final int DEFAULT_METRICS_PORT = 8002;
  /** A negative port turns the REST or metrics endpoint off. */
  public static final int DISABLED = -1;
  /** 256 MiB: images, audio and large batches must fit (gRPC's own default is 4 MiB). */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
  /** 64 MiB: JSON tensors are several times larger than their binary form; big payloads should use the binary extension. */
  public static final int DEFAULT_MAX_HTTP_BODY_BYTES = 64 * 1024 * 1024;
  public static final long DEFAULT_SHUTDOWN_GRACE_MILLIS = 30_000;

  /** The gRPC-only form (REST and metrics endpoints off), kept for callers that predate them. */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, DISABLED, DISABLED, DEFAULT_MAX_HTTP_BODY_BYTES, false, null, null, Limits.defaults(), null, null);
  }

  public static ServerOptions defaults(Path modelRepository) {
    return new ServerOptions("0.0.0.0", DEFAULT_GRPC_PORT, modelRepository, ControlMode.NONE,
        List.of(), DEFAULT_MAX_MESSAGE_BYTES, 0, DEFAULT_SHUTDOWN_GRACE_MILLIS, DEFAULT_HTTP_PORT,
        DEFAULT_METRICS_PORT, DEFAULT_MAX_HTTP_BODY_BYTES, false, null, null, Limits.defaults(), null, null);
  }

  public ServerOptions withGrpcPort(int port) {
    return new ServerOptions(host, port, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withControl(ControlMode mode, List<String> models) {
    return new ServerOptions(host, grpcPort, modelRepository, mode, List.copyOf(models), maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withMaxMessageBytes(int bytes) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, bytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  /** REST and metrics ports (0 = any free one, negative = off). */
  public ServerOptions withHttp(int restPort, int promPort) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, restPort, promPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withMaxHttpBodyBytes(int bytes) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, bytes, accessLog, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withAccessLog(boolean enabled) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, enabled, tls, securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withTls(TlsOptions options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, options,
        securityConfig, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withSecurityConfig(Path file) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, file, limits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  /** The form without S3 and without the control plane. */
  public ServerOptions(String host, int grpcPort, Path modelRepository, ControlMode controlMode,
      List<String> startupModels, int maxMessageBytes, int eventLoopThreads, long shutdownGraceMillis, int httpPort,
      int metricsPort, int maxHttpBodyBytes, boolean accessLog, TlsOptions tls, Path securityConfig, Limits limits) {
    this(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes, eventLoopThreads,
        shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig, limits, null,
        null);
  }

  /** Models from an S3-compatible bucket instead of {@code modelRepository}. */
  public ServerOptions withS3(S3RepositoryOptions options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, options, controlPlane, tracing, console, execution, lifecycle, connections);
  }

  /** The control plane with these options; null turns it off. */
  public ServerOptions withControlPlane(ControlPlaneOptions options) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        limits, s3, options, tracing, console, execution, lifecycle, connections);
  }

  public ServerOptions withLimits(Limits newLimits) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog, tls, securityConfig,
        newLimits, s3, controlPlane, tracing, console, execution, lifecycle, connections);
  }
}
