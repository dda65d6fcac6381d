package io.quiver.runtime.onnxruntime;

import static io.quiver.runtime.onnxruntime.TestRepository.floatValues;
import static io.quiver.runtime.onnxruntime.TestRepository.floats;
import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The benchmark models load with their declared configs and compute finite outputs of the right shape. */
class BenchmarkModelsTest {
  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    ExampleModels.writeBenchmarkModels(root);
    ExampleModels.writeCnn16px(root);
    repo = new TestRepository(root);
  }

  @Test
  void mlp784_runsAtBatch3() {
    ModelConfig completed = repo.completed("mlp_784");
    assertThat(completed.getMaxBatchSize()).isEqualTo(64);
    try (ModelRunner runner = repo.runner("mlp_784")) {
      Tensor out = runner.run(new Tensor[] {floats("INPUT0", new long[] {3, 784}, ramp(3 * 784))}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(3, 10);
      assertFinite(floatValues(out));
    }
  }

  @Test
  void cnnSmall_runsAtBatch2() {
    ModelConfig completed = repo.completed("cnn_small");
    assertThat(completed.getInput(0).getDimsList()).containsExactly(3L, 64L, 64L);
    try (ModelRunner runner = repo.runner("cnn_small")) {
      Tensor out = runner.run(new Tensor[] {floats("INPUT0", new long[] {2, 3, 64, 64}, ramp(2 * 3 * 64 * 64))}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(2, 10);
      assertFinite(floatValues(out));
    }
  }

  @Test
  void cnn16px_runsAtBatch5() {
    ModelConfig completed = repo.completed("cnn_16px");
    assertThat(completed.getInput(0).getDimsList()).containsExactly(3L, 16L, 16L);
    try (ModelRunner runner = repo.runner("cnn_16px")) {
      Tensor out = runner.run(new Tensor[] {floats("INPUT0", new long[] {5, 3, 16, 16}, ramp(5 * 3 * 16 * 16))}, new int[] {0})[0];
      assertThat(out.shape()).containsExactly(5, 10);
      assertFinite(floatValues(out));
    }
  }

  private static void assertFinite(float[] values) {
    for (float value : values) {
      assertThat(value).isFinite();
    }
  }

  private static float[] ramp(int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (i % 255) / 255f;
    }
    return values;
  }
}
