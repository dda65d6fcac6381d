package io.quiver.server;

import io.quiver.control.ControlMode;
import io.quiver.server.security.TlsOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The `quiver` command line. */
@Command(name = "quiver", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    description = "Quiver: a gRPC-first model inference server (KServe v2 / Open Inference Protocol).",
    subcommands = {Main.Serve.class})
public final class Main implements Runnable {
  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"quiver " + QuiverServer.version()};
    }
  }

  @Command(name = "serve", mixinStandardHelpOptions = true,
      description = "Serve the models of a model repository over gRPC and REST (KServe v2), with Prometheus metrics.")
  static final class Serve implements Callable<Integer> {
    @Option(names = "--model-repository", paramLabel = "DIR",
        description = "Triton-style model repository. Default: examples/models of the Quiver installation.")
    Path modelRepository;

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

    @Option(names = "--access-log", description = "Log one line per inference request (logger quiver.access).")
    boolean accessLog;

    @Option(names = "--host", defaultValue = "0.0.0.0", description = "Address to bind (default ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--model-control-mode", defaultValue = "none",
        description = "none: load every model at start; explicit: load only the --load-model ones (default ${DEFAULT-VALUE}).")
    String controlMode;

    @Option(names = "--load-model", paramLabel = "NAME", description = "With explicit control: a model to load at start (repeatable).")
    List<String> loadModels = new ArrayList<>();

    @Option(names = "--grpc-max-message-bytes", defaultValue = "268435456",
        description = "Largest gRPC message accepted (default ${DEFAULT-VALUE} = 256 MiB).")
    int maxMessageBytes;

    @Option(names = "--event-loop-threads", defaultValue = "0", description = "Netty worker threads; 0 = one per core.")
    int eventLoopThreads;

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

    @Option(names = "--grpc-max-concurrent-calls-per-connection", defaultValue = "1024",
        description = "Most concurrent gRPC calls (HTTP/2 streams) on one connection (default ${DEFAULT-VALUE}).")
    int maxConcurrentCallsPerConnection;

    @Override
    public Integer call() throws Exception {
      ControlMode mode = switch (controlMode.toLowerCase(java.util.Locale.ROOT)) {
        case "none" -> ControlMode.NONE;
        case "explicit" -> ControlMode.EXPLICIT;
        default -> throw new CommandLine.ParameterException(new CommandLine(this),
            "--model-control-mode must be 'none' or 'explicit'; was '" + controlMode + "'");
      };
      if (mode == ControlMode.NONE && !loadModels.isEmpty()) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--load-model needs --model-control-mode=explicit");
      }
      Path repository = modelRepository != null ? modelRepository : defaultRepository();
      if (!Files.isDirectory(repository)) {
        throw new CommandLine.ParameterException(new CommandLine(this),
            "--model-repository: '" + repository + "' is not a directory");
      }
      if ((tlsCert == null) != (tlsKey == null)) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--tls-cert and --tls-key go together");
      }
      if (tlsClientCa != null && tlsCert == null) {
        throw new CommandLine.ParameterException(new CommandLine(this), "--tls-client-ca needs --tls-cert and --tls-key");
      }
      TlsOptions tls = tlsCert == null ? null : new TlsOptions(tlsCert, tlsKey, tlsClientCa, tlsReloadCheckMillis);
      ServerOptions options = new ServerOptions(host, grpcPort, repository, mode, List.copyOf(loadModels),
          maxMessageBytes, eventLoopThreads, shutdownGraceMillis, httpPort, metricsPort, maxHttpBodyBytes, accessLog,
          tls, securityConfig,
          new ServerOptions.Limits(maxTensorElements, maxBytesElementLength, maxConcurrentCallsPerConnection));
      QuiverServer server = new QuiverServer(options);
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

    private static Path defaultRepository() {
      String home = System.getenv("QUIVER_HOME");
      return (home != null ? Path.of(home) : Path.of("")).resolve("examples/models").toAbsolutePath();
    }
  }
}
