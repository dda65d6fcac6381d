package io.quiver.server;

import java.util.List;
import java.util.Locale;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The {@code tritonserver} flags that {@code quiver serve} accepts beside its own, so that a command
 * line written for Triton (KServe's stock Triton ServingRuntime, a Helm chart, a compose file) starts
 * Quiver with only the image changed (docs/kubernetes.md). Flags that both servers spell alike
 * ({@code --model-repository}, {@code --grpc-port}, {@code --http-port}, {@code --metrics-port},
 * {@code --model-control-mode}, {@code --load-model}) are Quiver's own options; this mixin holds the
 * Triton-only ones and turns every other Triton flag into an error that names it, never a silent
 * no-op.
 *
 * <p>Booleans are read as Triton reads them: {@code true}/{@code on}/{@code 1} and
 * {@code false}/{@code off}/{@code 0}, any case. Used once, on the thread that parses the command line.
 */
final class TritonFlags {
  /**
   * Every long option of {@code tritonserver} (src/command_line_parser.cc of
   * triton-inference-server/server, read at commit e1db8a6, August 2026). The ones not handled here
   * or by Quiver's own options are refused by name.
   */
  static final Set<String> TRITON_OPTIONS = Set.of(
      "allow-client-shm", "allow-cpu-metrics", "allow-gpu-metrics", "allow-grpc", "allow-http", "allow-metrics",
      "allow-sagemaker", "allow-vertex-ai", "backend-config", "backend-directory", "buffer-manager-thread-count",
      "cache-config", "cache-directory", "cuda-memory-pool-byte-size", "cuda-virtual-address-size",
      "disable-auto-complete-config", "enable-peer-access", "exit-on-error", "exit-timeout-secs", "grpc-address",
      "grpc-header-forward-pattern", "grpc-http2-max-ping-strikes", "grpc-infer-thread-count",
      "grpc-keepalive-time", "grpc-keepalive-timeout", "grpc-max-connection-age", "grpc-max-response-pool-size",
      "grpc-port", "grpc-restricted-protocol", "grpc-root-cert", "grpc-server-cert", "grpc-server-key",
      "grpc-use-ssl", "grpc-use-ssl-mutual", "help", "host-policy", "http-address", "http-header-forward-pattern",
      "http-max-input-size", "http-port", "http-restricted-api", "http-thread-count", "id", "load-model",
      "log-error", "log-file", "log-format", "log-info", "log-verbose", "log-warning", "metrics-address",
      "metrics-config", "metrics-interval-ms", "metrics-port", "model-config-name", "model-control-mode",
      "model-load-gpu-limit", "model-load-retry-count", "model-load-thread-count", "model-namespacing",
      "model-repository", "model-store", "pinned-memory-pool-byte-size", "rate-limit", "rate-limit-resource",
      "repoagent-directory", "repository-poll-secs", "response-cache-byte-size", "reuse-grpc-port",
      "reuse-http-port", "sagemaker-port", "sagemaker-safe-port-range", "sagemaker-thread-count",
      "strict-model-config", "strict-readiness", "trace-config", "trace-count", "trace-file", "trace-level",
      "trace-log-frequency", "trace-rate", "vertex-ai-default-model", "vertex-ai-port", "vertex-ai-thread-count");

  /** The Triton spellings Quiver understands (its own options plus this mixin's), for error messages. */
  static final List<String> SUPPORTED = List.of("--model-repository", "--model-store", "--grpc-port", "--http-port",
      "--metrics-port", "--allow-grpc", "--allow-http", "--allow-metrics", "--model-control-mode", "--load-model",
      "--strict-model-config", "--log-verbose", "--log-format", "--exit-timeout-secs", "--cache-config",
      "--grpc-keepalive-time", "--grpc-keepalive-timeout", "--grpc-max-connection-age");

  @Spec(Spec.Target.MIXEE)
  CommandSpec mixee;

  @Option(names = "--allow-grpc", paramLabel = "BOOL", arity = "1", converter = TritonBoolean.class,
      description = "Triton's flag: gRPC is always on in Quiver, so only true is accepted.")
  Boolean allowGrpc;

  @Option(names = "--allow-http", paramLabel = "BOOL", arity = "1", converter = TritonBoolean.class,
      description = "Triton's flag: false turns REST off (as --http-port -1).")
  Boolean allowHttp;

  @Option(names = "--allow-metrics", paramLabel = "BOOL", arity = "1", converter = TritonBoolean.class,
      description = "Triton's flag: false turns the metrics exporter off (as --metrics-port -1).")
  Boolean allowMetrics;

  @Option(names = "--strict-model-config", paramLabel = "BOOL", arity = "1", converter = TritonBoolean.class,
      description = "Triton's flag: Quiver always completes partial or absent configs from the model file, so only false is accepted.")
  Boolean strictModelConfig;

  @Option(names = "--log-verbose", paramLabel = "LEVEL",
      description = "Triton's flag: 0 leaves logging as it is, 1 or more logs io.quiver at DEBUG.")
  Integer logVerbose;

  @Option(names = "--exit-timeout-secs", paramLabel = "SECONDS",
      description = "Triton's flag: the same as --shutdown-grace-ms, in seconds.")
  Long exitTimeoutSecs;

  /**
   * Refuses what Quiver cannot honour; every message names the flag.
   *
   * @param unmatched the arguments picocli did not recognise (the command's {@code @Unmatched} list, which
   *     picocli does not fill in a mixin)
   */
  void check(List<String> unmatched) {
    for (String arg : unmatched) {
      if (arg.startsWith("--")) {
        String name = arg.substring(2).split("=", 2)[0];
        if (TRITON_OPTIONS.contains(name)) {
          throw fail("'--" + name + "' is a tritonserver flag that Quiver does not support; the Triton flags"
              + " Quiver accepts are " + String.join(", ", SUPPORTED) + " (docs/kubernetes.md)");
        }
        throw fail("Unknown option: '" + arg + "'");
      }
      throw fail("Unexpected argument: '" + arg + "'");
    }
    if (Boolean.FALSE.equals(allowGrpc)) {
      throw fail("--allow-grpc=false: Quiver always serves gRPC (its data plane); drop the flag or set it to true");
    }
    if (Boolean.TRUE.equals(strictModelConfig)) {
      throw fail("--strict-model-config=true is not supported: Quiver completes absent or partial model"
          + " configs from the model file (Triton's --strict-model-config=false)");
    }
    if (logVerbose != null && logVerbose < 0) {
      throw fail("--log-verbose must be >= 0; was " + logVerbose);
    }
    if (exitTimeoutSecs != null) {
      if (exitTimeoutSecs < 0) {
        throw fail("--exit-timeout-secs must be >= 0; was " + exitTimeoutSecs);
      }
      if (mixee.commandLine().getParseResult().hasMatchedOption("--shutdown-grace-ms")) {
        throw fail("--exit-timeout-secs and --shutdown-grace-ms set the same thing; give one of them");
      }
    }
  }

  /** The REST port after {@code --allow-http}. */
  int httpPort(int port) {
    return Boolean.FALSE.equals(allowHttp) ? ServerOptions.DISABLED : port;
  }

  /** The metrics port after {@code --allow-metrics}. */
  int metricsPort(int port) {
    return Boolean.FALSE.equals(allowMetrics) ? ServerOptions.DISABLED : port;
  }

  /** The shutdown grace after {@code --exit-timeout-secs}. */
  long shutdownGraceMillis(long millis) {
    return exitTimeoutSecs == null ? millis : Math.multiplyExact(exitTimeoutSecs, 1000L);
  }

  /** Applies {@code --log-verbose} (a process-wide side effect: call when the server really starts). */
  void applyLogLevel() {
    if (logVerbose != null && logVerbose > 0) {
      LogSettings.setVerbose(logVerbose); // as LogSettings' log_verbose_level reports it
    }
  }

  private ParameterException fail(String message) {
    return new ParameterException(mixee.commandLine(), message);
  }

  /** Triton's boolean spellings. */
  static final class TritonBoolean implements CommandLine.ITypeConverter<Boolean> {
    @Override
    public Boolean convert(String value) {
      switch (value.toLowerCase(Locale.ROOT)) {
        case "true", "on", "1" -> {
          return true;
        }
        case "false", "off", "0" -> {
          return false;
        }
        default -> throw new CommandLine.TypeConversionException(
            "invalid value for a boolean option: '" + value + "' (true, false, on, off, 1 or 0)");
      }
    }
  }
}
