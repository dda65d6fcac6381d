package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading ensembles on a real server: broken graphs fail naming the step and tensor, steps load with their ensemble. */
class EnsembleLoadTest {
  @TempDir Path repository;

  static String step(String model, String in, String from, String out, String to) {
    return ExampleModels.step(model, in, from, out, to);
  }

  void writeBroken() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    List<String> raw = List.of(ExampleModels.tensor("raw", "TYPE_UINT8", 16));
    List<String> probabilities = List.of(ExampleModels.tensor("probabilities", "TYPE_FP32", 4));
    ExampleModels.writeEnsemble(repository, "bad_unknown_step", 8, raw, probabilities,
        List.of(step("no_such_model", "raw", "raw", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_datatype", 8, raw, probabilities,
        List.of(step("mlp_classifier", "features", "raw", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_shape", 8, List.of(ExampleModels.tensor("raw", "TYPE_UINT8", 8)),
        probabilities, List.of(step("preprocess_scale", "raw", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_input_name", 8, raw, probabilities,
        List.of(step("preprocess_scale", "pixels", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_unwritten_output", 8, raw,
        List.of(ExampleModels.tensor("probabilities", "TYPE_FP32", 4), ExampleModels.tensor("score", "TYPE_FP32", 1)),
        List.of(step("preprocess_scale", "raw", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_cycle", 8, List.of(ExampleModels.tensor("x", "TYPE_FP32", 16)),
        List.of(ExampleModels.tensor("y", "TYPE_FP32", 16)),
        List.of(step("identity_fp32", "INPUT0", "b", "OUTPUT0", "a"),
            step("identity_fp32", "INPUT0", "a", "OUTPUT0", "b"),
            step("identity_fp32", "INPUT0", "a", "OUTPUT0", "y")));
    ExampleModels.writeEnsemble(repository, "bad_batch", 512, raw, probabilities,
        List.of(step("preprocess_scale", "raw", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities")));
    ExampleModels.writeEnsemble(repository, "bad_config", 8, raw, probabilities,
        List.of(step("preprocess_scale", "raw", "raw", "features", "features")));
    Files.writeString(repository.resolve("bad_config/config.pbtxt"), "instance_group [ { count: 1 } ]\n",
        java.nio.file.StandardOpenOption.APPEND);
  }

  static Map<String, String> reasons(ServerFixture fixture) {
    RepositoryIndexResponse index = fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance());
    Map<String, String> out = new TreeMap<>();
    index.getModelsList().forEach(m -> out.put(m.getName(), m.getState() + ": " + m.getReason()));
    return out;
  }

  @Test
  void brokenEnsembles_failToLoad_namingStepAndTensor_andTheRestServe() throws Exception {
    writeBroken();
    try (ServerFixture fixture = new ServerFixture(repository)) {
      Map<String, String> reasons = reasons(fixture);
      assertThat(reasons.get("mlp_pipeline")).startsWith("READY");
      assertThat(reasons.get("bad_unknown_step")).startsWith("UNAVAILABLE")
          .contains("step 0 (model 'no_such_model') cannot be used", "unknown model 'no_such_model'");
      assertThat(reasons.get("bad_datatype")).startsWith("UNAVAILABLE")
          .contains("step 0 (model 'mlp_classifier'): input 'features' is FP32, but it reads the ensemble's input"
              + " 'raw', which is UINT8");
      assertThat(reasons.get("bad_shape")).startsWith("UNAVAILABLE")
          .contains("step 0 (model 'preprocess_scale'): input 'raw' has shape [-1, 16], but it reads the ensemble's"
              + " input 'raw', which has shape [-1, 8]");
      assertThat(reasons.get("bad_input_name")).startsWith("UNAVAILABLE")
          .contains("step 0 (model 'preprocess_scale'): input_map names input 'pixels', which the model does not have;"
              + " its inputs are [raw]");
      assertThat(reasons.get("bad_unwritten_output")).startsWith("UNAVAILABLE")
          .contains("output 'score' of the ensemble is not written by any step");
      assertThat(reasons.get("bad_cycle")).startsWith("UNAVAILABLE").contains("the steps form a cycle",
          "step 0 (model 'identity_fp32') writes 'a' read by step 1 (model 'identity_fp32')");
      assertThat(reasons.get("bad_batch")).startsWith("UNAVAILABLE")
          .contains("step 0 (model 'preprocess_scale'): its max_batch_size 64 is below the ensemble's 512");
      assertThat(reasons.get("bad_config")).startsWith("UNAVAILABLE")
          .contains("instance_group is not allowed for an ensemble");

      // Loading one again through Triton's repository API answers the same reason.
      assertThatThrownBy(() -> fixture.stub().repositoryModelLoad(
          RepositoryModelLoadRequest.newBuilder().setModelName("bad_datatype").build()))
          .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
            assertThat(e.getStatus().getDescription()).contains("input 'features' is FP32");
          });
      HttpResponse<String> rest = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
          "http://127.0.0.1:" + fixture.server.httpPort() + "/v2/repository/models/bad_cycle/load"))
          .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(rest.statusCode()).isEqualTo(400);
      assertThat(rest.body()).contains("the steps form a cycle");
    }
  }

  @Test
  void explicitMode_loadingAnEnsemble_loadsItsStepModelsFirst() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of("classify_and_score"))) {
      assertThat(ready(fixture, "classify_and_score")).isTrue();
      assertThat(ready(fixture, "preprocess_scale")).isTrue();
      assertThat(ready(fixture, "linear_score")).isTrue();
      assertThat(ready(fixture, "mlp_pipeline")).isFalse();

      fixture.server.models().unload("preprocess_scale");
      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("mlp_pipeline").build());
      assertThat(ready(fixture, "mlp_pipeline")).isTrue();
      assertThat(ready(fixture, "preprocess_scale")).isTrue(); // loaded again, as a step of mlp_pipeline
    }
  }

  static boolean ready(ServerFixture fixture, String model) {
    return fixture.stub().modelReady(ModelReadyRequest.newBuilder().setName(model).build()).getReady();
  }
}
