package io.quiver.runtime.tensorflow;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.TextFormat;
import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.ServiceLoader;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Loads SavedModels that {@link TfTestModels} builds at test time and runs them through real
 * TensorFlow sessions on the CPU; no mocks. The models are built once for the class (TensorFlow's
 * first use in a JVM costs seconds).
 */
class TensorFlowRuntimeTest {
  @TempDir static Path root;
  static final TensorFlowRuntime RUNTIME = new TensorFlowRuntime();
  static Path addSub;
  static Path twoSignatures;
  static Path fixedShape;
  static Path identities;

  @BeforeAll
  static void buildModels() throws IOException {
    addSub = TfTestModels.writeAddSub(root.resolve("add_sub/1/model.savedmodel"));
    twoSignatures = TfTestModels.writeTwoSignatures(root.resolve("two_signatures/1/model.savedmodel"));
    fixedShape = TfTestModels.writeFixedShape(root.resolve("fixed_shape/1/model.savedmodel"));
    identities = TfTestModels.writeIdentities(root.resolve("identities/1/model.savedmodel"));
  }

  // ---- discovery -------------------------------------------------------------------------------

  @Test
  void serviceLoader_findsTheRuntime_withTritonsPlatformAndDirectoryName() {
    List<String> names = new ArrayList<>();
    for (ModelRuntime runtime : ServiceLoader.load(ModelRuntime.class)) {
      names.add(runtime.name());
    }
    assertThat(names).contains("tensorflow");
    assertThat(RUNTIME.platform()).isEqualTo("tensorflow_savedmodel");
    assertThat(RUNTIME.defaultModelFilename()).isEqualTo("model.savedmodel");
    assertThat(RUNTIME.handles("tensorflow_savedmodel", "")).isTrue();
    assertThat(RUNTIME.handles("", "tensorflow")).isTrue();
    assertThat(RUNTIME.handles("onnxruntime_onnx", "")).isFalse();
  }

  // ---- config completion -----------------------------------------------------------------------

  @Test
  void completeConfig_withoutConfig_readsTheSignatureAndBatchesLikeTriton() {
    ModelConfig completed = RUNTIME.completeConfig(ModelConfig.getDefaultInstance(), addSub);

    assertThat(completed.getName()).isEqualTo("add_sub");
    assertThat(completed.getPlatform()).isEqualTo("tensorflow_savedmodel");
    assertThat(completed.getBackend()).isEqualTo("tensorflow");
    assertThat(completed.getMaxBatchSize()).isEqualTo(TensorFlowRuntime.DEFAULT_MAX_BATCH_SIZE);
    assertThat(completed.hasDynamicBatching()).isTrue();
    assertThat(completed.getInputList()).extracting(i -> i.getName()).containsExactly("INPUT0", "INPUT1");
    assertThat(completed.getOutputList()).extracting(o -> o.getName()).containsExactly("OUTPUT0", "OUTPUT1");
    assertThat(completed.getInput(0).getDataType()).isEqualTo(io.quiver.proto.inference.DataType.TYPE_INT32);
    assertThat(completed.getInput(0).getDimsList()).containsExactly(16L);
    assertThat(completed.getOutput(1).getDimsList()).containsExactly(16L);
  }

  @Test
  void completeConfig_fixedFirstDimension_doesNotBatch() {
    ModelConfig completed = RUNTIME.completeConfig(config("name: 'fixed_shape'"), fixedShape);

    assertThat(completed.getMaxBatchSize()).isZero();
    assertThat(completed.hasDynamicBatching()).isFalse();
    assertThat(completed.getInput(0).getName()).isEqualTo("m");
    assertThat(completed.getInput(0).getDataType()).isEqualTo(io.quiver.proto.inference.DataType.TYPE_FP64);
    assertThat(completed.getInput(0).getDimsList()).containsExactly(2L, 3L);
  }

  @Test
  void completeConfig_partialConfig_keepsDeclaredValuesAndFillsTheRest() {
    ModelConfig completed = RUNTIME.completeConfig(config(
        "name: 'add_sub' max_batch_size: 8 input { name: 'INPUT1' data_type: TYPE_INT32 dims: [ 16 ] }"), addSub);

    assertThat(completed.getMaxBatchSize()).isEqualTo(8);
    assertThat(completed.getInputList()).extracting(i -> i.getName()).containsExactly("INPUT1", "INPUT0");
    assertThat(completed.getOutputCount()).isEqualTo(2);
  }

