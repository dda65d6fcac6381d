package io.quiver.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import org.junit.jupiter.api.Test;

/** Triton's ensemble and response-cache fields: parsed with Triton's names, checked on their own at load. */
class EnsembleConfigTest {
  static final String PIPELINE = """
      name: "pipe"
      platform: "ensemble"
      max_batch_size: 8
      input [ { name: "raw" data_type: TYPE_UINT8 dims: [ 16 ] } ]
      output [ { name: "probabilities" data_type: TYPE_FP32 dims: [ 4 ] } ]
      ensemble_scheduling {
        step [
          {
            model_name: "preprocess"
            model_version: -1
            input_map { key: "raw" value: "raw" }
            output_map { key: "features" value: "features" }
          },
          {
            model_name: "classifier"
            model_version: 2
            input_map { key: "features" value: "features" }
            output_map { key: "probabilities" value: "probabilities" }
          }
        ]
      }
      response_cache { enable: true }
      """;

  static ModelConfig parse(String text) {
    return ModelConfigParser.parse(text, "models/pipe/config.pbtxt", "pipe");
  }

  static String problems(String text) {
    try {
      parse(text);
    } catch (InferenceException e) {
      assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
      return e.getMessage();
    }
    throw new AssertionError("expected the config to be refused:\n" + text);
  }

  @Test
  void tritonEnsembleConfig_parsesEveryField() {
    ModelConfig config = parse(PIPELINE);
    assertThat(ModelConfigValidator.isEnsemble(config)).isTrue();
    assertThat(config.getEnsembleScheduling().getStepCount()).isEqualTo(2);
    assertThat(config.getEnsembleScheduling().getStep(0).getModelName()).isEqualTo("preprocess");
    assertThat(config.getEnsembleScheduling().getStep(0).getModelVersion()).isEqualTo(-1);
    assertThat(config.getEnsembleScheduling().getStep(1).getModelVersion()).isEqualTo(2);
    assertThat(config.getEnsembleScheduling().getStep(1).getInputMapMap()).containsEntry("features", "features");
    assertThat(config.getResponseCache().getEnable()).isTrue();
  }

  @Test
  void responseCache_isAcceptedOnAnyModel() {
    ModelConfig config = ModelConfigParser.parse("""
        name: "m"
        platform: "onnxruntime_onnx"
        response_cache { enable: true }
        """, "m/config.pbtxt", "m");
    assertThat(config.getResponseCache().getEnable()).isTrue();
  }

  @Test
  void platformAndSchedulingGoTogether() {
    assertThat(problems(PIPELINE.replace("platform: \"ensemble\"", "platform: \"onnxruntime_onnx\"")))
        .contains("ensemble_scheduling needs platform \"ensemble\"; was 'onnxruntime_onnx'");
    assertThat(problems(PIPELINE.substring(0, PIPELINE.indexOf("ensemble_scheduling"))))
        .contains("platform \"ensemble\" needs an ensemble_scheduling block with its steps");
  }

  @Test
  void whatAnEnsembleCannotHave_isNamed() {
    String withExtras = PIPELINE + """
        instance_group [ { count: 2 kind: KIND_CPU } ]
        default_model_filename: "model.onnx"
        model_warmup [ { name: "w" batch_size: 1 } ]
        """;
    assertThat(problems(withExtras)).contains("instance_group is not allowed for an ensemble",
        "default_model_filename is not allowed for an ensemble", "model_warmup is not allowed for an ensemble");
  }

  @Test
  void badSteps_areNamed() {
    assertThat(problems(PIPELINE.replace("model_name: \"preprocess\"", "model_name: \"\"")))
        .contains("ensemble_scheduling.step[0].model_name must not be empty");
    assertThat(problems(PIPELINE.replace("model_name: \"preprocess\"", "model_name: \"../etc\"")))
        .contains("ensemble_scheduling.step[0].model_name:");
    assertThat(problems(PIPELINE.replace("model_name: \"preprocess\"", "model_name: \"pipe\"")))
        .contains("ensemble_scheduling.step[0].model_name must not be the ensemble itself ('pipe')");
    assertThat(problems(PIPELINE.replace("model_version: 2", "model_version: -5")))
        .contains("ensemble_scheduling.step[1].model_version must be -1 (the routed version) or a version number; was -5");
    assertThat(problems(PIPELINE.replace("output_map { key: \"features\" value: \"features\" }", "")))
        .contains("ensemble_scheduling.step[0].output_map must map at least one output of model 'preprocess'");
    assertThat(problems(PIPELINE.replace("input_map { key: \"raw\" value: \"raw\" }", "input_map { key: \"raw\" value: \"\" }")))
        .contains("ensemble_scheduling.step[0].input_map must not have an empty tensor name");
  }

  @Test
  void ensembleTensors_needTheirDatatypes_andCannotBeBothInputAndOutput() {
    assertThat(problems(PIPELINE.replace("{ name: \"raw\" data_type: TYPE_UINT8 dims: [ 16 ] }", "{ name: \"raw\" dims: [ 16 ] }")))
        .contains("input 'raw'.data_type must be set for an ensemble");
    assertThat(problems(PIPELINE.replace("name: \"probabilities\" data_type", "name: \"raw\" data_type")))
        .contains("ensemble tensor 'raw' is both an input and an output of the ensemble");
  }

  @Test
  void unknownFieldsInASteps_areStillRefusedByName() {
    assertThatThrownBy(() -> parse(PIPELINE.replace("model_version: -1", "model_version: -1\n model_namespace: \"x\"")))
        .isInstanceOf(InferenceException.class).hasMessageContaining("model_namespace");
  }
}
