package io.quiver.control.cli;

import io.quiver.client.ModelControlClient;
import io.quiver.client.QuiverException;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.VersionStatus;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code quiver models list|load|unload|upload|traffic|watch}: a client of the control API
 * ({@code quiver.control.v1.ModelControl}, port 8003 by default), built on the typed client's
 * {@link ModelControlClient}. Register it as a subcommand of the server's picocli {@code Main}:
 * {@code @Command(subcommands = ModelsCommand.class)}. Exit codes: 0 ok, 1 the server refused (its status
 * code and message are printed), 2 usage errors.
 */
@Command(name = "models", mixinStandardHelpOptions = true,
    description = "Manage the models of a running Quiver server through its control API.",
    subcommands = {ModelsCommand.List.class, ModelsCommand.Load.class, ModelsCommand.Unload.class,
        ModelsCommand.Upload.class, ModelsCommand.Traffic.class, ModelsCommand.Watch.class})
public final class ModelsCommand {
  @Option(names = "--control", defaultValue = "localhost:8003", paramLabel = "HOST:PORT",
      description = "The control API address (default: ${DEFAULT-VALUE}).")
  String control;

  @Option(names = "--timeout-s", defaultValue = "600", description = "Deadline of each call, in seconds (default: ${DEFAULT-VALUE}).")
  long timeoutSeconds;

  @Option(names = "--tls-ca", paramLabel = "PEM", description = "Use TLS, trusting the CAs in this file.")
  Path tlsCa;