  @Test
  void completeConfig_stringsMapToTypeString_andEveryMappedTypeIsListed() {
    ModelConfig completed = RUNTIME.completeConfig(config("name: 'identities'"), identities);

    assertThat(completed.getInputList()).extracting(i -> i.getName() + ":" + i.getDataType()).contains(
        "in_BYTES:TYPE_STRING", "in_BOOL:TYPE_BOOL", "in_UINT8:TYPE_UINT8", "in_UINT16:TYPE_UINT16",
        "in_INT32:TYPE_INT32", "in_INT64:TYPE_INT64", "in_FP16:TYPE_FP16", "in_BF16:TYPE_BF16",
        "in_FP32:TYPE_FP32", "in_FP64:TYPE_FP64");
    assertThat(completed.getMaxBatchSize()).isEqualTo(TensorFlowRuntime.DEFAULT_MAX_BATCH_SIZE);
  }

  @Test
  void completeConfig_contradictingTypeOrName_isInvalidArgumentNamingTheTensor() {
    assertInvalid(() -> RUNTIME.completeConfig(config("name: 'add_sub' input { name: 'INPUT0' data_type: TYPE_FP32 }"), addSub),
        "INPUT0", "TYPE_FP32", "TYPE_INT32");
    assertInvalid(() -> RUNTIME.completeConfig(config("name: 'add_sub' output { name: 'SUM' }"), addSub),
        "SUM", "OUTPUT0");
    assertInvalid(() -> RUNTIME.completeConfig(config("name: 'fixed_shape' max_batch_size: 4"), fixedShape),
        "max_batch_size", "'m'");
    assertInvalid(() -> RUNTIME.completeConfig(config("name: 'add_sub' input { name: 'INPUT0' dims: [ 17 ] }"), addSub),
        "INPUT0", "[17]");
  }

  @Test
  void completeConfig_gpuInstancesOrAccelerators_areRejectedNamingTheField() {
    assertInvalid(() -> RUNTIME.completeConfig(config("name: 'add_sub' instance_group { kind: KIND_GPU gpus: [ 0 ] }"), addSub),
        "instance_group[0]", "KIND_GPU", "CPU only");
    assertInvalid(() -> RUNTIME.completeConfig(config(
        "name: 'add_sub' optimization { execution_accelerators { gpu_execution_accelerator { name: 'tensorrt' } } }"), addSub),
        "execution_accelerators");
    assertInvalid(() -> RUNTIME.completeConfig(config(
        "name: 'add_sub' parameters { key: 'intra_op_thread_count' value { string_value: 'many' } }"), addSub),
        "intra_op_thread_count", "many");
  }

  @Test
  void completeConfig_unknownSignature_listsTheSignaturesPresent() {
    assertInvalid(() -> RUNTIME.completeConfig(config(
        "name: 'two_signatures' parameters { key: 'TF_SIGNATURE_DEF' value { string_value: 'triple' } }"), twoSignatures),
        "'triple'", "serving_default", "double", "TF_SIGNATURE_DEF");
  }

  // ---- missing and corrupt models --------------------------------------------------------------

  @Test
  void missingSavedModel_isNotFoundNamingTheDirectory() {
    Path missing = root.resolve("nothing/1/model.savedmodel");
    assertThatThrownBy(() -> RUNTIME.completeConfig(ModelConfig.getDefaultInstance(), missing))
        .isInstanceOf(InferenceException.class)
        .satisfies(e -> assertThat(((InferenceException) e).code()).isEqualTo(ErrorCode.NOT_FOUND))
        .hasMessageContaining(missing.toString());
  }

  @Test
  void fileInsteadOfDirectory_orDirectoryWithoutSavedModelPb_isAClearError() throws IOException {
    Path file = Files.createDirectories(root.resolve("as_file/1")).resolve("model.savedmodel");
    Files.writeString(file, "x");
    assertThatThrownBy(() -> RUNTIME.completeConfig(ModelConfig.getDefaultInstance(), file))
        .hasMessageContaining("it is a file");
    Path empty = Files.createDirectories(root.resolve("empty/1/model.savedmodel"));
    assertInvalid(() -> RUNTIME.completeConfig(ModelConfig.getDefaultInstance(), empty), "holds no saved_model.pb");
  }

