package io.quiver.examples.client;

import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A real Quiver server on a loopback ephemeral port, for the client's tests. Close it when done. */
final class LiveQuiver implements AutoCloseable {
  /** Identity FP32 [-1,16] whose partial batches wait 10 s: a lone request stays queued until it is dropped. */
  static final String SLOW = "slow_identity";
  /** The same, for stream tests (a stream's queued requests are not cancelled with it: kept apart from {@link #SLOW}). */
  static final String SLOW_STREAM = "slow_identity_stream";

  final QuiverServer server;

  private LiveQuiver(QuiverServer server) {
    this.server = server;
  }

  /** Plain options: gRPC on port 0, REST and metrics off, every model of the repository loaded. */
  static ServerOptions options(Path repository) {
    return new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000);
  }

  static LiveQuiver start(ServerOptions options) throws IOException {
    return start(new QuiverServer(options));
  }

  static LiveQuiver start(QuiverServer unstarted) throws IOException {
    return new LiveQuiver(unstarted.start());
  }

  String target() {
    return "127.0.0.1:" + server.port();
  }

  String controlTarget() {
    return "127.0.0.1:" + server.controlPort();
  }

  /** The value of one Prometheus sample of the metrics port (needs metrics on), 0 when absent. */
  double metric(String name, String model) throws IOException, InterruptedException {
    String body = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + server.metricsPort() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    Matcher m = Pattern.compile("(?m)^" + name + "\\{[^}]*model=\"" + Pattern.quote(model) + "\"[^}]*\\} (\\S+)$")
        .matcher(body);
    return m.find() ? Double.parseDouble(m.group(1)) : 0;
  }

  /** Polls until the condition holds (behaviour, not timing: the limit only bounds a broken run). */
  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not reached within 30 s: " + what);
      }
      Thread.sleep(10);
    }
  }

  /** Writes {@link #SLOW}: identity_fp32's model with a 10 s batching delay and the timeout override allowed. */
  static void writeSlowIdentity(Path repository, String name) throws IOException {
    Path scratch = Files.createTempDirectory("slow-identity");
    Path model = ExampleModels.writeIdentityFp32(scratch);
    Path target = repository.resolve(name);
    Files.createDirectories(target.resolve("1"));
    Files.copy(model.resolve("1").resolve(ExampleModels.MODEL_FILE), target.resolve("1").resolve(ExampleModels.MODEL_FILE));
    Files.writeString(target.resolve(ExampleModels.CONFIG_FILE), """
        name: "%s"
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        dynamic_batching {
          max_queue_delay_microseconds: 10000000
          default_queue_policy { allow_timeout_override: true }
        }
        """.formatted(name));
  }

  @Override
  public void close() {
    server.close();
  }
}
