package io.quiver.server;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.quiver.batching.ComputePool;
import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.batching.NanoClock;
import io.quiver.lifecycle.LifecycleOptions;
import io.quiver.lifecycle.ModelLifecycle;
import io.quiver.cache.CachingSchedulerFactory;
import io.quiver.cache.ResponseCache;
import io.quiver.pipeline.PipelineSchedulerFactory;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelManagerOptions;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.core.spi.ModelRepository;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.control.grpc.ControlPlaneServer;
import io.quiver.registry.LocalModelRepository;
import io.quiver.registry.s3.S3ModelRepository;
import io.quiver.server.console.Console;
import io.quiver.server.console.ServerFacts;
import io.quiver.server.http.RestServer;
import io.quiver.server.jobs.BatchJobsService;
import io.quiver.server.jobs.JobManager;
import io.quiver.server.jobs.JobsOptions;
import io.quiver.server.jobs.JobsRestRoutes;
import io.quiver.server.metrics.GrpcCallMetrics;
import io.quiver.server.metrics.LifecycleMetrics;
import io.quiver.server.metrics.MetricsSchedulerFactory;
import io.quiver.server.metrics.ServerMetrics;
import io.quiver.server.monitoring.ModelMonitoring;
import io.quiver.server.monitoring.MonitoringMetrics;
import io.quiver.server.monitoring.MonitoringSchedulerFactory;
import io.quiver.server.security.ReloadingPemMaterial;
import io.quiver.server.security.SecurityPolicy;
import io.quiver.server.security.TlsContexts;
import io.quiver.server.shm.SharedMemoryRegistry;
import io.quiver.server.tracing.ServerTracing;
import io.quiver.transport.AnswerBudget;
import io.quiver.transport.CallGuard;
import io.quiver.transport.ConnectionLimiter;
import io.quiver.transport.GrpcTransports;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running Quiver: the model lifecycle (manager, desired state, poller: it runs whatever ports are
 * open) and the gRPC and REST data planes and the control plane over it, all clients of the one
 * lifecycle. {@link #start()} loads the models and opens the ports; {@link #close()} is the graceful
 * shutdown (NOT_SERVING, refuse new calls, let in-flight ones finish within the grace period, unload
 * models). Start and close are called from one thread; close is idempotent.
 */
public final class QuiverServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(QuiverServer.class);
  static final String INFERENCE_SERVICE = GRPCInferenceServiceGrpc.SERVICE_NAME;

  private final ServerOptions options;
  private final ModelRepository repository;
  private final ModelManager models;
  /** How loads share the CPU with serving: {@link IdleLoads}, or NORMAL where it cannot be used. */
  private final io.quiver.lifecycle.LoadScheduling loadScheduling;
  private final ModelLifecycle lifecycle;
  private final HealthStatusManager health = new HealthStatusManager();
  private final EventLoopGroup bossGroup;
  private final EventLoopGroup workerGroup;
  private final Class<? extends ServerChannel> channelType;
  /** Runs RepositoryModelLoad/Unload, which block while models load or drain; one at a time, bounded queue. */
  private final ThreadPoolExecutor repositoryOps = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS,
      new ArrayBlockingQueue<>(64), r -> {
        Thread t = new Thread(r, "repository-ops");
        t.setDaemon(true);
        return t;
      });
  private final ServerMetrics metrics;
  private final ServerTracing tracing; // null = tracing off
  private final DynamicBatcherFactory batchers; // owns the compute pool every model version shares
  private final ModelMonitoring monitoring;
  private final ResponseCache cache; // null: no --cache-config
  /** Connection counts over every port (gRPC, REST, control plane). */
  private final ConnectionLimiter limiter;
  /** The bound on answers the gRPC data plane's connections hold unsent. */
  private final AnswerBudget answers;
  private final SharedMemoryRegistry sharedMemory; // null when the machine has no POSIX shared memory
  private RestServer restServer;
  private Console console; // the web console on the REST port; null when off
  private volatile boolean ready;
  private volatile boolean closed;
  private Server grpcServer;
  private ControlPlaneServer controlPlane;
  private JobsOptions jobsOptions = JobsOptions.none();
  private JobManager jobs;
  private final CpuSharing.LoopScheduling loopScheduling;

  public QuiverServer(ServerOptions options) {
    this(options, ServerTracing.create(options.tracing()));
  }

  /**
   * A server whose request spans go to {@code tracing} (null = tracing off, whatever the options say);
   * the server closes it. Tests pass one over an in-memory exporter.
   */
  public QuiverServer(ServerOptions options, ServerTracing tracing) {
    routeJavaUtilLogging();
    this.options = options;
    this.limiter = ConnectionLimiter.of(options.connections());
    this.answers = AnswerBudget.of(options.connections());
    this.tracing = tracing;
    this.repository = options.s3() != null
        ? S3ModelRepository.create(options.s3())
        : new LocalModelRepository(options.modelRepository());
    this.metrics = new ServerMetrics();
    this.monitoring = new ModelMonitoring(repository);
    int workers = options.eventLoopThreads() > 0 ? options.eventLoopThreads() : Runtime.getRuntime().availableProcessors();
    this.batchers = new DynamicBatcherFactory(computePool(options.execution(), workers),
        TimeUnit.MICROSECONDS.toNanos(options.execution().inlineMaxMicros()), NanoClock.SYSTEM);
    ServerOptions.Lifecycle settings = options.lifecycle();
    // Schedulers, outermost first: monitoring (quiver.monitoring; the request path finds it with one type
    // check), the response cache (response_cache), ensembles and the admission limit, the batcher.
    // Ensemble steps and ensemble cache keys route through the manager.
    this.cache = options.execution().cache() == null ? null
        : ResponseCache.open(options.execution().cache(), metrics.pipeline().cacheMetrics(options.execution().cache().kind()
            == io.quiver.cache.CacheOptions.Kind.LOCAL ? "local" : "redis"));
    metrics.pipeline().bind(cache);
    PipelineSchedulerFactory pipelines = new PipelineSchedulerFactory(new MetricsSchedulerFactory(batchers, metrics),
        metrics.pipeline()::stepListener);
    CachingSchedulerFactory caching = new CachingSchedulerFactory(pipelines, cache);
    this.loadScheduling = IdleLoads.create(settings.loadYieldMillis());
    this.models = new ModelManager(repository, ModelManager.discoverRuntimes(),
        new MonitoringSchedulerFactory(caching, monitoring),
        ModelManagerOptions.defaults().withControlMode(options.controlMode()).withStartupModels(options.startupModels())
            .withMemoryBudgetBytes(settings.memoryBudgetBytes()).withPinnedModels(settings.pinnedModels())
            .withOnDemandQueueLimit(settings.onDemandQueueLimit()).withLoadScheduling(loadScheduling));
    this.lifecycle = new ModelLifecycle(models, new LifecycleOptions(settings.pollIntervalMillis(), null)
        .withModelCacheDir(settings.modelCacheDir()).withPersistDesiredState(settings.persistDesiredState()));
    models.setListener(new LifecycleMetrics(metrics.registry(), models));
    pipelines.routeThrough(models::acquire);
    caching.routeThrough(models::acquire);
    // Event loops that share cores with compute threads give way to them instead of preempting (CpuSharing).
    int cores = Runtime.getRuntime().availableProcessors();
    int computeThreads = batchers.computePool().threads();
    boolean batchLoops = CpuSharing.supported()
        && options.execution().eventLoopPolicy().batch(cores, workers, computeThreads);
    log.info("{} event loop(s) under {} beside {} compute thread(s) on {} core(s)", workers,
        batchLoops ? "SCHED_BATCH" : "the default policy", computeThreads, cores);
    DefaultThreadFactory loopThreads = batchLoops ? CpuSharing.batchThreads("grpc-worker")
        : new DefaultThreadFactory("grpc-worker", true);
    if (Epoll.isAvailable()) {
      bossGroup = new EpollEventLoopGroup(1, new DefaultThreadFactory("grpc-boss", true));
      workerGroup = new EpollEventLoopGroup(workers, loopThreads);
      channelType = EpollServerSocketChannel.class;
    } else {
      bossGroup = new NioEventLoopGroup(1, new DefaultThreadFactory("grpc-boss", true));
      workerGroup = new NioEventLoopGroup(workers, loopThreads);
      channelType = NioServerSocketChannel.class;
    }
    this.loopScheduling = new CpuSharing.LoopScheduling(workerGroup, batchLoops);
    // Before any connection: handlers find their loop's executor, and the batcher answers through it.
    EventLoopTransports.install(workerGroup);
    // Triton's system shared memory extension, where the machine has POSIX shared memory (/dev/shm).
    this.sharedMemory = SharedMemoryRegistry.supported(SharedMemoryRegistry.DEFAULT_ROOT)
        ? new SharedMemoryRegistry(SharedMemoryRegistry.DEFAULT_ROOT) : null;
  }

  /**
   * The compute pool: {@code computeThreads} threads (default: one per usable core); idle threads spin
   * only when the machine has a core to spare beyond the pool and the event loops.
   */
  private static ComputePool computePool(ServerOptions.Execution execution, int eventLoops) {
    int cores = Runtime.getRuntime().availableProcessors();
    int threads = execution.computeThreads() > 0 ? execution.computeThreads() : cores;
    return new ComputePool(threads, ComputePool.IdleMode.forMachine(cores, threads + eventLoops), "quiver-compute-");
  }

  /** The data plane's event loops (package-private: tests check their CPU policy). */
  EventLoopGroup eventLoops() {
    return workerGroup;
  }

  /** Batch jobs with these settings (before {@link #start()}); without them every submission is refused. */
  public QuiverServer withJobs(JobsOptions options) {
    this.jobsOptions = options;
    return this;
  }

  /** Loads the models (blocking), then serves. */
  public QuiverServer start() throws IOException {
    long began = System.nanoTime();
    long startedAtMillis = System.currentTimeMillis();
    metrics.bind(models);
    monitoring.bind(models);
    MonitoringMetrics.register(metrics.registry(), monitoring);
    lifecycle.start(); // the desired state and the poller run whether or not the control port is open
    metrics.recordStartup(models, System.nanoTime() - began);
    SecurityPolicy security = options.securityConfig() == null ? null : SecurityPolicy.fromFile(options.securityConfig());
    ReloadingPemMaterial tls = options.tls() == null ? null : TlsContexts.material(options.tls());
    // RepositoryModelLoad's file: contents follow the control plane's upload limit (staged in the temp directory).
    RepositoryLoads loads = options.controlPlane() == null ? null
        : new RepositoryLoads(options.controlPlane().maxUploadBytes(), null);
    DataPlane plane = new DataPlane(lifecycle, metrics, this::isReady, version(), repositoryOps,
        options.accessLog(), options.limits(), security, tracing, monitoring, sharedMemory, loads);
    InferenceServiceImpl inference = new InferenceServiceImpl(plane, options.connections().maxUnansweredPerStream());
    jobs = new JobManager(plane, jobsOptions,
        repository instanceof io.quiver.registry.WritableModelRepository w ? w : null, metrics, loopScheduling);
    NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(options.host(), options.grpcPort()));
    // TLS, connection limits, handshake/idle/keep-alive timeouts (docs/hardening.md).
    GrpcTransports.harden(builder, options.connections(), limiter, answers,
        tls == null ? null : TlsContexts.forGrpcServer(tls), "gRPC");
    if (security != null) {
      builder.intercept(new GrpcSecurityInterceptor(security));
    }
    // Every service guarded: unparseable messages are INVALID_ARGUMENT, calls past their deadline are
    // refused unread, and the inference service's unsent answers are bounded per connection.
    List<ServerServiceDefinition> services = List.of(
        CallGuard.guard(inferenceService(inference, tracing), answers),
        CallGuard.guard(new MonitoringServiceImpl(plane).bindService()),
        CallGuard.guard(health.getHealthService().bindService()),
        CallGuard.guard(ProtoReflectionServiceV1.newInstance().bindService()),
        CallGuard.guard(legacyReflection().bindService()));
    services.forEach(builder::addService);
    // The server's time per call by method and code (how fast refusals leave under overload): only
    // where someone can read it, since it costs every call a tracer.
    if (options.metricsPort() >= 0) {
      builder.addStreamTracerFactory(new GrpcCallMetrics(metrics.registry(), services));
    }
    grpcServer = builder
        .channelType(channelType)
        .bossEventLoopGroup(bossGroup)
        .workerEventLoopGroup(workerGroup)
        // Handlers never block (validation + non-blocking submit), so they run on the event loop:
        // the hop to a pool thread would cost several times the protocol work on small calls.
        .directExecutor()
        .maxInboundMessageSize(options.maxMessageBytes())
        .maxInboundMetadataSize(64 * 1024)
        // Bounds HTTP/2 streams per connection: one client cannot open unbounded concurrent calls.
        .maxConcurrentCallsPerConnection(options.limits().maxConcurrentCallsPerConnection())
        .build()
        .start();
    if (options.httpPort() >= 0) {
      if (options.console()) {
        console = new Console(models, metrics, security, options.maxHttpBodyBytes(),
            options.controlPlane() == null ? 0 : options.controlPlane().maxUploadBytes(),
            lifecycle.uploads());
      }
      restServer = new RestServer(plane, options.host(), options.httpPort(), options.maxHttpBodyBytes(), bossGroup,
          workerGroup, channelType, tls == null ? null : TlsContexts.forHttpServer(tls), console, options.connections(),
          limiter)
          .withRoutes("jobs", new JobsRestRoutes(jobs))
          .start();
    }
    if (options.metricsPort() >= 0) {
      metrics.startExporter(options.host(), options.metricsPort());
    }
    if (options.controlPlane() != null) {
      var controlTls = tls == null ? null : TlsContexts.forGrpcServer(tls);
      controlPlane = new ControlPlaneServer(lifecycle, options.controlPlane(), monitoring).start(transport -> {
        GrpcTransports.harden(transport, options.connections(), limiter, null, controlTls, "control");
        if (security != null) {
          // Every control method needs the admin permission (the interceptor's rule for services
          // other than the inference service).
          transport.intercept(new GrpcSecurityInterceptor(security));
        }
        // Batch jobs share the control port (and its admin-only rule when security is on).
        transport.addService(CallGuard.guard(new BatchJobsService(jobs, () -> {
          io.quiver.server.security.CallerPrincipal p = GrpcSecurityInterceptor.PRINCIPAL.get();
          return p == null ? io.quiver.server.security.CallerPrincipal.ANONYMOUS : p.name();
        }).bind()));
        return transport;
      });
    }
    // Every routing change (data-plane and control-plane load/unload, the poller, failed loads) is
    // published by the manager: per-model health follows it here, without re-listing the repository.
    models.addListener(model -> health.setStatus(model,
        !closed && models.isReady(model, "") ? ServingStatus.SERVING : ServingStatus.NOT_SERVING));
    publishInitialHealth();
    if (console != null) {
      // The console's changes are the control plane's own RPCs, in-process, behind the same authentication.
      String controlInProcess = controlPlane == null ? null : controlPlane.bindInProcess(transport -> {
        if (security != null) {
          transport.intercept(new GrpcSecurityInterceptor(security));
        }
        return transport.intercept(Console.controlPeerInterceptor());
      });
      console.started(new ServerFacts(version(), startedAtMillis, options.host(), port(), httpPort(), metricsPort(),
          controlPort(), tls == null ? "plaintext" : tls.options().mutual() ? "mutual TLS" : "TLS",
          security == null ? "off" : "API keys / JWT (" + options.securityConfig() + ")", plane.extensions(),
          repository.location(), options.controlMode().name(), tracing != null), controlInProcess);
    }
    jobs.start(); // resumes the jobs a previous server left unfinished
    ready = true;
    log.info("Quiver {} serving gRPC on {}:{}, REST on {}, metrics on {} ({} transport, {}, {}, tracing {});"
        + " repository {}; started in {} ms",
        version(), options.host(), port(), restServer == null ? "(off)" : String.valueOf(httpPort()),
        metrics.exporterPort() < 0 ? "(off)" : String.valueOf(metricsPort()), Epoll.isAvailable() ? "epoll" : "nio",
        tls == null ? "plaintext" : tls.options().mutual() ? "mutual TLS" : "TLS",
        security == null ? "no authentication" : "authentication from " + options.securityConfig(),
        tracing == null ? "off" : "on",
        repository.location(),
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began));
    return this;
  }

  /**
   * The inference service as bound: infer requests parsed with aliased bytes fields (one copy of the
   * tensor bytes fewer, see {@link AliasingRequestMarshaller}); with tracing on, traceparent read and
   * answered on the infer calls (off, no interceptor is installed at all).
   */
  static io.grpc.ServerServiceDefinition inferenceService(InferenceServiceImpl inference, ServerTracing tracing) {
    io.grpc.ServerServiceDefinition service =
        AliasingRequestMarshaller.withInferMarshallers(inference.bindService(), ALIASING_REQUEST_PARSING);
    return tracing == null ? service : ServerInterceptors.intercept(service, new GrpcTracingInterceptor());
  }

  /**
   * Whether ModelInfer/ModelStreamInfer requests are parsed by {@link AliasingRequestMarshaller};
   * {@code -Dquiver.grpc.aliasingParse=false} falls back to grpc-java's default marshaller.
   */
  static final boolean ALIASING_REQUEST_PARSING =
      !"false".equalsIgnoreCase(System.getProperty("quiver.grpc.aliasingParse"));

  /**
   * grpc-java logs through java.util.logging: routed into SLF4J (our JSON log), once per process. The
   * levels follow logback's (LevelChangePropagator in logback.xml), so disabled levels cost nothing.
   */
  private static void routeJavaUtilLogging() {
    synchronized (QuiverServer.class) {
      if (!org.slf4j.bridge.SLF4JBridgeHandler.isInstalled()) {
        org.slf4j.bridge.SLF4JBridgeHandler.removeHandlersForRootLogger();
        org.slf4j.bridge.SLF4JBridgeHandler.install();
      }
    }
  }

  @SuppressWarnings("deprecation")
  private static io.grpc.BindableService legacyReflection() {
    // v1alpha, for grpcurl and other clients that predate the v1 reflection service.
    return ProtoReflectionService.newInstance();
  }

  /** The bound gRPC port (useful when the options asked for port 0). */
  public int port() {
    return grpcServer.getPort();
  }

  /** The bound REST port, or -1 when REST is off. */
  public int httpPort() {
    return restServer == null ? -1 : restServer.port();
  }

  /** The bound metrics port, or -1 when the exporter is off. */
  public int metricsPort() {
    return metrics.exporterPort();
  }

  public ServerMetrics metrics() {
    return metrics;
  }

  public ModelManager models() {
    return models;
  }

  /** The batch-job service (after {@link #start()}). */
  public JobManager jobs() {
    return jobs;
  }

  /** The model lifecycle: desired state, poller, upload staging and the manager. */
  public ModelLifecycle lifecycle() {
    return lifecycle;
  }

  boolean isReady() {
    return ready && !closed && models.allReady();
  }

  /**
   * Publishes the starting grpc.health.v1 statuses: the server ("" and the inference service) and every
   * model the repository lists (NOT_SERVING until ready). Later changes arrive through the manager's
   * listener.
   */
  private void publishInitialHealth() {
    boolean serving = !closed;
    health.setStatus("", serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    health.setStatus(INFERENCE_SERVICE, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    Set<String> readyModels = new HashSet<>();
    Set<String> allModels = new HashSet<>();
    for (ModelVersionStatus status : models.index()) {
      allModels.add(status.name());
      if (status.state() == ModelVersionStatus.State.READY) {
        readyModels.add(status.name());
      }
    }
    for (String model : allModels) {
      health.setStatus(model, serving && readyModels.contains(model) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    }
  }

  /** The bound control-plane port, or -1 when the control plane is off. */
  public int controlPort() {
    return controlPlane == null ? -1 : controlPlane.port();
  }

  /** Blocks until the server has terminated. */
  public void awaitTermination() throws InterruptedException {
    grpcServer.awaitTermination();
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    log.info("shutting down: NOT_SERVING, draining in-flight requests (grace {} ms)", options.shutdownGraceMillis());
    health.enterTerminalState();
    if (restServer != null) {
      restServer.stopAccepting();
    }
    if (grpcServer != null) {
      grpcServer.shutdown();
      try {
        if (!grpcServer.awaitTermination(options.shutdownGraceMillis(), TimeUnit.MILLISECONDS)) {
          log.warn("in-flight requests did not finish within {} ms; cancelling them", options.shutdownGraceMillis());
          grpcServer.shutdownNow();
          grpcServer.awaitTermination(5, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        grpcServer.shutdownNow();
      }
    }
    repositoryOps.shutdown();
    if (console != null) {
      console.close();
    }
    if (controlPlane != null) {
      controlPlane.close();
    }
    if (jobs != null) {
      jobs.close(); // running jobs stop at their last committed chunk; a restart resumes them
    }
    lifecycle.close(); // stops the poller; completes every accepted request, REST ones included
    loadScheduling.close(); // after the last load
    batchers.close(); // after the models: their batchers ran on its pool until the last request
    monitoring.close();
    if (cache != null) {
      cache.close();
    }
    if (sharedMemory != null) {
      sharedMemory.close(); // every request is answered: the regions unmap now
    }
    if (restServer != null) {
      restServer.close();
    }
    metrics.close();
    if (tracing != null) {
      tracing.close(); // flushes the spans of the requests answered above
    }
    repository.close();
    workerGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    bossGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    log.info("stopped");
  }

  static String version() {
    String v = QuiverServer.class.getPackage().getImplementationVersion();
    return v == null ? "dev" : v;
  }
}
