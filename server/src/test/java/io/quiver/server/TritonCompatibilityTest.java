package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Quiver as a drop-in for tritonserver: Triton's command-line flags, Triton's metric names, and
 * Triton's repository load/unload API as KServe's model puller (REST) and Seldon's agent (gRPC) call it.
 */
class TritonCompatibilityTest {
  @TempDir Path repository;
  final HttpClient http = HttpClient.newHttpClient();

  @Test
  void kserveTritonRuntimeArgs_parseIntoTheSamePortsAndRepository() {
    // The args of KServe's stock ClusterServingRuntime kserve-tritonserver, verbatim.
    ServerOptions options = Main.serveOptions("tritonserver", "--model-store=/mnt/models", "--grpc-port=9000",
        "--http-port=8080", "--allow-grpc=true", "--allow-http=true");
    assertThat(options.modelRepository()).isEqualTo(Path.of("/mnt/models"));
    assertThat(options.grpcPort()).isEqualTo(9000);
    assertThat(options.httpPort()).isEqualTo(8080);
    assertThat(options.metricsPort()).isEqualTo(ServerOptions.DEFAULT_METRICS_PORT);
    assertThat(options.controlMode()).isEqualTo(ControlMode.NONE);
  }

  @Test
  void tritonFlags_mapToQuiverOptions() {
    ServerOptions options = Main.serveOptions("serve", "--model-repository", "/models", "--allow-http=OFF",
        "--allow-metrics", "0", "--exit-timeout-secs=7", "--strict-model-config=false", "--log-verbose=1",
        "--model-control-mode=explicit", "--load-model=a", "--load-model", "b");
    assertThat(options.httpPort()).isEqualTo(ServerOptions.DISABLED);
    assertThat(options.metricsPort()).isEqualTo(ServerOptions.DISABLED);
    assertThat(options.shutdownGraceMillis()).isEqualTo(7_000);
    assertThat(options.controlMode()).isEqualTo(ControlMode.EXPLICIT);
    assertThat(options.startupModels()).containsExactly("a", "b");

    ServerOptions all = Main.serveOptions("tritonserver", "--model-repository=/m", "--model-control-mode=explicit",
        "--load-model=*");
    assertThat(all.controlMode()).isEqualTo(ControlMode.NONE);
    assertThat(all.startupModels()).isEmpty();
  }

  @Test
  void desiredState_isKeptInMemoryWhenStartedAsTritonserver_andBesideTheModelsForServe() {
    assertThat(Main.serveOptions("serve", "--model-repository=/m").lifecycle().persistDesiredState()).isTrue();
    assertThat(Main.serveOptions("tritonserver", "--model-store=/m").lifecycle().persistDesiredState())
        .as("Triton writes nothing into its model store").isFalse();
    assertThat(Main.serveOptions("tritonserver", "--model-store=/m", "--desired-state=repository").lifecycle()
        .persistDesiredState()).isTrue();
    assertThat(Main.serveOptions("serve", "--model-repository=/m", "--desired-state=MEMORY").lifecycle()
        .persistDesiredState()).isFalse();
    // A value that happens to be the other command's name does not change the default.
    assertThat(Main.serveOptions("serve", "--model-repository=tritonserver").lifecycle().persistDesiredState()).isTrue();
    assertRefused("--desired-state must be 'repository' or 'memory'; was 'disk'", "serve", "--desired-state=disk");
  }

  @Test
  void unsupportedTritonFlags_areRefusedByName() {
    assertRefused("'--backend-directory' is a tritonserver flag that Quiver does not support",
        "tritonserver", "--model-store=/m", "--backend-directory=/opt/tritonserver/backends");
    assertRefused("'--rate-limit' is a tritonserver flag", "serve", "--rate-limit", "execution_count");
    assertRefused("--allow-grpc=false", "tritonserver", "--allow-grpc=false");
    assertRefused("--strict-model-config=true is not supported", "tritonserver", "--strict-model-config=true");
    assertRefused("invalid value for a boolean option: 'maybe'", "tritonserver", "--allow-http=maybe");
    assertRefused("give one of them", "serve", "--exit-timeout-secs=3", "--shutdown-grace-ms=3000");
    assertRefused("--load-model=* must be the only --load-model", "serve", "--model-control-mode=explicit",
        "--load-model=*", "--load-model=a");
    assertRefused("Unknown option: '--no-such-flag=1'", "serve", "--no-such-flag=1");
    assertRefused("--log-format must be json or text", "serve", "--log-format=xml");
  }

  private static void assertRefused(String message, String... args) {
    assertThatThrownBy(() -> Main.serveOptions(args))
        .isInstanceOf(CommandLine.ParameterException.class)
        .hasMessageContaining(message);
  }

