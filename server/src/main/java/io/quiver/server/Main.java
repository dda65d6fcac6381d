package io.quiver.server;

import io.quiver.lifecycle.ControlMode;
import io.quiver.control.cli.ModelsCommand;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.server.jobs.JobsCommand;
import io.quiver.server.jobs.JobsOptions;
import io.quiver.registry.s3.S3RepositoryOptions;
import java.net.URI;
import io.quiver.server.security.TlsOptions;
import io.quiver.server.tracing.TracingOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Unmatched;

/** The `quiver` command line. */
@Command(name = "quiver", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    description = "Quiver: a gRPC-first model inference server (KServe v2 / Open Inference Protocol).",
    subcommands = {Main.Serve.class, ModelsCommand.class, JobsCommand.class})
public final class Main implements Runnable {
  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }

  /**
   * The server options that {@code args} (the command line after the program name, starting with
   * {@code serve} or Triton's {@code tritonserver}) describe, checked as {@code quiver serve} checks them
   * before it looks at the file system (whether the repository directory exists is checked at start);
   * nothing is started and the process is left as it is. The Kubernetes manifests' tests (k8s/) parse
   * every container's args with this, so a renamed or removed flag breaks the build.
   *
   * @throws CommandLine.ParameterException naming the flag that is wrong, unknown or unsupported
   */
  public static ServerOptions serveOptions(String... args) {
    CommandLine commandLine = new CommandLine(new Main());
    CommandLine.ParseResult parsed = commandLine.parseArgs(args);
    if (!parsed.hasSubcommand() || !(parsed.subcommand().commandSpec().userObject() instanceof Serve serve)) {
      throw new CommandLine.ParameterException(commandLine, "expected 'serve' (or 'tritonserver') and its options");
    }
    return serve.options();
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"quiver " + QuiverServer.version()};
    }
  }

  @Command(name = "serve", aliases = "tritonserver", mixinStandardHelpOptions = true,
      description = {"Serve the models of a model repository over gRPC and REST (KServe v2), with Prometheus metrics.",
          "Also answers to 'tritonserver' and accepts Triton's flags (--model-store, --allow-http, ...):"
              + " a Triton command line starts Quiver unchanged (docs/kubernetes.md)."})
  static final class Serve implements Callable<Integer> {
    @Option(names = {"--model-repository", "--model-store"}, paramLabel = "DIR|s3://BUCKET/PREFIX",
        description = "Triton-style model repository: a directory, or an S3 URL (see --s3-*). Default: examples/models of the Quiver installation.")
    String modelRepository;

    @Option(names = "--s3-endpoint", paramLabel = "URL",
        description = "Endpoint of an S3-compatible store (MinIO, Ceph...); implies path-style addressing. Default: AWS.")
    URI s3Endpoint;

    @Option(names = "--s3-region", description = "S3 region (default: the SDK's region chain, else us-east-1).")
    String s3Region;

    @Option(names = "--s3-path-style", description = "Path-style S3 addressing (bucket in the path, not the host).")
    boolean s3PathStyle;

    @Option(names = "--s3-access-key", description = "Static S3 access key; without it the default credential chain is used (AWS_ACCESS_KEY_ID, profiles, instance roles).")
    String s3AccessKey;

    @Option(names = "--s3-secret-key", description = "Static S3 secret key, with --s3-access-key (prefer the environment: AWS_SECRET_ACCESS_KEY).")
    String s3SecretKey;

    @Option(names = "--model-cache-dir", paramLabel = "DIR",
        description = "Where versions fetched from S3 are cached and uploads are staged (swept at start) (default: $TMPDIR/quiver-model-cache).")
    Path modelCacheDir;

    @Option(names = "--model-memory-budget", paramLabel = "BYTES", defaultValue = "0",
        description = "Most memory loaded model versions may hold together (e.g. 8589934592, 8g, 512MiB); loading beyond it "
            + "evicts the least recently used unpinned models, which load again on their next request. 0 = no budget (default).")
    String memoryBudget;

    @Option(names = "--pin-model", paramLabel = "NAME",
        description = "A model never evicted under the memory budget, and loaded at start in lazy mode (repeatable).")
    List<String> pinModels = new ArrayList<>();

    @Option(names = "--desired-state", paramLabel = "repository|memory",
        description = "Where the desired state (loads, unloads, policies, traffic, pins) is kept: beside the models in the "
            + "repository, so restarts and replicas converge (the default of 'quiver serve'), or in memory only (the "
            + "default when started as 'tritonserver', which writes nothing into its model store, as Triton does; and "
            + "for a repository mounted read-only). A repository that refuses the write falls back to memory by itself.")
    String desiredState;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec; // to tell 'serve' from 'tritonserver'

    @Option(names = "--model-load-yield-ms", defaultValue = "50", paramLabel = "MS",
        description = "Linux: a model load runs under SCHED_IDLE, on cores no serving thread wants, until it has waited this"
            + " many milliseconds in all for a core; then at normal priority (docs/lifecycle.md). 0 = loads are"
            + " never lowered (default ${DEFAULT-VALUE}).")
    long loadYieldMillis;

    @Option(names = "--model-load-queue-size", defaultValue = "256",
        description = "Requests that may wait for one model's on-demand load; more are refused with RESOURCE_EXHAUSTED and a retry hint (default ${DEFAULT-VALUE}).")
    int loadQueueSize;

    @Option(names = "--control-port", defaultValue = "8003",
        description = "Control-plane gRPC port (quiver.control.v1: list, load, unload, upload, traffic, watch); -1 turns it off (default ${DEFAULT-VALUE}).")
    int controlPort;

    @Option(names = "--control-host", paramLabel = "ADDRESS",
        description = "Address the control plane binds (default: --host); 127.0.0.1 keeps it inside the pod, reached through the Envoy sidecar's mTLS (k8s/).")
    String controlHost;

    @Option(names = {"--repository-poll-ms", "--control-poll-ms"}, defaultValue = "10000",
        description = "How often the desired-state manifest (and, in poll mode, the repository; in lazy mode, its list of models) is read again, whether or not the control port is open; 0 = never (default ${DEFAULT-VALUE}).")
    long controlPollMillis;

    @Option(names = "--max-upload-bytes", defaultValue = "2147483648",
        description = "Largest model version accepted by UploadModel (default ${DEFAULT-VALUE} = 2 GiB).")
    long maxUploadBytes;

    @Option(names = "--grpc-port", defaultValue = "8001", description = "gRPC data-plane port (default ${DEFAULT-VALUE}).")
    int grpcPort;

    @Option(names = "--http-port", defaultValue = "8000",
        description = "REST v2 (HTTP/JSON) port; -1 turns REST off (default ${DEFAULT-VALUE}).")
    int httpPort;

    @Option(names = "--metrics-port", defaultValue = "8002",
        description = "Prometheus /metrics port; -1 turns the exporter off (default ${DEFAULT-VALUE}).")
    int metricsPort;

    @Option(names = "--http-max-body-bytes", defaultValue = "67108864",
        description = "Largest REST request body, JSON plus binary tensors (default ${DEFAULT-VALUE} = 64 MiB).")
    int maxHttpBodyBytes;

    @Option(names = "--console", negatable = true, defaultValue = "true", fallbackValue = "true",
        description = "Serve the operator's web console at http(s)://HOST:HTTP_PORT/console/ (default on; --no-console turns it off).")
    boolean console;

    @Option(names = "--access-log", description = "Log one line per inference request (logger quiver.access).")
    boolean accessLog;

    @Option(names = "--log-format", paramLabel = "json|text",
        description = "Console log format: json (one JSON object per line, for collectors; the Kubernetes manifests' choice)"
            + " or text (time, level, logger, request id, message); Triton's default and ISO8601 are text. Default: text"
            + " when standard output is a terminal, json otherwise.")
    String logFormat;

    @Option(names = "--tracing", defaultValue = "none", paramLabel = "none|logging|otlp",
        description = "Where request spans go (W3C traceparent continued from gRPC metadata and HTTP headers):"
            + " none (default; no tracing cost), logging (one log line per span), otlp (OTLP/HTTP to --tracing-endpoint).")
    String tracing;

    @Option(names = "--tracing-endpoint", paramLabel = "URL",
        description = "OTLP/HTTP traces endpoint for --tracing otlp (default " + TracingOptions.DEFAULT_OTLP_ENDPOINT + ").")
    String tracingEndpoint;

    @Option(names = "--host", defaultValue = "0.0.0.0", description = "Address to bind (default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--model-control-mode", defaultValue = "none",
        description = "none: load every model at start; explicit: load only the --load-model ones; poll: load every model and follow new versions in the repository; lazy: load a model on its first request (pinned and --load-model ones at start) (default ${DEFAULT-VALUE}).")
    String controlMode;

    @Option(names = "--load-model", paramLabel = "NAME", description = "With explicit or lazy control: a model to load at start (repeatable).")
    List<String> loadModels = new ArrayList<>();

    @Option(names = "--grpc-max-message-bytes", defaultValue = "268435456",
        description = "Largest gRPC message accepted (default ${DEFAULT-VALUE} = 256 MiB).")
    int maxMessageBytes;

    @Option(names = "--event-loop-threads", defaultValue = "0", description = "Netty worker threads; 0 = one per core.")
    int eventLoopThreads;

    @Option(names = "--compute-threads", defaultValue = "0",
        description = "Threads that run model batches too slow to run on an event loop, shared by every model; 0 = one per core.")
    int computeThreads;

    @Option(names = "--inline-max-us", defaultValue = "50",
        description = "A batch whose measured cost is at most this many microseconds runs on the event loop that formed it"
            + " (no thread hand-off); 0 = never. A model's parameter quiver.inline_max_us overrides it (default ${DEFAULT-VALUE}).")
    long inlineMaxMicros;

    @Option(names = "--event-loop-scheduling", defaultValue = "auto", paramLabel = "auto|batch|normal",
        description = "Linux only: batch runs the event loops under SCHED_BATCH, so that a loop woken by the network waits for"
            + " the compute thread on its core to park or end its time slice instead of preempting it (more goodput under"
            + " overload, docs/benchmarks/cpu-sharing.md); auto does so when event loops and compute threads together"
            + " outnumber the cores; normal never (default ${DEFAULT-VALUE}).")
    String eventLoopScheduling;

    @Option(names = "--cache-config", paramLabel = "local,size=BYTES|redis,host=H[,port=P,...]",
        description = "The response cache that models with response_cache { enable: true } use (Triton's syntax,"
            + " repeatable): local,size=268435456 (in-process, bounded in bytes) or redis,host=...,port=... (shared"
            + " by every replica; keys in docs/cache.md). Default: none.")
    List<String> cacheConfig = new ArrayList<>();

    @Option(names = "--shutdown-grace-ms", defaultValue = "30000",
        description = "On SIGTERM, how long in-flight requests may take to finish (default ${DEFAULT-VALUE}).")
    long shutdownGraceMillis;

    @Option(names = "--tls-cert", paramLabel = "PEM",
        description = "Server certificate chain (PEM, leaf first): turns on TLS for gRPC and REST. Reloaded when the file changes.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "Server private key (unencrypted PKCS#8 PEM), with --tls-cert.")
    Path tlsKey;

    @Option(names = "--tls-client-ca", paramLabel = "PEM",
        description = "CA certificates for client certificates: requires mutual TLS (clients without a valid certificate are refused).")
    Path tlsClientCa;

    @Option(names = "--tls-reload-check-ms", defaultValue = "1000",
        description = "How often, at most, a TLS handshake checks the PEM files for changes (default ${DEFAULT-VALUE}).")
    long tlsReloadCheckMillis;

    @Option(names = "--security-config", paramLabel = "FILE",
        description = "Security file (JSON): API keys, JWT, roles, rate limits (docs/security.md). Without it no authentication is required.")
    Path securityConfig;

    @Option(names = "--max-tensor-elements", defaultValue = "268435456",
        description = "Most elements in one input tensor (default ${DEFAULT-VALUE} = 2^28).")
    long maxTensorElements;

    @Option(names = "--max-bytes-element-length", defaultValue = "67108864",
        description = "Longest single BYTES element (default ${DEFAULT-VALUE} = 64 MiB).")
    int maxBytesElementLength;

    @Option(names = "--jobs-input-root", paramLabel = "DIR|s3://BUCKET/PREFIX",
        description = "Where batch jobs may read inputs (repeatable). Without input and output roots every job is refused.")
    List<String> jobsInputRoots = new ArrayList<>();

    @Option(names = "--jobs-output-root", paramLabel = "DIR|s3://BUCKET/PREFIX",
        description = "Where batch jobs may write outputs (repeatable).")
    List<String> jobsOutputRoots = new ArrayList<>();

    @Option(names = "--jobs-max-running", defaultValue = "2",
        description = "Batch jobs running at once; later ones wait, QUEUED (default ${DEFAULT-VALUE}).")
    int jobsMaxRunning;

    @Option(names = "--jobs-default-concurrency", defaultValue = "64",
        description = "Outstanding requests per batch job when the job does not set max_concurrency (default ${DEFAULT-VALUE}).")
    int jobsDefaultConcurrency;

    @Option(names = "--jobs-records-per-chunk", defaultValue = "10000",
        description = "Records per committed output chunk when the job does not say (default ${DEFAULT-VALUE}).")
    int jobsRecordsPerChunk;

    @Option(names = "--jobs-nice", defaultValue = "19",
        description = "Linux nice value of batch jobs' own threads (parsing, encoding, writing), so they use the CPU online"
            + " work leaves idle; 0 = as the server's (default ${DEFAULT-VALUE}).")
    int jobsNice;

    @Option(names = "--grpc-max-concurrent-calls-per-connection", defaultValue = "1024",
        description = "Most concurrent gRPC calls (HTTP/2 streams) on one connection, and REST streams on one HTTP/2"
            + " connection (default ${DEFAULT-VALUE}).")
    int maxConcurrentCallsPerConnection;

    /** Connection limits, timeouts and unsent-answer bounds (docs/hardening.md). */
    @Mixin
    ConnectionFlags connectionFlags;

    /** Triton's spellings of flags Quiver has under other names or not at all. */
    @Mixin
    TritonFlags triton;

    /** Unrecognised arguments, refused by {@link TritonFlags#check} with a message naming Triton's flags. */
    @Unmatched
    List<String> unmatched = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      ServerOptions options = options();
      if (options.s3() == null && !Files.isDirectory(options.modelRepository())) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--model-repository: '" + options.modelRepository() + "' is not a directory (nor an s3:// URL)");
      }
      LogSettings.setFormat(logFormat == null ? LogSettings.Format.forConsole() : LogSettings.Format.parse(logFormat));
      triton.applyLogLevel();
      QuiverServer server = new QuiverServer(options).withJobs(jobsOptions(options));
      CountDownLatch stopped = new CountDownLatch(1);
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        server.close();
        stopped.countDown();
      }, "quiver-shutdown"));
      server.start();
      server.awaitTermination();
      stopped.await();
      return 0;
    }

    /** The batch-job settings this command line describes; S3 roots use the repository's S3 flags. */
    JobsOptions jobsOptions(ServerOptions options) {
      JobsOptions jobs;
      try {
        jobs = JobsOptions.of(jobsInputRoots, jobsOutputRoots).withMaxRunningJobs(jobsMaxRunning)
            .withDefaultConcurrency(jobsDefaultConcurrency).withDefaultRecordsPerChunk(jobsRecordsPerChunk)
            .withThreadNice(jobsNice);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(new CommandLine(this), e.getMessage());
      }
      String s3Root = java.util.stream.Stream.concat(jobsInputRoots.stream(), jobsOutputRoots.stream())
          .filter(r -> r.startsWith("s3://")).findFirst().orElse(null);
      if (s3Root == null) {
        return jobs;
      }
      S3RepositoryOptions jobS3 = options.s3();
      if (jobS3 == null) {
        jobS3 = S3RepositoryOptions.of(s3Root, Path.of(System.getProperty("java.io.tmpdir"), "quiver-model-cache"));
        if (s3Endpoint != null) {
          jobS3 = jobS3.withEndpoint(s3Endpoint);
        }
        if (s3PathStyle) {
          jobS3 = jobS3.withPathStyle(true);
        }
        if (s3Region != null) {
          jobS3 = jobS3.withRegion(s3Region);
        }
        if ((s3AccessKey == null) != (s3SecretKey == null)) {
          throw new CommandLine.ParameterException(new CommandLine(this), "--s3-access-key and --s3-secret-key go together");
        }
        if (s3AccessKey != null) {
          jobS3 = jobS3.withCredentials(s3AccessKey, s3SecretKey);
        }
      }
      return jobs.withS3(jobS3);
    }

    /** The options this command line describes, checked; starts nothing. */
    ServerOptions options() {
      triton.check(unmatched);
      if (logFormat != null) {
        try {
          LogSettings.Format.parse(logFormat);
        } catch (io.quiver.core.InferenceException e) {
          throw new CommandLine.ParameterException(new CommandLine(this),
              "--log-format must be json or text (or Triton's default, ISO8601); was '" + logFormat + "'");
        }
      }
      List<String> startupModels = loadModels;
      String modeName = controlMode;
      if (startupModels.contains("*")) {
        // Triton's "load every model at start" (explicit mode only, and the only --load-model): Quiver's
        // none mode, since Quiver's load/unload APIs work in every mode.
        if (startupModels.size() != 1 || !"explicit".equalsIgnoreCase(modeName)) {
          throw new CommandLine.ParameterException(new CommandLine(this),
              "--load-model=* must be the only --load-model, with --model-control-mode=explicit");
        }
        startupModels = List.of();
        modeName = "none";
      }
      ControlMode mode = switch (modeName.toLowerCase(java.util.Locale.ROOT)) {
        case "none" -> ControlMode.NONE;
        case "explicit" -> ControlMode.EXPLICIT;
        case "poll" -> ControlMode.POLL;
        case "lazy" -> ControlMode.LAZY;
        default -> throw new CommandLine.ParameterException(new CommandLine(this),
            "--model-control-mode must be 'none', 'explicit', 'poll' or 'lazy'; was '" + controlMode + "'");
      };
      if ((mode == ControlMode.NONE || mode == ControlMode.POLL) && !startupModels.isEmpty()) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--load-model needs --model-control-mode=explicit or lazy");
      }
      long budgetBytes;
      try {
        budgetBytes = parseBytes(memoryBudget);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--model-memory-budget: " + e.getMessage());
      }
      if (controlPollMillis != 0 && controlPollMillis < 10) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--repository-poll-ms must be 0 (never) or at least 10; was " + controlPollMillis);
      }
      if (loadQueueSize < 1 || loadQueueSize > io.quiver.lifecycle.ModelManagerOptions.MAX_ON_DEMAND_QUEUE_LIMIT) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--model-load-queue-size must be between 1 and "
            + io.quiver.lifecycle.ModelManagerOptions.MAX_ON_DEMAND_QUEUE_LIMIT + "; was " + loadQueueSize);
      }
      if (loadYieldMillis < 0) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--model-load-yield-ms must be 0 (loads never lowered) or more; was " + loadYieldMillis);
      }
      boolean persistDesiredState = switch ((desiredState != null ? desiredState
          : startedAsTritonserver() ? "memory" : "repository").toLowerCase(java.util.Locale.ROOT)) {
        case "repository" -> true;
        case "memory" -> false;
        default -> throw new CommandLine.ParameterException(new CommandLine(this),
            "--desired-state must be 'repository' or 'memory'; was '" + desiredState + "'");
      };
      for (String name : pinModels) {
        String problem = io.quiver.registry.ModelNames.problem(name);
        if (problem != null) {
          throw new CommandLine.ParameterException(new CommandLine(this), "--pin-model: " + problem);
        }
      }
      S3RepositoryOptions s3 = null;
      Path repository;
      Path cache = modelCacheDir != null ? modelCacheDir : io.quiver.lifecycle.LifecycleOptions.defaultCacheDir();
      if (modelRepository != null && modelRepository.startsWith("s3://")) {
        s3 = S3RepositoryOptions.of(modelRepository, cache);
        if (s3Endpoint != null) {
          s3 = s3.withEndpoint(s3Endpoint);
        }
        if (s3PathStyle) {
          s3 = s3.withPathStyle(true);
        }
        if (s3Region != null) {
          s3 = s3.withRegion(s3Region);
        }
        if ((s3AccessKey == null) != (s3SecretKey == null)) {
          throw new CommandLine.ParameterException(new CommandLine(this), "--s3-access-key and --s3-secret-key go together");
        }
        if (s3AccessKey != null) {
          s3 = s3.withCredentials(s3AccessKey, s3SecretKey);
        }
        repository = cache;
      } else {
        repository = modelRepository != null ? Path.of(modelRepository) : defaultRepository();
      }
      if ((tlsCert == null) != (tlsKey == null)) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--tls-cert and --tls-key go together");
      }
      if (tlsClientCa != null && tlsCert == null) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--tls-client-ca needs --tls-cert and --tls-key");
      }
      if (tracingEndpoint != null && !"otlp".equalsIgnoreCase(tracing)) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--tracing-endpoint needs --tracing otlp");
      }
      TlsOptions tls = tlsCert == null ? null : new TlsOptions(tlsCert, tlsKey, tlsClientCa, tlsReloadCheckMillis);
      io.quiver.cache.CacheOptions responseCache;
      io.quiver.transport.ConnectionOptions connections;
      try {
        responseCache = io.quiver.cache.CacheOptions.parse(cacheConfig);
        connections = connectionFlags.options();
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(new CommandLine(this), e.getMessage());
      }
      return new ServerOptions(host, grpcPort, repository, mode, List.copyOf(startupModels),
          maxMessageBytes, eventLoopThreads, triton.shutdownGraceMillis(shutdownGraceMillis), triton.httpPort(httpPort),
          triton.metricsPort(metricsPort), maxHttpBodyBytes, accessLog,
          tls, securityConfig,
          new ServerOptions.Limits(maxTensorElements, maxBytesElementLength, maxConcurrentCallsPerConnection))
          .withS3(s3)
          .withControlPlane(controlPort < 0 ? null : ControlPlaneOptions.defaults()
              .withPort(controlPort)
              .withBindAddress(controlHost != null ? controlHost : host)
              .withMaxUploadBytes(maxUploadBytes))
          .withLifecycle(ServerOptions.Lifecycle.defaults()
              .withMemoryBudget(budgetBytes, List.copyOf(pinModels))
              .withOnDemandQueueLimit(loadQueueSize)
              .withPollIntervalMillis(controlPollMillis)
              .withModelCacheDir(cache)
              .withPersistDesiredState(persistDesiredState)
              .withLoadYieldMillis(loadYieldMillis))
          .withTracing(new TracingOptions(tracingExporter(), tracingEndpoint, null))
          .withConsole(console)
          .withExecution(new ServerOptions.Execution(computeThreads, inlineMaxMicros, responseCache,
              CpuSharing.EventLoopPolicy.parse(eventLoopScheduling)))
          .withConnections(connections);
    }

    /** Whether the command line named this command {@code tritonserver} (Triton's drop-in). */
    private boolean startedAsTritonserver() {
      CommandLine.ParseResult parsed = spec == null ? null : spec.commandLine().getParseResult();
      if (parsed == null) {
        return false;
      }
      for (String arg : parsed.originalArgs()) {
        if (arg.equals("tritonserver")) {
          return true;
        }
        if (arg.equals("serve")) {
          return false;
        }
      }
      return false;
    }

    private TracingOptions.Exporter tracingExporter() {
      return switch (tracing.toLowerCase(java.util.Locale.ROOT)) {
        case "none" -> TracingOptions.Exporter.NONE;
        case "logging" -> TracingOptions.Exporter.LOGGING;
        case "otlp" -> TracingOptions.Exporter.OTLP;
        default -> throw new CommandLine.ParameterException(new CommandLine(this),
            "--tracing must be none, logging or otlp; was '" + tracing + "'");
      };
    }

    /**
     * A byte count: digits, optionally with a binary unit (k, m, g, t; "KiB", "MB", "g" all mean powers of
     * 1024), e.g. "8589934592", "8g", "512MiB".
     */
    static long parseBytes(String text) {
      String t = text.trim().toLowerCase(java.util.Locale.ROOT);
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)\\s*([kmgt]?)(i?b)?").matcher(t);
      if (!m.matches()) {
        throw new IllegalArgumentException("expected a number of bytes such as 8589934592, 8g or 512MiB; was '" + text + "'");
      }
      int shift = switch (m.group(2)) {
        case "k" -> 10;
        case "m" -> 20;
        case "g" -> 30;
        case "t" -> 40;
        default -> 0;
      };
      try {
        long value = Long.parseLong(m.group(1));
        if (value > (Long.MAX_VALUE >> shift)) {
          throw new IllegalArgumentException("'" + text + "' is too large");
        }
        return value << shift;
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + text + "' is too large");
      }
    }

    private static Path defaultRepository() {
      String home = System.getenv("QUIVER_HOME");
      return (home != null ? Path.of(home) : Path.of("")).resolve("examples/models").toAbsolutePath();
    }
  }
}
