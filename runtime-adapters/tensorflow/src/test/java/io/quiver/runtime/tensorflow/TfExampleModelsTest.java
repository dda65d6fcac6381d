package io.quiver.runtime.tensorflow;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.TextFormat;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The example repository's TensorFlow model: generated deterministically, served as committed. */
class TfExampleModelsTest {
  /** examples/models relative to this module (surefire runs in the module directory). */
  static final Path COMMITTED = Paths.get("../../examples/models/tf_add_sub");

  @TempDir Path repo;

  @Test
  void generatedExample_loadsFromItsConfigAndAddsAndSubtracts() throws IOException {
    Path model = TfExampleModels.writeTfAddSub(repo);
    Path savedModel = model.resolve("1/model.savedmodel");
    assertThat(savedModel.resolve("variables")).doesNotExist(); // removed: git keeps no empty directories
    ModelConfig declared = TextFormat.parse(Files.readString(model.resolve("config.pbtxt")), ModelConfig.class);

    TensorFlowRuntime runtime = new TensorFlowRuntime();
    ModelConfig completed = runtime.completeConfig(declared, savedModel);
    assertThat(completed.getMaxBatchSize()).isEqualTo(8);
    assertThat(completed.getDynamicBatching().getMaxQueueDelayMicroseconds()).isEqualTo(100);
    int[] a = new int[2 * 16];
    int[] b = new int[2 * 16];
    for (int i = 0; i < a.length; i++) {
      a[i] = i;
      b[i] = 10;
    }
    try (ModelRunner runner = runtime.newRunner(completed, savedModel, InstanceSpec.cpu(0))) {
      Tensor[] out = runner.run(new Tensor[] {TensorFlowRuntimeTest.ints("INPUT0", 2, a),
          TensorFlowRuntimeTest.ints("INPUT1", 2, b)}, new int[] {0, 1});
      assertThat(TensorFlowRuntimeTest.intValues(out[0])[31]).isEqualTo(41);
      assertThat(TensorFlowRuntimeTest.intValues(out[1])[0]).isEqualTo(-10);
    }
  }

  @Test
  void committedExample_isWhatTheGeneratorWrites() throws IOException {
    Path model = TfExampleModels.writeTfAddSub(repo);
    assertThat(Files.readAllBytes(COMMITTED.resolve("1/model.savedmodel/saved_model.pb")))
        .as("examples/models/tf_add_sub is stale: regenerate it (see examples/models/README.md)")
        .isEqualTo(Files.readAllBytes(model.resolve("1/model.savedmodel/saved_model.pb")));
    assertThat(Files.readString(COMMITTED.resolve("config.pbtxt")))
        .isEqualTo(Files.readString(model.resolve("config.pbtxt")));
  }
}
