package io.quiver.runtime.onnxruntime;

import static io.quiver.runtime.onnxruntime.TestRepository.floatValues;
import static io.quiver.runtime.onnxruntime.TestRepository.floats;
import static io.quiver.runtime.onnxruntime.TestRepository.intValues;
import static io.quiver.runtime.onnxruntime.TestRepository.ints;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OrtProvider;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelParameter;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GPU instances on a machine without one (or with the CPU build), and CPU instances pinned to cores.
 * Runs everywhere; the tests that need a GPU are in {@link OnnxCudaTest}.
 */
class OnnxGpuAndPinningTest {
  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    ExampleModels.writeExampleRepository(root);
    repo = new TestRepository(root);
  }

  @Test
  void completeConfig_acceptsGpuInstanceGroupsAndTensorRt() {
    ModelConfig declared = repo.declared("simple").toBuilder()
        .addInstanceGroup(ModelInstanceGroup.newBuilder().setKind(ModelInstanceGroup.Kind.KIND_GPU).addGpus(0).addGpus(1).setCount(2))
        .build();
    ModelConfig completed = repo.runtime.completeConfig(declared, repo.modelFile("simple"));
    assertThat(completed.getInstanceGroup(0).getGpusList()).containsExactly(0, 1);
  }

  @Test
  void gpuInstanceWithoutGpuSupport_failsThatLoadWithAClearReason_andCpuModelsKeepRunning() {
    Assumptions.assumeFalse(OnnxRuntime.availableProviders().contains(OrtProvider.CUDA) && CudaAvailability.present(),
        "this machine can run CUDA instances");
    try (ModelRunner cpu = repo.runner("simple")) {
      ModelConfig gpuConfig = repo.declared("simple").toBuilder()
          .addInstanceGroup(ModelInstanceGroup.newBuilder().setKind(ModelInstanceGroup.Kind.KIND_GPU).addGpus(0)).build();
      ModelConfig completed = repo.runtime.completeConfig(gpuConfig, repo.modelFile("simple"));

      assertThatThrownBy(() -> repo.runtime.newRunner(completed, repo.modelFile("simple"),
          new InstanceSpec("simple_0", 0, InstanceSpec.Kind.GPU, 0)))
          .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION))
          .hasMessageContaining("model 'simple'").hasMessageContaining("CUDA").hasMessageContaining("GPU 0");

      // the failed load leaves the runtime and the other instance untouched
      int[] ones = new int[16];
      java.util.Arrays.fill(ones, 1);
      Tensor[] out = cpu.run(new Tensor[] {ints("INPUT0", new long[] {1, 16}, ones), ints("INPUT1", new long[] {1, 16}, ones)},
          new int[] {0});
      assertThat(intValues(out[0])).containsOnly(2);
      try (ModelRunner another = repo.runner("identity_fp32")) {
        float[] values = new float[16];
        for (int i = 0; i < 16; i++) {
          values[i] = i - 7.5f;
        }
        Tensor[] echoed = another.run(new Tensor[] {floats("INPUT0", new long[] {1, 16}, values)}, new int[] {0});
        assertThat(floatValues(echoed[0])).as("a new CPU runner loads and computes").containsExactly(values);
      }
    }
  }

  @Test
  void coreSets_parseLinuxCpuLists_andMapToOnnxRuntimeAffinities() {
    ModelConfig config = withParameter(repo.declared("simple"), "cpu_cores", "0-3; 4,6");
    OnnxSessionOptions options = OnnxSessionOptions.of(config);

    assertThat(options.coresFor(0)).containsExactly(0, 1, 2, 3);
    assertThat(options.coresFor(1)).containsExactly(4, 6);
    assertThat(options.coresFor(2)).containsExactly(0, 1, 2, 3); // cycles
    // thread 1 is the caller; threads 2..k get cores 2..k, numbered from 1 as ONNX Runtime wants
    assertThat(OnnxSessionOptions.affinityString(new int[] {0, 1, 2, 3})).isEqualTo("2;3;4");
    assertThat(OnnxSessionOptions.affinityString(new int[] {4, 6})).isEqualTo("7");
    assertThat(OnnxSessionOptions.affinityString(new int[] {5})).isEmpty();
    assertThat(OnnxSessionOptions.of(repo.declared("simple")).coresFor(0)).isNull();
  }

  @Test
  void coreSets_badValues_areInvalidArgumentNamingTheParameter() {
    for (String bad : new String[] {"", "a-b", "3-1", "0,0", "0;;1", "-1", "5000"}) {
      assertThatThrownBy(() -> OnnxSessionOptions.of(withParameter(repo.declared("simple"), "cpu_cores", bad)))
          .as(bad).isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
          .hasMessageContaining("cpu_cores");
    }
    ModelConfig mismatch = withParameter(withParameter(repo.declared("simple"), "cpu_cores", "0-1"), "intra_op_thread_count", "3");
    assertThatThrownBy(() -> OnnxSessionOptions.of(mismatch)).hasMessageContaining("intra_op_thread_count")
        .hasMessageContaining("2 cores");
  }

  @Test
  void pinnedCpuInstance_opensAndRuns() {
    int cores = Runtime.getRuntime().availableProcessors();
    String set = cores >= 2 ? "0-1" : "0";
    ModelConfig completed = repo.runtime.completeConfig(withParameter(repo.declared("simple"), "cpu_cores", set),
        repo.modelFile("simple"));
    try (ModelRunner runner = repo.runtime.newRunner(completed, repo.modelFile("simple"), InstanceSpec.cpu(0))) {
      int[] values = new int[16];
      java.util.Arrays.fill(values, 5);
      Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", new long[] {1, 16}, values),
          ints("INPUT1", new long[] {1, 16}, values)}, new int[] {0, 1});
      assertThat(intValues(out[0])).containsOnly(10);
      assertThat(intValues(out[1])).containsOnly(0);
    }
  }

  static ModelConfig withParameter(ModelConfig config, String key, String value) {
    return config.toBuilder().putParameters(key, ModelParameter.newBuilder().setStringValue(value).build()).build();
  }
}
