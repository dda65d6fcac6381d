package io.quiver.control.cli;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.proto.control.v1.WatchModelsRequest;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code quiver models list|load|unload|upload|traffic|watch}: a client of the control API
 * ({@code quiver.control.v1.ModelControl}, port 8003 by default). Register it as a subcommand of the
 * server's picocli {@code Main}: {@code @Command(subcommands = ModelsCommand.class)}. Exit codes: 0
 * ok, 1 the server refused (its status code and message are printed), 2 usage errors.
 */
@Command(name = "models", mixinStandardHelpOptions = true,
    description = "Manage the models of a running Quiver server through its control API.",
    subcommands = {ModelsCommand.List.class, ModelsCommand.Load.class, ModelsCommand.Unload.class,
        ModelsCommand.Upload.class, ModelsCommand.Traffic.class, ModelsCommand.Watch.class})
public final class ModelsCommand {
  static final int UPLOAD_CHUNK_BYTES = 1 << 20;

  @Option(names = "--control", defaultValue = "localhost:8003", paramLabel = "HOST:PORT",
      description = "The control API address (default: ${DEFAULT-VALUE}).")
  String control;

  @Option(names = "--timeout-s", defaultValue = "600", description = "Deadline of each call, in seconds (default: ${DEFAULT-VALUE}).")
  long timeoutSeconds;

  @Spec CommandLine.Model.CommandSpec spec;