  @Test
  void corruptSavedModel_isInvalidArgumentWithTensorFlowsReason() throws IOException {
    Path corrupt = TfTestModels.writeCorrupt(root.resolve("corrupt/1/model.savedmodel"));
    assertInvalid(() -> RUNTIME.completeConfig(ModelConfig.getDefaultInstance(), corrupt),
        "model 'corrupt'", "TensorFlow cannot load the SavedModel", corrupt.toString());
    assertInvalid(() -> RUNTIME.newRunner(config("name: 'corrupt'"), corrupt, InstanceSpec.cpu(0)),
        "TensorFlow cannot load the SavedModel");
  }

  @Test
  void unknownTag_isInvalidArgumentNamingTheTag() {
    assertInvalid(() -> RUNTIME.completeConfig(config(
        "name: 'add_sub' parameters { key: 'TF_GRAPH_TAG' value { string_value: 'train' } }"), addSub), "'train'");
  }

  // ---- inference -------------------------------------------------------------------------------

  @Test
  void run_addSub_computesSumAndDifference() {
    int batch = 3;
    int[] a = new int[batch * 16];
    int[] b = new int[batch * 16];
    Random random = new Random(42);
    for (int i = 0; i < a.length; i++) {
      a[i] = random.nextInt(2000) - 1000;
      b[i] = random.nextInt(2000) - 1000;
    }
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", batch, a), ints("INPUT1", batch, b)}, new int[] {0, 1});

      assertThat(out[0].name()).isEqualTo("OUTPUT0");
      assertThat(out[0].shape()).containsExactly(batch, 16);
      int[] sum = intValues(out[0]);
      int[] difference = intValues(out[1]);
      for (int i = 0; i < a.length; i++) {
        assertThat(sum[i]).isEqualTo(a[i] + b[i]);
        assertThat(difference[i]).isEqualTo(a[i] - b[i]);
      }
    }
  }

  @Test
  void run_outputSubsetInAnyOrder_returnsOnlyThoseOutputs() {
    int[] a = new int[16];
    int[] b = new int[16];
    for (int i = 0; i < 16; i++) {
      a[i] = i;
      b[i] = 1;
    }
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", 1, a), ints("INPUT1", 1, b)}, new int[] {1});
      assertThat(out).hasSize(1);
      assertThat(out[0].name()).isEqualTo("OUTPUT1");
      assertThat(intValues(out[0])[5]).isEqualTo(4);

      Tensor[] both = runner.run(new Tensor[] {ints("INPUT0", 1, a), ints("INPUT1", 1, b)}, new int[] {1, 0});
      assertThat(both[0].name()).isEqualTo("OUTPUT1");
      assertThat(both[1].name()).isEqualTo("OUTPUT0");
      assertThat(intValues(both[1])[5]).isEqualTo(6);
    }
  }

  @Test
  void run_namedSignature_servesThatSignature() {
    ModelConfig declared = config("name: 'two_signatures' parameters { key: 'TF_SIGNATURE_DEF' value { string_value: 'double' } }");
    ModelConfig completed = RUNTIME.completeConfig(declared, twoSignatures);
    float[] x = {1f, 2.5f, -3f, 0f};
    try (ModelRunner doubled = RUNTIME.newRunner(completed, twoSignatures, InstanceSpec.cpu(0));
        ModelRunner plusOne = runner(twoSignatures, "two_signatures")) {
      assertThat(floatValues(doubled.run(new Tensor[] {floats("x", new long[] {1, 4}, x)}, new int[] {0})[0]))
          .containsExactly(2f, 5f, -6f, 0f);
      assertThat(floatValues(plusOne.run(new Tensor[] {floats("x", new long[] {1, 4}, x)}, new int[] {0})[0]))
          .containsExactly(2f, 3.5f, -2f, 1f);
    }
  }

  @Test
  void run_fixedShapeFp64_computesValues() {
    ByteBuffer data = direct(6 * 8);
    for (int i = 0; i < 6; i++) {
      data.putDouble(i * 8, i * 1.5);
    }
    try (ModelRunner runner = runner(fixedShape, "fixed_shape")) {
      Tensor out = runner.run(new Tensor[] {new Tensor("m", DataType.FP64, new long[] {2, 3}, data)}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(2, 3);
      ByteBuffer values = out.data();
      for (int i = 0; i < 6; i++) {
        assertThat(values.getDouble(i * 8)).isEqualTo(i * 1.5 * 0.5 + 3.0);
      }
    }
  }

  @Test
  void run_identityOfEveryMappedDatatype_returnsTheInputBytes() {
    ModelConfig completed = RUNTIME.completeConfig(config("name: 'identities'"), identities);
    List<String> types = List.of("BOOL", "UINT8", "UINT16", "INT32", "INT64", "FP16", "BF16", "FP32", "FP64");
    long[] shape = {2, 3};
    try (ModelRunner runner = RUNTIME.newRunner(completed, identities, InstanceSpec.cpu(0))) {
      Tensor[] inputs = new Tensor[completed.getInputCount()];
      List<ByteBuffer> expected = new ArrayList<>();
      for (int i = 0; i < inputs.length; i++) {
        String name = completed.getInput(i).getName();
        DataType type = DataType.fromWireName(name.substring(3));
        ByteBuffer data;
        if (type == DataType.BYTES) {
          data = toDirect(BytesElements.encode(List.of(new byte[] {(byte) 0xff, 0, (byte) 0xc3}, new byte[0],
              "héllo".getBytes(StandardCharsets.UTF_8), "x".repeat(300).getBytes(StandardCharsets.US_ASCII),
              new byte[] {0}, "quiver".getBytes(StandardCharsets.UTF_8))));
        } else {
          data = direct(6 * type.byteSize());
          for (int j = 0; j < data.capacity(); j++) {
            // BOOL must be 0 or 1; others get a varied pattern
            data.put(j, type == DataType.BOOL ? (byte) (j % 2) : (byte) (j * 37 + 11));
          }
        }
        inputs[i] = new Tensor(name, type, shape, data);
        expected.add(data.duplicate());
      }
      int[] all = new int[completed.getOutputCount()];
      for (int i = 0; i < all.length; i++) {
        all[i] = i;
      }
      Tensor[] out = runner.run(inputs, all);
      for (int i = 0; i < out.length; i++) {
        String type = out[i].name().substring(4);
        int input = indexOf(completed, "in_" + type);
        assertThat(out[i].dataType().wireName()).isEqualTo(type);
        assertThat(out[i].shape()).containsExactly(2, 3);
        assertThat(bytesOf(out[i].data())).as(type).isEqualTo(bytesOf(expected.get(input)));
      }
      assertThat(types).allMatch(t -> indexOf(completed, "in_" + t) >= 0);
    }
  }

  @Test
  void run_emptyBatchDimension_returnsEmptyOutputs() {
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", 0, new int[0]), ints("INPUT1", 0, new int[0])}, new int[] {0});
      assertThat(out[0].shape()).containsExactly(0, 16);
      assertThat(out[0].byteSize()).isZero();
    }
  }

  @Test
  void run_wrongByteSize_isInvalidArgumentNamingTheInput() {
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor bad = new Tensor("INPUT0", DataType.INT32, new long[] {1, 16}, direct(60));
      assertInvalid(() -> runner.run(new Tensor[] {bad, ints("INPUT1", 1, new int[16])}, new int[] {0}),
          "INPUT0", "64 bytes", "got 60");
    }
  }

  @Test
  void run_shapeTheGraphRejects_isInternalWithTensorFlowsMessage() {
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor a = new Tensor("INPUT0", DataType.INT32, new long[] {1, 16}, direct(64));
      Tensor b = new Tensor("INPUT1", DataType.INT32, new long[] {1, 8}, direct(32)); // 16 and 8 do not broadcast
      assertThatThrownBy(() -> runner.run(new Tensor[] {a, b}, new int[] {0}))
          .isInstanceOf(InferenceException.class)
          .satisfies(e -> assertThat(((InferenceException) e).code()).isEqualTo(ErrorCode.INTERNAL))
          .hasMessageContaining("TensorFlow failed to run");
      // the runner still works after a failed run, and answers from this run's inputs
      int[] x = new int[16];
      int[] y = new int[16];
      for (int i = 0; i < 16; i++) {
        x[i] = 3 * i;
        y[i] = i - 5;
      }
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", 1, x), ints("INPUT1", 1, y)}, new int[] {0, 1});
      assertThat(out[0].shape()).containsExactly(1, 16);
      for (int i = 0; i < 16; i++) {
        assertThat(intValues(out[0])[i]).isEqualTo(4 * i - 5);
        assertThat(intValues(out[1])[i]).isEqualTo(2 * i + 5);
      }
    }
  }

  @Test
  void run_heapInputs_areAcceptedToo() {
    ByteBuffer heap = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      heap.putInt(i * 4, i);
    }
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      Tensor[] out = runner.run(new Tensor[] {new Tensor("INPUT0", DataType.INT32, new long[] {1, 16}, heap),
          new Tensor("INPUT1", DataType.INT32, new long[] {1, 16}, heap)}, new int[] {0});
      assertThat(intValues(out[0])[7]).isEqualTo(14);
    }
  }

  @Test
  void run_manyTimes_staysCorrect() {
    int[] a = new int[8 * 16];
    java.util.Arrays.fill(a, 3);
    try (ModelRunner runner = runner(addSub, "add_sub")) {
      for (int i = 0; i < 2_000; i++) {
        Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", 8, a), ints("INPUT1", 8, a)}, new int[] {0, 1});
        assertThat(out[0].data().getInt(4 * 100)).isEqualTo(6);
      }
    }
  }

  @Test
  void newRunner_gpuInstance_failsNamingTheDevice() {
    ModelConfig completed = RUNTIME.completeConfig(config("name: 'add_sub'"), addSub);
    assertInvalid(() -> RUNTIME.newRunner(completed, addSub, new InstanceSpec("g", 0, InstanceSpec.Kind.GPU, 1)),
        "GPU", "device 1", "CPU only");
  }

  @Test
  void close_isIdempotent_andRunAfterCloseFails() {
    ModelRunner runner = runner(addSub, "add_sub");
    runner.close();
    runner.close();
    assertThatThrownBy(() -> runner.run(new Tensor[] {ints("INPUT0", 1, new int[16]), ints("INPUT1", 1, new int[16])},
        new int[] {0})).hasMessageContaining("closed");
  }

  // ---- helpers ---------------------------------------------------------------------------------

  static ModelRunner runner(Path savedModel, String name) {
    ModelConfig completed = RUNTIME.completeConfig(config("name: '" + name + "'"), savedModel);
    return RUNTIME.newRunner(completed, savedModel, InstanceSpec.cpu(0));
  }

  static ModelConfig config(String text) {
    try {
      return TextFormat.parse(text, ModelConfig.class);
    } catch (TextFormat.ParseException e) {
      throw new AssertionError(e);
    }
  }

  static void assertInvalid(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, String... fragments) {
    assertThatThrownBy(call).isInstanceOf(InferenceException.class)
        .satisfies(e -> assertThat(((InferenceException) e).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
        .satisfies(e -> {
          for (String fragment : fragments) {
            assertThat(e.getMessage()).contains(fragment);
          }
        });
  }

  static ByteBuffer direct(int bytes) {
    return ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  static ByteBuffer toDirect(ByteBuffer heap) {
    return direct(heap.remaining()).put(heap).flip();
  }

  static Tensor ints(String name, int batch, int[] values) {
    ByteBuffer data = direct(values.length * 4);
    data.asIntBuffer().put(values);
    return new Tensor(name, DataType.INT32, new long[] {batch, 16}, data);
  }

  static Tensor floats(String name, long[] shape, float[] values) {
    ByteBuffer data = direct(values.length * 4);
    data.asFloatBuffer().put(values);
    return new Tensor(name, DataType.FP32, shape, data);
  }

  static int[] intValues(Tensor tensor) {
    int[] out = new int[tensor.byteSize() / 4];
    tensor.data().asIntBuffer().get(out);
    return out;
  }

  static float[] floatValues(Tensor tensor) {
    float[] out = new float[tensor.byteSize() / 4];
    tensor.data().asFloatBuffer().get(out);
    return out;
  }

  static byte[] bytesOf(ByteBuffer buffer) {
    ByteBuffer view = buffer.duplicate();
    byte[] out = new byte[view.remaining()];
    view.get(out);
    return out;
  }

  static int indexOf(ModelConfig config, String input) {
    for (int i = 0; i < config.getInputCount(); i++) {
      if (config.getInput(i).getName().equals(input)) {
        return i;
      }
    }
    return -1;
  }
}
