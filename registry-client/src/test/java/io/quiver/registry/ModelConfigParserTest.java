package io.quiver.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.DataType;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigParserTest {
  @TempDir Path dir;

  private static final String SIMPLE = """
      name: "simple"
      platform: "onnxruntime_onnx"
      max_batch_size: 8
      input [
        { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
        { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
      ]
      output [
        { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
        { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ -1 ] }
      ]
      dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
      instance_group [ { count: 2 kind: KIND_CPU } ]
      version_policy: { latest: { num_versions: 2 } }
      parameters { key: "intra_op_threads" value: { string_value: "1" } }
      """;

  private Path write(String model, String text) throws Exception {
    Path modelDir = Files.createDirectories(dir.resolve(model));
    return Files.writeString(modelDir.resolve("config.pbtxt"), text, StandardCharsets.UTF_8);
  }

  private static InferenceException parseError(String text, String model) {
    try {
      ModelConfigParser.parse(text, "models/" + model + "/config.pbtxt", model);
    } catch (InferenceException e) {
      return e;
    }
    throw new AssertionError("expected the config to be rejected:\n" + text);
  }

  @Test
  void parseFile_tritonConfig_readsEveryField() throws Exception {
    ModelConfig config = ModelConfigParser.parseFile(write("simple", SIMPLE), "simple");

    assertThat(config.getName()).isEqualTo("simple");
    assertThat(config.getPlatform()).isEqualTo("onnxruntime_onnx");
    assertThat(config.getMaxBatchSize()).isEqualTo(8);
    assertThat(config.getInputList()).extracting(i -> i.getName()).containsExactly("INPUT0", "INPUT1");
    assertThat(config.getInput(0).getDataType()).isEqualTo(DataType.TYPE_INT32);
    assertThat(config.getOutput(1).getDimsList()).containsExactly(-1L);
    assertThat(config.getDynamicBatching().getPreferredBatchSizeList()).containsExactly(4, 8);
    assertThat(config.getDynamicBatching().getMaxQueueDelayMicroseconds()).isEqualTo(100);
    assertThat(config.getInstanceGroup(0).getCount()).isEqualTo(2);
    assertThat(config.getInstanceGroup(0).getKind()).isEqualTo(ModelInstanceGroup.Kind.KIND_CPU);
    assertThat(config.getVersionPolicy().getLatest().getNumVersions()).isEqualTo(2);
    assertThat(config.getParametersMap().get("intra_op_threads").getStringValue()).isEqualTo("1");
  }

  @Test
  void parse_withoutName_takesTheDirectoryName() {
    ModelConfig config = ModelConfigParser.parse("max_batch_size: 4", "x/config.pbtxt", "identity");
    assertThat(config.getName()).isEqualTo("identity");
  }

  @Test
  void parse_emptyFile_isAConfigHoldingOnlyTheName() {
    assertThat(ModelConfigParser.parse("", "x", "m")).isEqualTo(ModelConfig.newBuilder().setName("m").build());
  }

  @Test
  void parseFile_unknownField_namesFieldFileAndLine() throws Exception {
    Path file = write("seq", """
        name: "seq"
        max_batch_size: 4
        model_transaction_policy { decoupled: true }
        """);

    assertThatThrownBy(() -> ModelConfigParser.parseFile(file, "seq"))
        .isInstanceOf(InferenceException.class)
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("'model_transaction_policy'")
        .hasMessageContaining(file + ":3:")
        .hasMessageContaining("unsupported field");
  }

  @Test
  void parse_unknownNestedField_namesTheMessageType() {
    InferenceException e = parseError("input [ { name: \"A\" data_type: TYPE_FP32 dims: [1] bogus: 3 } ]", "m");
    assertThat(e.getMessage()).contains("'bogus'").contains("inference.ModelInput").contains(":1:");
  }

  @Test
  void parse_syntaxErrorAndUnknownEnum_areInvalidArgumentWithPosition() {
    assertThat(parseError("max_batch_size: \"eight\"", "m").getMessage()).contains("models/m/config.pbtxt:1:");
    InferenceException kind = parseError("name: \"m\"\ninstance_group [ { kind: KIND_TPU } ]", "m");
    assertThat(kind.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(kind.getMessage()).contains(":2:").contains("KIND_TPU");
  }

  @Test
  void parse_singularFieldGivenTwice_isRejected() {
    assertThat(parseError("max_batch_size: 4\nmax_batch_size: 8", "m").getMessage()).contains("max_batch_size");
  }

  @Test
  void parse_negativeMaxBatchSize_saysWhatWasGiven() {
    assertThat(parseError("max_batch_size: -3", "m").getMessage())
        .contains("max_batch_size must be >= 0; was -3")
        .contains("models/m/config.pbtxt");
  }

  @Test
  void parse_nameDifferentFromDirectory_isRejected() {
    assertThat(parseError("name: \"other\"", "m").getMessage())
        .contains("name must match the model directory name 'm'; was 'other'");
  }

  @Test
  void parse_badTensorDeclarations_areEachReported() {
    InferenceException e = parseError("""
        input [
          { name: "A" data_type: TYPE_FP32 dims: [ -2, 4 ] },
          { name: "A" data_type: TYPE_FP32 dims: [ 0 ] },
          { name: "" data_type: TYPE_FP32 dims: [ 1 ] }
        ]
        output [ { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] }, { name: "Y" data_type: TYPE_FP32 dims: [ 1 ] } ]
        """, "m");

    assertThat(e.getMessage())
        .contains("input 'A'.dims[0] must be >= 1, or -1 for a variable dimension; was -2")
        .contains("input 'A'.dims[0] must be >= 1, or -1 for a variable dimension; was 0")
        .contains("input name 'A' is declared more than once")
        .contains("input[2].name must not be empty")
        .contains("output name 'Y' is declared more than once");
  }

  @Test
  void parse_batchingInconsistencies_areRejected() {
    assertThat(parseError("max_batch_size: 8\ndynamic_batching { preferred_batch_size: [ 4, 16 ] }", "m").getMessage())
        .contains("dynamic_batching.preferred_batch_size must be in [1, max_batch_size=8]; was 16");
    assertThat(parseError("max_batch_size: 0\ndynamic_batching { }", "m").getMessage())
        .contains("dynamic_batching requires max_batch_size > 0; was 0");
    assertThat(parseError("max_batch_size: 4\ndynamic_batching { priority_levels: 2 default_priority_level: 3 }", "m")
        .getMessage()).contains("default_priority_level must be in [1, priority_levels=2]; was 3");
    // The batcher's own rules (one home: SchedulingRules): what it cannot run is refused at parse time.
    assertThat(parseError("max_batch_size: 4\ndynamic_batching { priority_levels: 65 default_priority_level: 1 }", "m")
        .getMessage()).contains("dynamic_batching.priority_levels must be in [0, 64]; was 65");
    assertThat(parseError("max_batch_size: 4\ndynamic_batching { default_queue_policy { max_queue_size: 2000000 } }", "m")
        .getMessage()).contains("default_queue_policy.max_queue_size must be in [0, 1048576]; was 2000000");
    assertThat(parseError("max_batch_size: 4\nparameters { key: \"quiver.latency_target_us\" value { string_value: \"soon\" } }",
        "m").getMessage()).contains("quiver.latency_target_us").contains("soon");
  }

  @Test
  void parse_instanceGroupAndPolicyValues_areChecked() {
    assertThat(parseError("instance_group [ { count: -1 kind: KIND_CPU } ]", "m").getMessage())
        .contains("instance_group[0].count must be >= 0; was -1");
    assertThat(parseError("instance_group [ { count: 1 kind: KIND_CPU gpus: [ 0 ] } ]", "m").getMessage())
        .contains("instance_group[0].gpus must be empty for KIND_CPU");
    assertThat(parseError("instance_group [ { count: 1000 kind: KIND_CPU } ]", "m").getMessage())
        .contains("1000 instances");
    assertThat(parseError("version_policy { latest { num_versions: 0 } }", "m").getMessage())
        .contains("version_policy.latest.num_versions must be >= 1; was 0");
    assertThat(parseError("version_policy { specific { } }", "m").getMessage())
        .contains("version_policy.specific.versions must name at least one version");
  }

  @Test
  void parse_defaultModelFilenameOutsideVersionDirectory_isRejected() {
    assertThat(parseError("default_model_filename: \"../../etc/passwd\"", "m").getMessage())
        .contains("default_model_filename must be a plain file name");
  }

  @Test
  void parse_unsupportedSemantics_areNamedNotIgnored() {
    assertThat(parseError("input [ { name: \"A\" data_type: TYPE_FP32 dims: [4] reshape: { shape: [2, 2] } } ]", "m")
        .getMessage()).contains("input 'A'.reshape is not supported");
    assertThat(parseError("output [ { name: \"Y\" data_type: TYPE_FP32 dims: [4] label_filename: \"../l.txt\" } ]", "m")
        .getMessage()).contains("output 'Y'.label_filename must be a plain file name");
  }

  @Test
  void parse_labelFilename_isAccepted() {
    assertThat(ModelConfigParser.parse("output [ { name: \"Y\" data_type: TYPE_FP32 dims: [4] label_filename: \"labels.txt\" } ]",
        "x", "m").getOutput(0).getLabelFilename()).isEqualTo("labels.txt");
  }

  @Test
  void parse_sequenceBatching_withTritonsFields_isAccepted() {
    ModelConfig config = ModelConfigParser.parse("""
        max_batch_size: 4
        sequence_batching {
          max_sequence_idle_microseconds: 5000000
          oldest { max_candidate_sequences: 4 preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 100 }
          control_input [
            { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
            { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0, 1 ] } ] },
            { name: "END" control [ { kind: CONTROL_SEQUENCE_END bool_false_true: [ false, true ] } ] },
            { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] }
          ]
          state [ { input_name: "STATE_IN" output_name: "STATE_OUT" data_type: TYPE_INT32 dims: [ 1 ]
                    initial_state: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true name: "zeros" } } ]
        }
        """, "x", "m");
    assertThat(config.getSequenceBatching().getControlInputCount()).isEqualTo(4);
    assertThat(config.getSequenceBatching().getOldest().getMaxCandidateSequences()).isEqualTo(4);
  }

  @Test
  void parse_sequenceBatching_badControls_areNamed() {
    String message = parseError("""
        sequence_batching {
          direct { minimum_slot_utilization: 1.5 }
          control_input [
            { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0 ] } ] },
            { name: "S2" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] },
            { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_FP32 } ] },
            { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY } ] }
          ]
          state [ { input_name: "S" output_name: "T" data_type: TYPE_FP32 dims: [ -1 ] } ]
          iterative_sequence: true
        }
        """, "m").getMessage();
    assertThat(message)
        .contains("minimum_slot_utilization must be between 0 and 1")
        .contains("must have exactly 2 entries")
        .contains("more than one CONTROL_SEQUENCE_START control")
        .contains("CORRID control must be TYPE_UINT64")
        .contains("must give exactly one of int32_false_true")
        .contains("variable state dims are not supported")
        .contains("iterative_sequence is not supported");
  }

  @Test
  void parseFile_missingFile_isNotFound() {
    assertThatThrownBy(() -> ModelConfigParser.parseFile(dir.resolve("none/config.pbtxt"), "none"))
        .hasFieldOrPropertyWithValue("code", ErrorCode.NOT_FOUND);
  }

  @Test
  void parseFile_binaryGarbage_isInvalidArgument() throws Exception {
    Path modelDir = Files.createDirectories(dir.resolve("bin"));
    Path file = Files.write(modelDir.resolve("config.pbtxt"), new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1});
    assertThatThrownBy(() -> ModelConfigParser.parseFile(file, "bin"))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("UTF-8");
  }
}
