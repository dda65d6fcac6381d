package io.quiver.runtime.onnxruntime;

import static io.quiver.runtime.onnxruntime.TestRepository.intValues;
import static io.quiver.runtime.onnxruntime.TestRepository.ints;
import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOptimizationPolicy;
import io.quiver.proto.inference.ModelOptimizationPolicy.ExecutionAccelerators;
import io.quiver.proto.inference.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs models on a real NVIDIA GPU through the CUDA and TensorRT providers. Skipped unless an NVIDIA
 * GPU is visible and the build is the GPU one ({@code ./mvnw -Pgpu -pl runtime-adapters/onnxruntime install}).
 */
@Tag("gpu")
@EnabledIf("io.quiver.runtime.onnxruntime.CudaAvailability#cuda")
class OnnxCudaTest {
  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    ExampleModels.writeExampleRepository(root);
    repo = new TestRepository(root);
  }

  @Test
  void simpleOnCuda_matchesValuesComputedInTheTest() {
    ModelConfig config = repo.declared("simple").toBuilder()
        .addInstanceGroup(ModelInstanceGroup.newBuilder().setKind(ModelInstanceGroup.Kind.KIND_GPU).addGpus(0)).build();
    checkSimple(repo.runtime.completeConfig(config, repo.modelFile("simple")));
  }

  @Test
  @EnabledIf("io.quiver.runtime.onnxruntime.CudaAvailability#tensorRt")
  void simpleOnTensorRtFp16_matchesValues_andWritesTheEngineCache(@TempDir Path cache) throws IOException {
    Accelerator trt = Accelerator.newBuilder().setName("tensorrt")
        .putParameters("precision_mode", "FP16")
        .putParameters("max_workspace_size_bytes", Long.toString(1L << 28))
        .putParameters("trt_engine_cache_enable", "1")
        .putParameters("trt_engine_cache_path", cache.toString()).build();
    ModelConfig config = repo.declared("simple").toBuilder()
        .addInstanceGroup(ModelInstanceGroup.newBuilder().setKind(ModelInstanceGroup.Kind.KIND_GPU).addGpus(0))
        .setOptimization(ModelOptimizationPolicy.newBuilder().setExecutionAccelerators(
            ExecutionAccelerators.newBuilder().addGpuExecutionAccelerator(trt))).build();
    checkSimple(repo.runtime.completeConfig(config, repo.modelFile("simple")));
    try (Stream<Path> files = Files.list(cache)) {
      assertThat(files.count()).as("TensorRT engine cache files").isPositive();
    }
  }

  private static void checkSimple(ModelConfig completed) {
    int batch = 4;
    int[] a = new int[batch * 16];
    int[] b = new int[batch * 16];
    Random random = new Random(7);
    for (int i = 0; i < a.length; i++) {
      a[i] = random.nextInt(1000);
      b[i] = random.nextInt(1000);
    }
    try (ModelRunner runner = repo.runtime.newRunner(completed, repo.modelFile("simple"),
        new InstanceSpec("gpu", 0, InstanceSpec.Kind.GPU, 0))) {
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", new long[] {batch, 16}, a),
          ints("INPUT1", new long[] {batch, 16}, b)}, new int[] {0, 1});
      int[] sum = intValues(out[0]);
      int[] difference = intValues(out[1]);
      for (int i = 0; i < a.length; i++) {
        assertThat(sum[i]).isEqualTo(a[i] + b[i]);
        assertThat(difference[i]).isEqualTo(a[i] - b[i]);
      }
    }
  }
}
