package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.LifecycleOptions;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.VersionStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 in the middle of an upload: a real server process, killed with {@code destroyForcibly()}
 * while a client streams a model version to it. The half-written upload is staged under the model
 * cache directory (not in the repository, not in the system temp dir), and the next start sweeps it.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class UploadInterruptedTest {
  private static final Pattern CONTROL_PORT = Pattern.compile("control plane listening on [^:\"]+:(\\d+)");

  @TempDir Path repository;
  @TempDir Path cache;
  @TempDir Path logs;

  /** A child JVM running {@code quiver serve} on loopback ports; its output goes to a file. */
  private final class Child implements AutoCloseable {
    final Process process;
    final Path log;
    final int controlPort;

    Child(String name) throws Exception {
      log = logs.resolve(name + ".log");
      String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      process = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
          Main.class.getName(), "serve", "--host", "127.0.0.1", "--model-repository", repository.toString(),
          "--grpc-port", "0", "--http-port", "-1", "--metrics-port", "-1", "--control-port", "0",
          "--model-cache-dir", cache.toString(), "--repository-poll-ms", "0")
          .redirectErrorStream(true).redirectOutput(log.toFile()).start();
      controlPort = awaitControlPort();
    }

    private int awaitControlPort() throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new AssertionError("the server exited with " + process.exitValue() + ":\n" + Files.readString(log));
        }
        Matcher m = CONTROL_PORT.matcher(Files.exists(log) ? Files.readString(log) : "");
        if (m.find()) {
          return Integer.parseInt(m.group(1));
        }
        Thread.sleep(50);
      }
      throw new AssertionError("the server did not open its control port:\n" + Files.readString(log));
    }

    @Override
    public void close() throws Exception {
      process.destroy(); // SIGTERM: the graceful shutdown
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  private List<Path> staged() throws IOException {
    Path root = cache.resolve(LifecycleOptions.STAGING_FOLDER);
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    try (Stream<Path> entries = Files.list(root)) {
      return entries.toList();
    }
  }

  private static long bytesUnder(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  @Test
  void killDuringUpload_leavesItStagedUnderTheCache_andTheRestartSweepsIt() throws Exception {
    ExampleModels.writeSimple(repository);
    byte[] model = Files.readAllBytes(repository.resolve("simple/1/model.onnx"));
    Child first = new Child("first");
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", first.controlPort).usePlaintext().build();
    try {
      // An upload that sends 2 MiB of a model file and then stalls, as a client cut off mid-transfer.
      StreamObserver<UploadModelRequest> upload = ModelControlGrpc.newStub(channel).uploadModel(new StreamObserver<>() {
        @Override public void onNext(UploadModelResponse value) {}
        @Override public void onError(Throwable t) {}
        @Override public void onCompleted() {}
      });
      upload.onNext(UploadModelRequest.newBuilder().setHeader(UploadHeader.newBuilder().setName("simple").setVersion(2)
          .setLoad(true)).build());
      byte[] chunk = new byte[64 * 1024];
      for (int i = 0; i < 32; i++) {
        upload.onNext(UploadModelRequest.newBuilder().setChunk(FileChunk.newBuilder().setPath("model.onnx")
            .setData(ByteString.copyFrom(chunk))).build());
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while ((staged().isEmpty() || bytesUnder(staged().get(0)) < 2L * 1024 * 1024) && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(staged()).hasSize(1);
      assertThat(bytesUnder(staged().get(0))).isEqualTo(2L * 1024 * 1024);

      first.process.destroyForcibly(); // kill -9
      assertThat(first.process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    } finally {
      channel.shutdownNow();
    }
    // What the dead server left: its staging directory (under the cache), nothing in the repository.
    assertThat(staged()).hasSize(1);
    Path leftover = staged().get(0);
    assertThat(leftover.getFileName().toString()).startsWith(first.process.pid() + "-");
    assertThat(repository.resolve("simple/2")).doesNotExist();

    try (Child second = new Child("second")) {
      assertThat(staged()).as("the restart swept the interrupted upload").isEmpty();
      assertThat(leftover).doesNotExist();
      assertThat(Files.readString(second.log)).contains("deleted 1 interrupted upload(s) (2.0 MiB)");
      ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", second.controlPort).usePlaintext().build();
      try {
        var stub = ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(60, TimeUnit.SECONDS);
        assertThat(stub.listModels(ListModelsRequest.newBuilder().setName("simple").build()).getModels(0).getVersionsList())
            .extracting(VersionStatus::getVersion).containsExactly(1L);
        // The same upload, complete this time, goes through.
        CompletableFuture<UploadModelResponse> done = new CompletableFuture<>();
        StreamObserver<UploadModelRequest> upload = ModelControlGrpc.newStub(control).withDeadlineAfter(60, TimeUnit.SECONDS)
            .uploadModel(new StreamObserver<>() {
              @Override public void onNext(UploadModelResponse value) {
                done.complete(value);
              }
              @Override public void onError(Throwable t) {
                done.completeExceptionally(t);
              }
              @Override public void onCompleted() {}
            });
        upload.onNext(UploadModelRequest.newBuilder().setHeader(UploadHeader.newBuilder().setName("simple").setVersion(2)
            .setLoad(true)).build());
        upload.onNext(UploadModelRequest.newBuilder().setChunk(FileChunk.newBuilder().setPath("model.onnx")
            .setData(ByteString.copyFrom(model))
            .setSha256(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(model)))).build());
        upload.onCompleted();
        assertThat(done.get(60, TimeUnit.SECONDS).getVersion()).isEqualTo(2);
        assertThat(repository.resolve("simple/2/model.onnx")).hasBinaryContent(model);
        assertThat(staged()).as("a finished upload leaves nothing staged").isEmpty();
      } finally {
        control.shutdownNow();
      }
    }
  }
}