  @Test
  void tritonMetricNames_mirrorQuiversFigures() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(repository)) {
      for (int i = 0; i < 5; i++) {
        fixture.stub().modelInfer(simpleRequest());
      }
      assertThatThrownBy(() -> fixture.stub().modelInfer(simpleRequest().toBuilder().setInputs(0,
          simpleRequest().getInputs(0).toBuilder().setDatatype("FP32")).build()))
          .isInstanceOf(StatusRuntimeException.class);
      String text = scrapeText(fixture);
      Map<String, Double> samples = samples(text);
      String m = "model=\"simple\"";
      String v = "version=\"1\"";
      assertThat(RestApiTest.sample(samples, "nv_inference_request_success", m, v)).isEqualTo(5.0);
      assertThat(RestApiTest.sample(samples, "nv_inference_count", m, v)).isEqualTo(5.0);
      assertThat(RestApiTest.sample(samples, "nv_inference_exec_count", m, v)).isBetween(1.0, 5.0);
      assertThat(RestApiTest.sample(samples, "nv_inference_request_failure", m, v, "reason=\"OTHER\"")).isEqualTo(1.0);
      assertThat(RestApiTest.sample(samples, "nv_inference_pending_request_count", m, v)).isEqualTo(0.0);
      double requestUs = RestApiTest.sample(samples, "nv_inference_request_duration_us", m, v);
      double queueUs = RestApiTest.sample(samples, "nv_inference_queue_duration_us", m, v);
      double inferUs = RestApiTest.sample(samples, "nv_inference_compute_infer_duration_us", m, v);
      assertThat(requestUs).isPositive().isGreaterThanOrEqualTo(queueUs).isGreaterThanOrEqualTo(inferUs);
      assertThat(RestApiTest.sample(samples, "nv_inference_compute_input_duration_us", m, v)).isNotNull();
      assertThat(RestApiTest.sample(samples, "nv_inference_compute_output_duration_us", m, v)).isNotNull();
      // Quiver's own names are still there, with the same figures.
      assertThat(RestApiTest.sample(samples, "quiver_inference_count_total", m, v)).isEqualTo(5.0);
      // Triton's exact names: no _total suffix added by the client library.
      assertThat(text).contains("# TYPE nv_inference_request_success untyped")
          .contains("# TYPE nv_inference_pending_request_count gauge")
          .doesNotContain("nv_inference_request_success_total");
    }
  }

  @Test
  void repositoryApi_asKServesPullerCallsIt_overRest() throws Exception {
    ExampleModels.writeSimple(repository);
    ExampleModels.writeIdentityFp32(repository);
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of())) {
      // KServe's agent (pkg/agent/puller.go): POST .../load with "{}" as application/json; 200 = loaded.
      HttpResponse<String> load = post(fixture, "/v2/repository/models/simple/load", "{}");
      assertThat(load.statusCode()).isEqualTo(200);
      assertThat(load.body()).isEmpty();
      assertThat(get(fixture, "/v2/models/simple/ready").statusCode()).isEqualTo(200);
      // Loading a loaded model again is fine (Triton reloads; the answer is the same).
      assertThat(post(fixture, "/v2/repository/models/simple/load", "{}").statusCode()).isEqualTo(200);
      // The puller deletes the model's directory first, then unloads: the unload must still succeed.
      deleteTree(repository.resolve("simple"));
      HttpResponse<String> unload = post(fixture, "/v2/repository/models/simple/unload", "{}");
      assertThat(unload.statusCode()).isEqualTo(200);
      assertThat(unload.body()).isEmpty();
      assertThat(get(fixture, "/v2/models/simple/ready").statusCode()).isEqualTo(400);
      // A model that is not in the repository: an error with a JSON body, never 200.
      HttpResponse<String> missing = post(fixture, "/v2/repository/models/no_such_model/load", "{}");
      assertThat(missing.statusCode()).isNotEqualTo(200);
      assertThat(missing.body()).contains("\"error\"").contains("no_such_model");
    }
  }

  @Test
  void repositoryApi_asSeldonsAgentCallsIt_overGrpc() throws Exception {
    ExampleModels.writeSimple(repository);
    ExampleModels.writeIdentityFp32(repository);
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of())) {
      // Seldon's agent (scheduler/pkg/agent/modelserver_controlplane/oip/v2.go): model_name only.
      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("identity_fp32").build());
      RepositoryIndexResponse index = fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance());
      assertThat(index.getModelsList()).anySatisfy(model -> {
        assertThat(model.getName()).isEqualTo("identity_fp32");
        assertThat(model.getState()).isEqualTo("READY");
      });
      fixture.stub().repositoryModelUnload(RepositoryModelUnloadRequest.newBuilder().setModelName("identity_fp32").build());
      assertThat(fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsList())
          .filteredOn(model -> model.getName().equals("identity_fp32"))
          .allSatisfy(model -> assertThat(model.getState()).isNotEqualTo("READY"));
      // Unloading a model that is not loaded succeeds, as in Triton.
      fixture.stub().repositoryModelUnload(RepositoryModelUnloadRequest.newBuilder().setModelName("simple").build());
      assertThatThrownBy(() -> fixture.stub().repositoryModelLoad(
          RepositoryModelLoadRequest.newBuilder().setModelName("no_such_model").build()))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isNotEqualTo(Status.Code.OK));
    }
  }

  static ModelInferRequest simpleRequest() {
    ByteBuffer a = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      a.putInt(i);
    }
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName("simple");
    for (String name : List.of("INPUT0", "INPUT1")) {
      request.addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName(name).setDatatype("INT32")
          .addShape(1).addShape(16));
      request.addRawInputContents(com.google.protobuf.ByteString.copyFrom(a.array()));
    }
    return request.build();
  }

  private HttpResponse<String> post(ServerFixture fixture, String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + path))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> get(ServerFixture fixture, String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + path))
        .GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  private String scrapeText(ServerFixture fixture) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.metricsPort() + "/metrics"))
        .GET().build(), HttpResponse.BodyHandlers.ofString()).body();
  }

  private static Map<String, Double> samples(String text) {
    Map<String, Double> samples = new HashMap<>();
    for (String line : text.split("\n")) {
      if (!line.isEmpty() && !line.startsWith("#")) {
        int space = line.lastIndexOf(' ');
        samples.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
      }
    }
    return samples;
  }

  private static void deleteTree(Path root) throws Exception {
    List<Path> paths = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(root)) {
      walk.sorted(Comparator.reverseOrder()).forEach(paths::add);
    }
    for (Path p : paths) {
      Files.delete(p);
    }
  }
}
