package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The KServe runtime and example InferenceService: valid against KServe's CRD schemas (test data, with
 * its origin), written as KServe's Triton runtime is (so a user changes only the image and the name),
 * and its args run a server here: from a repository the test does not let it write to, and with the
 * multi-model variant KServe derives (explicit mode), driven by the repository API as KServe's agent
 * drives it.
 */
class KServeTest {
  /**
   * The container args of KServe's stock runtime kserve-tritonserver (kserve/kserve,
   * config/runtimes/kserve-tritonserver.yaml at commit aaac4e29, August 2026).
   */
  static final List<String> STOCK_TRITON_ARGS = List.of("tritonserver", "--model-store=/mnt/models",
      "--grpc-port=9000", "--http-port=8080", "--allow-grpc=true", "--allow-http=true");

  static ObjectNode runtime() throws Exception {
    return Manifests.render("kserve").get("ClusterServingRuntime/kserve-quiver");
  }

  static List<String> args(ObjectNode runtime) {
    List<String> args = new ArrayList<>();
    runtime.path("spec").path("containers").get(0).path("args").forEach(a -> args.add(a.asText()));
    return args;
  }

  @Test
  void runtime_isWrittenAsKServesTritonRuntime_andItsArgsAreQuiversOptions() throws Exception {
    ObjectNode runtime = runtime();
    JsonNode container = runtime.path("spec").path("containers").get(0);
    assertThat(container.path("name").asText()).isEqualTo("kserve-container");
    assertThat(args(runtime)).isEqualTo(STOCK_TRITON_ARGS);
    assertThat(runtime.path("metadata").path("annotations").path("serving.kserve.io/server-type").asText())
        .as("KServe applies its Triton defaults (v2, explicit mode for multi-model)").isEqualTo("tritonserver");
    List<String> protocols = new ArrayList<>();
    runtime.path("spec").path("protocolVersions").forEach(p -> protocols.add(p.asText()));
    assertThat(protocols).containsExactlyInAnyOrder("v2", "grpc-v2");
    List<String> formats = new ArrayList<>();
    runtime.path("spec").path("supportedModelFormats").forEach(f -> formats.add(f.path("name").asText()));
    assertThat(formats).containsOnly("onnx", "tensorflow").contains("onnx", "tensorflow");

    ServerOptions options = ServerArgs.parse(args(runtime));
    assertThat(options.modelRepository()).isEqualTo(Path.of("/mnt/models"));
    assertThat(options.grpcPort()).isEqualTo(9000);
    assertThat(options.httpPort()).isEqualTo(8080);
    assertThat(options.lifecycle().persistDesiredState())
        .as("started as tritonserver: no desired-state manifest in the (read-only) model store").isFalse();
    assertThat(String.valueOf(options.metricsPort()))
        .isEqualTo(runtime.path("spec").path("annotations").path("prometheus.kserve.io/port").asText());
    // What KServe appends for multi-model serving (no storageUri): explicit mode.
    List<String> multiModel = new ArrayList<>(args(runtime));
    multiModel.add("--model-control-mode=explicit");
    assertThat(ServerArgs.parse(multiModel).controlMode()).isEqualTo(ControlMode.EXPLICIT);
  }

  @Test
  void inferenceService_namesTheRuntimeAndAFormatAndProtocolItSupports() throws Exception {
    ObjectNode runtime = runtime();
    JsonNode model = Manifests.render("kserve").get("InferenceService/mlp-classifier").path("spec").path("predictor").path("model");
    assertThat(model.path("runtime").asText()).isEqualTo(runtime.path("metadata").path("name").asText());
    List<String> formats = new ArrayList<>();
    runtime.path("spec").path("supportedModelFormats").forEach(f -> formats.add(f.path("name").asText()));
    assertThat(formats).contains(model.path("modelFormat").path("name").asText());
    List<String> protocols = new ArrayList<>();
    runtime.path("spec").path("protocolVersions").forEach(p -> protocols.add(p.asText()));
    assertThat(protocols).contains(model.path("protocolVersion").asText());
  }

  @Test
  void runtimeArgs_serveAModelRepositoryWithoutWritingToIt(@TempDir Path mnt, @TempDir Path cache) throws Exception {
    Path models = Files.createDirectory(mnt.resolve("models"));
    ExampleModels.writeSimple(models);
    ExampleModels.writeIdentityFp32(models);
    Map<String, Long> before = snapshot(models);
    HttpClient http = HttpClient.newHttpClient();
    // As KServe starts it: the stock args (storage initializer has filled /mnt/models).
    ServerOptions options = ServerArgs.parse(ServerArgs.forTest(args(runtime()), models, cache));
    try (QuiverServer server = new QuiverServer(options).start()) {
      assertThat(get(http, server.httpPort(), "/v2/health/ready")).isEqualTo(200);
      assertThat(get(http, server.httpPort(), "/v2/models/simple/ready")).isEqualTo(200);
    }
    // Multi-model (explicit mode): KServe's agent loads and unloads through Triton's repository API.
    List<String> multiModel = new ArrayList<>(args(runtime()));
    multiModel.add("--model-control-mode=explicit");
    options = ServerArgs.parse(ServerArgs.forTest(multiModel, models, cache));
    try (QuiverServer server = new QuiverServer(options).start()) {
      assertThat(get(http, server.httpPort(), "/v2/models/simple/ready")).isEqualTo(400);
      assertThat(post(http, server.httpPort(), "/v2/repository/models/simple/load")).isEqualTo(200);
      assertThat(get(http, server.httpPort(), "/v2/models/simple/ready")).isEqualTo(200);
      assertThat(post(http, server.httpPort(), "/v2/repository/models/simple/unload")).isEqualTo(200);
      assertThat(get(http, server.httpPort(), "/v2/models/simple/ready")).isEqualTo(400);
    }
    // The tests run as root, where permissions do not stop writes; so compare: nothing was created,
    // changed or removed in the model directory (KServe mounts it read-only).
    assertThat(snapshot(models)).isEqualTo(before);
  }

  private static Map<String, Long> snapshot(Path dir) throws Exception {
    Map<String, Long> files = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.toList()) {
        files.put(dir.relativize(p).toString(), Files.isRegularFile(p) ? Files.size(p) * 31 + Files.getLastModifiedTime(p).toMillis() : -1);
      }
    }
    return files;
  }

  private static int get(HttpClient http, int port, String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).GET().build(),
        HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  private static int post(HttpClient http, int port, String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
        HttpResponse.BodyHandlers.discarding()).statusCode();
  }
}