  @Option(names = "--tls-cert", paramLabel = "PEM", description = "Mutual TLS: this client certificate (with --tls-key).")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "PEM", description = "Mutual TLS: the client certificate's PKCS#8 key.")
  Path tlsKey;

  @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:QUIVER_API_KEY}",
      description = "Send this API key (default: $QUIVER_API_KEY); needs TLS unless the address is loopback.")
  String apiKey;

  @Spec CommandLine.Model.CommandSpec spec;

  ModelControlClient client() {
    int colon = control.lastIndexOf(':');
    if (colon <= 0) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--control must be HOST:PORT; was " + control);
    }
    if ((tlsCert == null) != (tlsKey == null)) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--tls-cert and --tls-key go together");
    }
    ModelControlClient.Builder builder = ModelControlClient.builder().target(control)
        .defaultDeadline(Duration.ofSeconds(timeoutSeconds)).maxInboundMessageBytes(64 << 20);
    if (tlsCa != null) {
      builder.tlsTrust(tlsCa);
    }
    if (tlsCert != null) {
      builder.tlsClientCertificate(tlsCert, tlsKey);
    }
    if (apiKey != null && !apiKey.isEmpty()) {
      String host = control.substring(0, colon);
      builder.apiKey(apiKey).credentialsOverPlaintext(host.equals("localhost") || host.equals("127.0.0.1") || host.equals("[::1]"));
    }
    return builder.build();
  }

  /** Runs one command over a fresh client; prints a refusal as "error: CODE: message" and returns 1. */
  abstract static class Sub implements Callable<Integer> {
    @ParentCommand ModelsCommand parent;
    @Spec CommandLine.Model.CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    @Override
    public Integer call() throws Exception {
      try (ModelControlClient client = parent.client()) {
        run(client);
        out().flush();
        return 0;
      } catch (QuiverException e) {
        out().flush();
        spec.commandLine().getErr().println("error: " + e.code() + ": " + e.description());
        spec.commandLine().getErr().flush();
        return 1;
      } catch (UncheckedIOException e) {
        spec.commandLine().getErr().println("error: " + e.getMessage());
        spec.commandLine().getErr().flush();
        return 1;
      }
    }

    abstract void run(ModelControlClient client) throws Exception;
  }

  static void print(PrintWriter out, ModelStatus model) {
    if (model.getVersionsCount() == 0) {
      out.printf("%-24s %-8s %-10s %-11s %s%s%n", model.getName(), "-", "-", "-", model.getPinned() ? "pinned " : "",
          model.getReason());
    }
    for (VersionStatus v : model.getVersionsList()) {
      String traffic = (v.getWeight() > 0 ? "weight=" + v.getWeight() : "")
          + (v.getLabelsCount() > 0 ? " labels=" + String.join(",", v.getLabelsList()) : "");
      out.printf("%-24s %-8d %-10s %-11s %s%s%s%n", model.getName(), v.getVersion(), v.getState(),
          v.getMemoryBytes() > 0 ? io.quiver.lifecycle.VersionMemory.human(v.getMemoryBytes()) : "-",
          model.getPinned() ? "pinned " : "", traffic.trim(), v.getReason().isEmpty() ? "" : " " + v.getReason());
    }
  }

  @Command(name = "list", description = "List models, their versions and states.")
  static final class List extends Sub {
    @Parameters(arity = "0..1", paramLabel = "MODEL") String name;

    @Override
    void run(ModelControlClient client) {
      java.util.List<ModelStatus> models = client.listModels(name == null ? "" : name);
      out().printf("%-24s %-8s %-10s %-11s %s%n", "MODEL", "VERSION", "STATE", "MEMORY", "TRAFFIC / REASON");
      models.forEach(m -> print(out(), m));
    }
  }

  @Command(name = "load", description = "Load (or reload) a model: given versions, the latest N, all, or its config's policy.")
  static final class Load extends Sub {
    @Parameters(paramLabel = "MODEL") String name;
    @Option(names = "--version", split = ",", description = "Exactly these versions.") java.util.List<Long> versions;
    @Option(names = "--latest", description = "The N highest versions.") int latest;
    @Option(names = "--all", description = "Every version present.") boolean all;
    @Option(names = "--pin", negatable = true,
        description = "Pin the model (--no-pin: unpin it): pinned models are never evicted under the memory budget.")
    Boolean pin;

    @Override
    void run(ModelControlClient client) {
      LoadModelRequest.Builder request = LoadModelRequest.newBuilder().setName(name).setLatest(latest).setAll(all);
      if (versions != null) {
        request.addAllVersions(versions);
      }
      if (pin != null) {
        request.setPin(pin);
      }
      var response = client.loadModel(request.build());
      for (var change : response.getChangesList()) {
        out().printf("version %d %s%s%n", change.getVersion(), change.getChange(),
            change.getReason().isEmpty() ? "" : " (" + change.getReason() + ")");
      }
      print(out(), response.getModel());
    }
  }

  @Command(name = "unload", description = "Drain and unload every version of a model.")
  static final class Unload extends Sub {
    @Parameters(paramLabel = "MODEL") String name;

    @Override
    void run(ModelControlClient client) {
      client.unload(name);
      out().println("unloaded " + name);
    }
  }

  @Command(name = "upload", description = "Upload a directory's files as a new version of a model.")
  static final class Upload extends Sub {
    @Parameters(index = "0", paramLabel = "MODEL") String name;
    @Parameters(index = "1", paramLabel = "DIR", description = "The version's files (e.g. model.onnx).") Path dir;
    @Option(names = "--version", description = "The version number (default: one above the highest).") Long version;
    @Option(names = "--config", paramLabel = "FILE", description = "A config.pbtxt to store with the model.") Path config;
    @Option(names = "--load", description = "Load the model once uploaded.") boolean load;

    @Override
    void run(ModelControlClient client) throws Exception {
      ModelControlClient.UploadOptions options = ModelControlClient.UploadOptions.defaults().withLoad(load);
      if (version != null) {
        options = options.withVersion(version);
      }
      if (config != null) {
        options = options.withConfig(Files.readString(config));
      }
      UploadModelResponse response = client.upload(name, dir, options);
      out().printf("uploaded %s version %d: %d file(s), %d bytes%n", response.getName(), response.getVersion(),
          response.getFiles(), response.getBytes());
      if (load) {
        print(out(), response.getModel());
      }
    }
  }

  @Command(name = "traffic", description = "Split version-less traffic by weight, e.g. `traffic simple 1=90 2=10 --label stable=1 --label canary=2`.")
  static final class Traffic extends Sub {
    @Parameters(index = "0", paramLabel = "MODEL") String name;
    @Parameters(index = "1..*", arity = "0..*", paramLabel = "VERSION=WEIGHT", description = "No weights: clear the split.")
    Map<Long, Integer> weights;
    @Option(names = "--label", paramLabel = "LABEL=VERSION") Map<String, Long> labels;

    @Override
    void run(ModelControlClient client) {
      print(out(), client.setTraffic(name, weights == null ? Map.of() : weights, labels == null ? Map.of() : labels));
    }
  }

  @Command(name = "watch", description = "Print model state changes as they happen (Ctrl-C to stop).")
  static final class Watch extends Sub {
    @Parameters(arity = "0..1", paramLabel = "MODEL") String name;
    @Option(names = "--count", description = "Stop after this many events (0: never).") int count;

    @Override
    void run(ModelControlClient client) {
      Duration deadline = count > 0 ? Duration.ofSeconds(parent.timeoutSeconds) : Duration.ZERO;
      try (ModelControlClient.ModelWatch events = client.watch(name == null ? "" : name, deadline)) {
        int seen = 0;
        while ((count == 0 || seen < count) && events.hasNext()) {
          ModelEvent event = events.next();
          seen++;
          out().printf("#%d %s%n", event.getSequence(), java.time.Instant.ofEpochMilli(event.getUnixMillis()));
          print(out(), event.getModel());
          out().flush();
        }
      }
    }
  }

  /** For trying the CLI without the server's Main: {@code java -cp ... io.quiver.control.cli.ModelsCommand list}. */
  static int run(String... args) {
    return new CommandLine(new ModelsCommand()).execute(args);
  }
}
