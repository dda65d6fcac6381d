package io.quiver.runtime.onnxruntime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.DataType;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOptimizationPolicy;
import io.quiver.proto.inference.ModelOutput;
import io.quiver.proto.inference.ModelParameter;
import io.quiver.proto.inference.ModelTensorReshape;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import java.util.function.Consumer;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Config completion and load-time checks, against real ONNX files opened by ONNX Runtime. */
class OnnxRuntimeConfigTest {
  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    ExampleModels.writeExampleRepository(root);
    ExampleModels.writeUnsupportedDatatypeIdentities(root);
    ExampleModels.writeFixedShape(root);
    ExampleModels.writeCorruptModel(root, "corrupt");
    repo = new TestRepository(root);
  }

  @Test
  void serviceLoader_findsTheRuntime() {
    assertThat(ServiceLoader.load(ModelRuntime.class).stream().map(ServiceLoader.Provider::type))
        .contains(OnnxRuntime.class);
    OnnxRuntime runtime = new OnnxRuntime();
    assertThat(runtime.platform()).isEqualTo("onnxruntime_onnx");
    assertThat(runtime.defaultModelFilename()).isEqualTo("model.onnx");
    assertThat(runtime.handles("onnxruntime_onnx", "")).isTrue();
    assertThat(runtime.handles("", "onnxruntime")).isTrue();
    assertThat(runtime.handles("tensorflow_savedmodel", "")).isFalse();
  }

  @Test
  void completeConfig_withNoConfig_batchesWithTritonsDefaultAndDropsTheBatchDim() {
    ModelConfig completed = repo.completed(ExampleModels.NO_CONFIG_MODEL);

    assertThat(completed.getName()).isEqualTo(ExampleModels.NO_CONFIG_MODEL);
    assertThat(completed.getPlatform()).isEqualTo("onnxruntime_onnx");
    assertThat(completed.getMaxBatchSize()).isEqualTo(4);
    assertThat(completed.hasDynamicBatching()).isTrue();
    assertThat(completed.getInputList()).containsExactly(
        ModelInput.newBuilder().setName("INPUT0").setDataType(DataType.TYPE_INT64).addDims(8).build());
    assertThat(completed.getOutputList()).containsExactly(
        ModelOutput.newBuilder().setName("OUTPUT0").setDataType(DataType.TYPE_INT64).addDims(8).build());
  }

  @Test
  void completeConfig_withAnEmptyName_takesTheModelDirectoryName() {
    ModelConfig completed = repo.runtime.completeConfig(ModelConfig.getDefaultInstance(), repo.modelFile("simple"));
    assertThat(completed.getName()).isEqualTo("simple");
  }

  @Test
  void completeConfig_ofAModelWithoutBatchDim_keepsFullShapesAndNoBatching() {
    ModelConfig completed = repo.completed("fixed_shape");

    assertThat(completed.getMaxBatchSize()).isZero();
    assertThat(completed.hasDynamicBatching()).isFalse();
    assertThat(completed.getInput(0).getDimsList()).containsExactly(2L, 3L);
  }

  @Test
  void completeConfig_ofTheExampleConfigs_keepsWhatTheyDeclare() {
    for (String model : List.of("identity_fp32", "simple", "identity_bytes", "mlp_classifier")) {
      ModelConfig declared = repo.declared(model);
      ModelConfig completed = repo.completed(model);

      assertThat(completed.getMaxBatchSize()).as(model).isEqualTo(declared.getMaxBatchSize());
      assertThat(completed.getInputList()).as(model).isEqualTo(declared.getInputList());
      assertThat(completed.getOutputList()).as(model).isEqualTo(declared.getOutputList());
      assertThat(completed.getBackend()).as(model).isEqualTo("onnxruntime");
      assertThat(ModelSignature.of(completed).batches()).as(model).isTrue();
    }
    assertThat(repo.completed("identity_fp32").getDynamicBatching().getMaxQueueDelayMicroseconds()).isEqualTo(100);
  }

  @Test
  void completeConfig_withAPartialConfig_fillsInTheRest() {
    ModelConfig declared = ModelConfig.newBuilder().setName("simple").setMaxBatchSize(8)
        .addInput(ModelInput.newBuilder().setName("INPUT1"))
        .addOutput(ModelOutput.newBuilder().setName("OUTPUT1").setDataType(DataType.TYPE_INT32))
        .build();

    ModelConfig completed = repo.runtime.completeConfig(declared, repo.modelFile("simple"));

    assertThat(completed.getMaxBatchSize()).isEqualTo(8);
    assertThat(completed.getInputList()).extracting(ModelInput::getName).containsExactly("INPUT1", "INPUT0");
    assertThat(completed.getInputList()).allSatisfy(input -> {
      assertThat(input.getDataType()).isEqualTo(DataType.TYPE_INT32);
      assertThat(input.getDimsList()).containsExactly(16L);
    });
    assertThat(completed.getOutputList()).extracting(ModelOutput::getName).containsExactly("OUTPUT1", "OUTPUT0");
    assertThat(completed.getOutput(1).getDimsList()).containsExactly(16L);
  }

  @Test
  void completeConfig_whoseDimsIncludeTheBatchDim_doesNotBatch() {
    ModelConfig declared = ModelConfig.newBuilder().setName("identity_fp32")
        .addInput(ModelInput.newBuilder().setName("INPUT0").addDims(-1).addDims(16))
        .build();

    ModelConfig completed = repo.runtime.completeConfig(declared, repo.modelFile("identity_fp32"));

    assertThat(completed.getMaxBatchSize()).isZero();
    assertThat(completed.getInput(0).getDimsList()).containsExactly(-1L, 16L);
    assertThat(completed.getOutput(0).getDimsList()).containsExactly(-1L, 16L);
  }

  @Test
  void completeConfig_thenRun_worksForTheAutoCompletedModel() {
    try (ModelRunner runner = repo.runner(ExampleModels.NO_CONFIG_MODEL)) {
      Tensor out = runner.run(new Tensor[] {TestRepository.longs("INPUT0", new long[] {3, 8}, new long[24])}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(3, 8);
    }
  }

  @Test
  void completeConfig_withAContradictingType_namesModelTensorAndBothTypes() {
    ModelConfig declared = repo.declared("simple").toBuilder()
        .setInput(0, repo.declared("simple").getInput(0).toBuilder().setDataType(DataType.TYPE_FP32))
        .build();

    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("simple")),
        "'simple'", "'INPUT0'", "TYPE_FP32", "TYPE_INT32");
  }

  @Test
  void completeConfig_withContradictingDims_namesModelTensorAndBothShapes() {
    ModelConfig declared = repo.declared("identity_fp32").toBuilder()
        .setOutput(0, repo.declared("identity_fp32").getOutput(0).toBuilder().clearDims().addDims(8))
        .build();

    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("identity_fp32")),
        "'identity_fp32'", "'OUTPUT0'", "[8]", "16");
  }

  @Test
  void completeConfig_withWrongRank_isInvalid() {
    ModelConfig declared = ModelConfig.newBuilder().setName("simple").setMaxBatchSize(8)
        .addInput(ModelInput.newBuilder().setName("INPUT0").addDims(4).addDims(4))
        .build();

    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("simple")), "'INPUT0'", "[4, 4]", "1 dims");
  }

  @Test
  void completeConfig_withAnUnknownTensor_namesIt() {
    ModelConfig declared = ModelConfig.newBuilder().setName("simple")
        .addOutput(ModelOutput.newBuilder().setName("OUTPUT9"))
        .build();

    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("simple")), "'OUTPUT9'", "OUTPUT0", "OUTPUT1");
  }

  @Test
  void completeConfig_batchingAModelWithAFixedFirstDim_isInvalid() {
    ModelConfig declared = ModelConfig.newBuilder().setName("fixed_shape").setMaxBatchSize(4).build();

    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("fixed_shape")),
        "max_batch_size is 4", "'INPUT0'", "[2, 3]");
  }

  @Test
  void completeConfig_withUnsupportedFields_namesTheField() {
    ModelConfig base = repo.declared("identity_fp32");
    expectUnsupported(base.toBuilder().addInstanceGroup(ModelInstanceGroup.newBuilder()
        .setKind(ModelInstanceGroup.Kind.KIND_MODEL).setCount(1)).build(), "instance_group[0].kind", "KIND_MODEL");
    expectUnsupported(base.toBuilder().addInstanceGroup(ModelInstanceGroup.newBuilder()
        .setKind(ModelInstanceGroup.Kind.KIND_CPU).addGpus(0)).build(), "instance_group[0].gpus", "KIND_GPU");
    expectUnsupported(base.toBuilder().setInput(0, base.getInput(0).toBuilder()
        .setReshape(ModelTensorReshape.newBuilder().addShape(4).addShape(4))).build(), "'INPUT0'", "reshape");
    expectUnsupported(base.toBuilder().setOutput(0, base.getOutput(0).toBuilder().setIsShapeTensor(true)).build(),
        "'OUTPUT0'", "is_shape_tensor");
    expectUnsupported(base.toBuilder().setOptimization(ModelOptimizationPolicy.newBuilder().setExecutionAccelerators(
        ModelOptimizationPolicy.ExecutionAccelerators.newBuilder().addCpuExecutionAccelerator(
            ModelOptimizationPolicy.ExecutionAccelerators.Accelerator.newBuilder().setName("openvino")))).build(),
        "optimization.execution_accelerators");
    expectUnsupported(base.toBuilder().setOptimization(ModelOptimizationPolicy.newBuilder()
        .setGraph(ModelOptimizationPolicy.Graph.newBuilder().setLevel(7))).build(), "optimization.graph.level", "7");
    expectUnsupported(withParameter(base, "intra_op_thread_count", "two"), "intra_op_thread_count", "two");
    expectUnsupported(withParameter(base, "allow_spinning", "maybe"), "allow_spinning", "maybe");
    expectUnsupported(withParameter(base, "gpu_mem_limit", "1000"), "gpu_mem_limit");
    expectUnsupported(base.toBuilder().setPlatform("tensorflow_savedmodel").build(), "platform", "tensorflow_savedmodel");
  }



  @Test
  void newRunner_withSessionParameters_runs() {
    ModelConfig completed = repo.completed("identity_fp32").toBuilder()
        .putParameters("intra_op_thread_count", ModelParameter.newBuilder().setStringValue("1").build())
        .putParameters("inter_op_thread_count", ModelParameter.newBuilder().setStringValue("1").build())
        .putParameters("allow_spinning", ModelParameter.newBuilder().setStringValue("1").build())
        .putParameters("execution_mode", ModelParameter.newBuilder().setStringValue("1").build())
        .putParameters("enable_mem_arena", ModelParameter.newBuilder().setStringValue("false").build())
        .setOptimization(ModelOptimizationPolicy.newBuilder().setGraph(ModelOptimizationPolicy.Graph.newBuilder().setLevel(2)))
        .build();

    try (ModelRunner runner = repo.runtime.newRunner(completed, repo.modelFile("identity_fp32"), InstanceSpec.cpu(0))) {
      Tensor out = runner.run(new Tensor[] {TestRepository.floats("INPUT0", new long[] {2, 16}, new float[32])}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(2, 16);
    }
  }

  @Test
  void corruptModelFile_isAClearInvalidArgument() {
    assertInvalid(() -> repo.completed("corrupt"), "'corrupt'", "cannot load", "model.onnx");
    ModelConfig completedElsewhere = repo.completed("identity_fp32").toBuilder().setName("corrupt").build();
    assertInvalid(() -> repo.runtime.newRunner(completedElsewhere, repo.modelFile("corrupt"), InstanceSpec.cpu(0)),
        "'corrupt'", "cannot load");
  }

  @Test
  void missingModelFile_isNotFound() {
    assertThatThrownBy(() -> repo.runtime.completeConfig(repo.declared("simple"), root.resolve("simple/9/model.onnx")))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND))
        .hasMessageContaining("does not exist");
  }

  @Test
  void unsignedInputs_failToLoadNamingTensorAndType() {
    for (String wireName : ExampleModels.UNSUPPORTED_INPUT_DATATYPES) {
      String model = ExampleModels.datatypeModelName(wireName);
      assertInvalid(() -> repo.completed(model), "'" + model + "'", "'INPUT0'", "TYPE_" + wireName, "cannot create tensors");
    }
  }

  @Test
  void newRunner_withAConfigThatDoesNotDescribeTheFile_isInvalid() {
    ModelConfig ofSimple = repo.completed("simple");
    assertInvalid(() -> repo.runtime.newRunner(ofSimple, repo.modelFile("identity_fp32"), InstanceSpec.cpu(0)),
        "'simple'", "'INPUT0'", "INT32", "FP32");
  }

  private static ModelConfig withParameter(ModelConfig config, String key, String value) {
    return config.toBuilder().putParameters(key, ModelParameter.newBuilder().setStringValue(value).build()).build();
  }

  private static void expectUnsupported(ModelConfig declared, String... fragments) {
    assertInvalid(() -> repo.runtime.completeConfig(declared, repo.modelFile("identity_fp32")), fragments);
  }

  private static void assertInvalid(ThrowingCallable call, String... fragments) {
    Consumer<InferenceException> invalid = e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    var assertion = assertThatThrownBy(call).isInstanceOfSatisfying(InferenceException.class, invalid);
    for (String fragment : fragments) {
      assertion.hasMessageContaining(fragment);
    }
  }
}
