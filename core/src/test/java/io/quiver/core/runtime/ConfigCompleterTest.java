package io.quiver.core.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOutput;
import io.quiver.proto.inference.ModelTensorReshape;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ConfigCompleterTest {
  private static final ConfigCompleter COMPLETER = new ConfigCompleter("test", "test_platform", "test_backend", 4);

  private static final List<ModelTensor> BATCHABLE_IN = List.of(new ModelTensor("x", DataType.FP32, new long[] {-1, 3}));
  private static final List<ModelTensor> BATCHABLE_OUT = List.of(new ModelTensor("y", DataType.FP32, new long[] {-1, 3}));
  private static final List<ModelTensor> FIXED_IN = List.of(new ModelTensor("x", DataType.INT64, new long[] {2, 3}));
  private static final List<ModelTensor> FIXED_OUT = List.of(new ModelTensor("y", DataType.INT64, new long[] {2, -1}));

  private static ModelConfig named() {
    return ModelConfig.newBuilder().setName("m").build();
  }

  private static InferenceException invalid(Runnable r) {
    try {
      r.run();
    } catch (InferenceException e) {
      assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
      return e;
    }
    throw new AssertionError("expected INVALID_ARGUMENT");
  }

  @Test
  void complete_withNameOnly_fillsEverythingAndBatchesWithTheDefault() {
    ModelConfig completed = COMPLETER.complete(named(), BATCHABLE_IN, BATCHABLE_OUT);

    assertThat(completed.getPlatform()).isEqualTo("test_platform");
    assertThat(completed.getBackend()).isEqualTo("test_backend");
    assertThat(completed.getMaxBatchSize()).isEqualTo(4);
    assertThat(completed.getDynamicBatching()).isEqualTo(ModelDynamicBatching.getDefaultInstance());
    assertThat(completed.hasDynamicBatching()).isTrue();
    assertThat(completed.getInputList()).containsExactly(ModelInput.newBuilder().setName("x")
        .setDataType(io.quiver.proto.inference.DataType.TYPE_FP32).addDims(3).build());
    assertThat(completed.getOutputList()).containsExactly(ModelOutput.newBuilder().setName("y")
        .setDataType(io.quiver.proto.inference.DataType.TYPE_FP32).addDims(3).build());
  }

  @Test
  void complete_withFixedFirstDim_doesNotBatchAndKeepsFullShape() {
    ModelConfig completed = COMPLETER.complete(named(), FIXED_IN, FIXED_OUT);

    assertThat(completed.getMaxBatchSize()).isZero();
    assertThat(completed.hasDynamicBatching()).isFalse();
    assertThat(completed.getInput(0).getDimsList()).containsExactly(2L, 3L);
    assertThat(completed.getOutput(0).getDimsList()).containsExactly(2L, -1L);
  }

  @Test
  void complete_whenDeclaredDimsSpellOutTheBatchDim_doesNotBatch() {
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("x").addDims(-1).addDims(3)).build();

    ModelConfig completed = COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT);

    assertThat(completed.getMaxBatchSize()).isZero();
    assertThat(completed.getInput(0).getDimsList()).containsExactly(-1L, 3L);
    assertThat(completed.getOutput(0).getDimsList()).containsExactly(-1L, 3L);
  }

  @Test
  void complete_keepsDeclaredMaxBatchSizeAndScheduler() {
    ModelConfig declared = named().toBuilder().setMaxBatchSize(1).build();
    ModelConfig completed = COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT);
    assertThat(completed.getMaxBatchSize()).isEqualTo(1);
    assertThat(completed.hasDynamicBatching()).isFalse(); // only max_batch_size > 1 gets a default scheduler

    ModelConfig explicit = named().toBuilder().setMaxBatchSize(16).setDynamicBatching(
        ModelDynamicBatching.newBuilder().setMaxQueueDelayMicroseconds(100)).build();
    assertThat(COMPLETER.complete(explicit, BATCHABLE_IN, BATCHABLE_OUT).getDynamicBatching().getMaxQueueDelayMicroseconds())
        .isEqualTo(100);
  }

  @Test
  void complete_putsDeclaredTensorsFirstThenTheRestInModelOrder() {
    List<ModelTensor> inputs = new ArrayList<>();
    for (String name : List.of("a", "b", "c")) {
      inputs.add(new ModelTensor(name, DataType.INT32, new long[] {-1}));
    }
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("c")).build();

    ModelConfig completed = COMPLETER.complete(declared, inputs, BATCHABLE_OUT);

    assertThat(completed.getInputList()).extracting(ModelInput::getName).containsExactly("c", "a", "b");
    assertThat(completed.getInput(0).getDataType()).isEqualTo(io.quiver.proto.inference.DataType.TYPE_INT32);
    assertThat(completed.getInput(0).getDimsList()).isEmpty(); // scalar per batch row
  }

  @Test
  void complete_acceptsVariableDimsAgainstFixedModelDims() {
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("x").addDims(-1)).build();
    assertThat(COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT).getInput(0).getDimsList()).containsExactly(-1L);
  }

  @Test
  void complete_withUnknownName_namesModelTensorAndWhatTheModelHas() {
    ModelConfig declared = named().toBuilder().addOutput(ModelOutput.newBuilder().setName("z")).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT)))
        .hasMessage("model 'm': output 'z' in the config is not an output of the model (the model has [y])");
  }

  @Test
  void complete_withDuplicateName_namesTheTensor() {
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("x"))
        .addInput(ModelInput.newBuilder().setName("x")).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT)))
        .hasMessage("model 'm': input 'x' is declared twice in the config");
  }

  @Test
  void complete_withContradictingType_namesBothTypes() {
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("x")
        .setDataType(io.quiver.proto.inference.DataType.TYPE_INT8)).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT)))
        .hasMessage("model 'm': input 'x' has data_type TYPE_INT8 in the config but TYPE_FP32 in the model");
  }

  @Test
  void complete_withWrongRank_namesBothShapes() {
    ModelConfig declared = named().toBuilder().addInput(ModelInput.newBuilder().setName("x").addDims(3).addDims(1)
        .addDims(1)).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT))).hasMessage(
        "model 'm': input 'x' has dims [3, 1, 1] in the config but the model's shape is [-1, 3] "
            + "(expected 1 dims, excluding the batch dimension)");
  }

  @Test
  void complete_withContradictingFixedDim_namesBothShapes() {
    ModelConfig declared = named().toBuilder().addOutput(ModelOutput.newBuilder().setName("y").addDims(4)).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, BATCHABLE_IN, BATCHABLE_OUT))).hasMessage(
        "model 'm': output 'y' has dims [4] in the config but the model's shape is [-1, 3] (dims [3] without the batch dimension)");

    ModelConfig belowMinusOne = named().toBuilder().addInput(ModelInput.newBuilder().setName("x").addDims(2).addDims(-2))
        .build();
    assertThat(invalid(() -> COMPLETER.complete(belowMinusOne, FIXED_IN, FIXED_OUT))).hasMessageContaining("dims [2, -2]");
  }

  @Test
  void complete_withMaxBatchSizeOnAFixedFirstDim_namesTheTensorAndShape() {
    ModelConfig declared = named().toBuilder().setMaxBatchSize(8).build();
    assertThat(invalid(() -> COMPLETER.complete(declared, FIXED_IN, FIXED_OUT))).hasMessage(
        "model 'm': max_batch_size is 8 but the model cannot batch: 'x' has shape [2, 3], whose first dimension is not variable");
  }

  @Test
  void checkSupported_rejectsOtherPlatformsAndBackends() {
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder().setPlatform("other").build())))
        .hasMessage("model 'm': platform \"other\" is not served by the test runtime (expected \"test_platform\")");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder().setBackend("other").build())))
        .hasMessage("model 'm': backend \"other\" is not served by the test runtime (expected \"test_backend\")");
    COMPLETER.checkSupported(named().toBuilder().setPlatform("test_platform").setBackend("test_backend").build());
  }

  @Test
  void checkSupported_rejectsNegativeMaxBatchSizeAndInstanceCount() {
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder().setMaxBatchSize(-3).build())))
        .hasMessage("model 'm': max_batch_size must be ≥ 0; was -3");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addInstanceGroup(ModelInstanceGroup.getDefaultInstance())
        .addInstanceGroup(ModelInstanceGroup.newBuilder().setCount(-1)).build())))
        .hasMessage("model 'm': instance_group[1].count must be ≥ 0; was -1");
  }

  @Test
  void checkSupported_rejectsTensorFeaturesNoRuntimeImplements() {
    ModelTensorReshape reshape = ModelTensorReshape.newBuilder().addShape(4).build();
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addInput(ModelInput.newBuilder().setName("x").setReshape(reshape)).build())))
        .hasMessage("model 'm': input 'x' sets reshape, which the test runtime does not support");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addInput(ModelInput.newBuilder().setName("x").setIsShapeTensor(true)).build())))
        .hasMessageContaining("input 'x' sets is_shape_tensor");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addInput(ModelInput.newBuilder().setName("x").setAllowRaggedBatch(true)).build())))
        .hasMessageContaining("input 'x' sets allow_ragged_batch");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addOutput(ModelOutput.newBuilder().setName("y").setReshape(reshape)).build())))
        .hasMessageContaining("output 'y' sets reshape");
    assertThat(invalid(() -> COMPLETER.checkSupported(named().toBuilder()
        .addOutput(ModelOutput.newBuilder().setName("y").setIsShapeTensor(true)).build())))
        .hasMessageContaining("output 'y' sets is_shape_tensor");
  }

  @Test
  void checkSupported_runsTheRuntimeHooks_groupBeforeItsCountAndSettingsLast() {
    List<String> calls = new ArrayList<>();
    ConfigCompleter hooked = new ConfigCompleter("test", "test_platform", "test_backend", 4) {
      @Override
      protected void checkInstanceGroup(String model, int index, ModelInstanceGroup group) {
        calls.add("group " + index);
        if (group.getKind() == ModelInstanceGroup.Kind.KIND_GPU) {
          throw InferenceException.invalidArgument("model '%s': instance_group[%d] is KIND_GPU", model, index);
        }
      }

      @Override
      protected void checkRuntimeSettings(ModelConfig config) {
        calls.add("settings");
      }
    };
    ModelConfig gpuWithBadCount = named().toBuilder()
        .addInstanceGroup(ModelInstanceGroup.newBuilder().setKind(ModelInstanceGroup.Kind.KIND_GPU).setCount(-1)).build();
    assertThat(invalid(() -> hooked.checkSupported(gpuWithBadCount))).hasMessage("model 'm': instance_group[0] is KIND_GPU");

    calls.clear();
    hooked.complete(named().toBuilder().addInstanceGroup(ModelInstanceGroup.getDefaultInstance()).build(), BATCHABLE_IN,
        BATCHABLE_OUT);
    assertThat(calls).containsExactly("group 0", "settings");
  }

  @Test
  void withModelName_namesAnUnnamedConfigAfterTheModelDirectory() {
    Path file = Path.of("/repo/resnet/3/model.onnx");
    assertThat(ConfigCompleter.withModelName(ModelConfig.getDefaultInstance(), file).getName()).isEqualTo("resnet");
    assertThat(ConfigCompleter.withModelName(named(), file).getName()).isEqualTo("m");
  }

  @Test
  void constructor_rejectsANonPositiveDefaultMaxBatchSize() {
    assertThatThrownBy(() -> new ConfigCompleter("t", "p", "b", 0)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("was 0");
  }

  @Test
  void modelTensor_hasValueSemanticsOverItsShape() {
    ModelTensor a = new ModelTensor("x", DataType.FP32, new long[] {-1, 3});
    assertThat(a).isEqualTo(new ModelTensor("x", DataType.FP32, new long[] {-1, 3})).hasSameHashCodeAs(
        new ModelTensor("x", DataType.FP32, new long[] {-1, 3}));
    assertThat(a).isNotEqualTo(new ModelTensor("x", DataType.FP32, new long[] {1, 3}));
    assertThat(a.hasDynamicFirstDim()).isTrue();
    assertThat(new ModelTensor("s", DataType.FP32, new long[0]).hasDynamicFirstDim()).isFalse();
    assertThat(a).hasToString("x:FP32[-1, 3]");
  }
}