  ManagedChannel channel() {
    int colon = control.lastIndexOf(':');
    if (colon < 0) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--control must be HOST:PORT; was " + control);
    }
    return NettyChannelBuilder.forAddress(control.substring(0, colon), Integer.parseInt(control.substring(colon + 1)))
        .usePlaintext().maxInboundMessageSize(64 << 20).build();
  }

  /** Runs one call over a fresh channel; prints a refusal as "error: CODE: message" and returns 1. */
  abstract static class Sub implements Callable<Integer> {
    @ParentCommand ModelsCommand parent;
    @Spec CommandLine.Model.CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    @Override
    public Integer call() throws Exception {
      ManagedChannel channel = parent.channel();
      try {
        run(channel);
        out().flush();
        return 0;
      } catch (StatusRuntimeException e) {
        spec.commandLine().getErr().println("error: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
        spec.commandLine().getErr().flush();
        return 1;
      } finally {
        channel.shutdownNow();
        channel.awaitTermination(5, TimeUnit.SECONDS);
      }
    }

    ModelControlGrpc.ModelControlBlockingStub blocking(ManagedChannel channel) {
      return ModelControlGrpc.newBlockingStub(channel).withDeadlineAfter(parent.timeoutSeconds, TimeUnit.SECONDS);
    }

    abstract void run(ManagedChannel channel) throws Exception;
  }

  static void print(PrintWriter out, ModelStatus model) {
    if (model.getVersionsCount() == 0) {
      out.printf("%-24s %-8s %-10s %s%n", model.getName(), "-", "-", model.getReason());
    }
    for (VersionStatus v : model.getVersionsList()) {
      String traffic = (v.getWeight() > 0 ? "weight=" + v.getWeight() : "")
          + (v.getLabelsCount() > 0 ? " labels=" + String.join(",", v.getLabelsList()) : "");
      out.printf("%-24s %-8d %-10s %s%s%n", model.getName(), v.getVersion(), v.getState(), traffic.trim(),
          v.getReason().isEmpty() ? "" : " " + v.getReason());
    }
  }

  @Command(name = "list", description = "List models, their versions and states.")
  static final class List extends Sub {
    @Parameters(arity = "0..1", paramLabel = "MODEL") String name;

    @Override
    void run(ManagedChannel channel) {
      var response = blocking(channel).listModels(ListModelsRequest.newBuilder().setName(name == null ? "" : name).build());
      out().printf("%-24s %-8s %-10s %s%n", "MODEL", "VERSION", "STATE", "TRAFFIC / REASON");
      response.getModelsList().forEach(m -> print(out(), m));
    }
  }

  @Command(name = "load", description = "Load (or reload) a model: given versions, the latest N, all, or its config's policy.")
  static final class Load extends Sub {
    @Parameters(paramLabel = "MODEL") String name;
    @Option(names = "--version", split = ",", description = "Exactly these versions.") java.util.List<Long> versions;
    @Option(names = "--latest", description = "The N highest versions.") int latest;
    @Option(names = "--all", description = "Every version present.") boolean all;

    @Override
    void run(ManagedChannel channel) {
      LoadModelRequest.Builder request = LoadModelRequest.newBuilder().setName(name).setLatest(latest).setAll(all);
      if (versions != null) {
        request.addAllVersions(versions);
      }
      print(out(), blocking(channel).loadModel(request.build()).getModel());
    }
  }

  @Command(name = "unload", description = "Drain and unload every version of a model.")
  static final class Unload extends Sub {
    @Parameters(paramLabel = "MODEL") String name;

    @Override
    void run(ManagedChannel channel) {
      blocking(channel).unloadModel(UnloadModelRequest.newBuilder().setName(name).build());
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
    void run(ManagedChannel channel) throws Exception {
      UploadHeader.Builder header = UploadHeader.newBuilder().setName(name).setLoad(load);
      if (version != null) {
        header.setVersion(version);
      }
      if (config != null) {
        header.setConfigPbtxt(Files.readString(config));
      }
      CompletableFuture<UploadModelResponse> result = new CompletableFuture<>();
      StreamObserver<UploadModelRequest> stream = ModelControlGrpc.newStub(channel)
          .withDeadlineAfter(parent.timeoutSeconds, TimeUnit.SECONDS).uploadModel(new StreamObserver<>() {
            @Override
            public void onNext(UploadModelResponse value) {
              result.complete(value);
            }

            @Override
            public void onError(Throwable t) {
              result.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
          });
      stream.onNext(UploadModelRequest.newBuilder().setHeader(header).build());
      java.util.List<Path> files;
      try (Stream<Path> walk = Files.walk(dir)) {
        files = walk.filter(Files::isRegularFile).sorted().toList();
      }
      byte[] buffer = new byte[UPLOAD_CHUNK_BYTES];
      for (Path file : files) {
        String relative = dir.relativize(file).toString().replace('\\', '/');
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(file)) {
          int n = in.readNBytes(buffer, 0, buffer.length);
          while (true) {
            sha.update(buffer, 0, Math.max(n, 0));
            FileChunk.Builder chunk = FileChunk.newBuilder().setPath(relative).setData(ByteString.copyFrom(buffer, 0, n));
            int next = n < buffer.length ? -1 : in.readNBytes(buffer, 0, buffer.length);
            boolean last = next <= 0;
            if (last) {
              chunk.setSha256(HexFormat.of().formatHex(sha.digest()));
            }
            // Flow control: onNext buffers; the channel's window bounds what is actually in flight.
            stream.onNext(UploadModelRequest.newBuilder().setChunk(chunk).build());
            if (last) {
              break;
            }
            n = next;
          }
        }
      }
      stream.onCompleted();
      UploadModelResponse response;
      try {
        response = result.get(parent.timeoutSeconds, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        throw e.getCause() instanceof StatusRuntimeException s ? s : new IOException(e.getCause());
      }
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
    void run(ManagedChannel channel) {
      SetTrafficRequest.Builder request = SetTrafficRequest.newBuilder().setName(name);
      if (weights != null) {
        weights.forEach((v, w) -> request.addWeights(TrafficWeight.newBuilder().setVersion(v).setWeight(w)));
      }
      if (labels != null) {
        request.putAllLabels(labels);
      }
      print(out(), blocking(channel).setTraffic(request.build()).getModel());
    }
  }

  @Command(name = "watch", description = "Print model state changes as they happen (Ctrl-C to stop).")
  static final class Watch extends Sub {
    @Parameters(arity = "0..1", paramLabel = "MODEL") String name;
    @Option(names = "--count", description = "Stop after this many events (0: never).") int count;

    @Override
    void run(ManagedChannel channel) {
      ModelControlGrpc.ModelControlBlockingStub stub = ModelControlGrpc.newBlockingStub(channel);
      if (count > 0) {
        stub = stub.withDeadlineAfter(parent.timeoutSeconds, TimeUnit.SECONDS);
      }
      Iterator<ModelEvent> events = stub.watchModels(WatchModelsRequest.newBuilder().setName(name == null ? "" : name).build());
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

  /** For trying the CLI without the server's Main: {@code java -cp ... io.quiver.control.cli.ModelsCommand list}. */
  static int run(String... args) {
    return new CommandLine(new ModelsCommand()).execute(args);
  }
}
