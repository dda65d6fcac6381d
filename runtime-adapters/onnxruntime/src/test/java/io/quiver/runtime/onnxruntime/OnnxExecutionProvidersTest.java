package io.quiver.runtime.onnxruntime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OrtProvider;
import com.google.protobuf.TextFormat;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.proto.inference.ModelConfig;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;

/** Config → execution provider mapping, checked without a GPU: no ONNX Runtime session is created. */
class OnnxExecutionProvidersTest {
  static final InstanceSpec GPU_1 = new InstanceSpec("g", 0, InstanceSpec.Kind.GPU, 1);

  @Test
  void cpuInstance_getsNoProvider() {
    ModelConfig config = config("instance_group { kind: KIND_GPU gpus: [ 0 ] }");
    assertThat(OnnxExecutionProviders.forInstance(config, InstanceSpec.cpu(0))).isEmpty();
  }

  @Test
  void gpuInstance_getsCudaOnItsDevice() {
    ModelConfig config = config("instance_group { kind: KIND_GPU gpus: [ 1 ] count: 2 }");
    OnnxExecutionProviders.check(config);
    assertThat(OnnxExecutionProviders.forInstance(config, GPU_1))
        .containsExactly(new ExecutionProvider("cuda", 1, Map.of()));
  }

  @Test
  void tensorRtAccelerator_mapsTritonsParametersToOnnxRuntimesOptions_withCudaAsFallback() {
    ModelConfig config = config("""
        instance_group { kind: KIND_GPU gpus: [ 1 ] }
        optimization { execution_accelerators { gpu_execution_accelerator {
          name: "tensorrt"
          parameters { key: "precision_mode" value: "FP16" }
          parameters { key: "max_workspace_size_bytes" value: "1073741824" }
          parameters { key: "trt_engine_cache_enable" value: "true" }
          parameters { key: "trt_engine_cache_path" value: "/var/cache/quiver/trt" }
          parameters { key: "minimum_segment_size" value: "3" }
        } } }
        """);
    List<ExecutionProvider> providers = OnnxExecutionProviders.forInstance(config, GPU_1);

    assertThat(providers).extracting(ExecutionProvider::name).containsExactly("tensorrt", "cuda");
    assertThat(providers).extracting(ExecutionProvider::deviceId).containsOnly(1);
    assertThat(providers.get(0).options()).isEqualTo(Map.of(
        "trt_fp16_enable", "1",
        "trt_max_workspace_size", "1073741824",
        "trt_engine_cache_enable", "1",
        "trt_engine_cache_path", "/var/cache/quiver/trt",
        "trt_min_subgraph_size", "3"));
  }

  @Test
  void precisionModes_fp32SetsNothing_int8EnablesInt8() {
    assertThat(trt("precision_mode", "FP32")).isEmpty();
    assertThat(trt("precision_mode", "int8")).isEqualTo(Map.of("trt_int8_enable", "1"));
    assertThat(trt("int8_calibration_table_name", "calib.flatbuffers"))
        .isEqualTo(Map.of("trt_int8_calibration_table_name", "calib.flatbuffers"));
    assertInvalid(() -> trt("precision_mode", "FP8"), "precision_mode", "FP8", "FP32, FP16 or INT8");
  }

  @Test
  void badTensorRtParameters_areRejectedNamingTheKeyAndValue() {
    assertInvalid(() -> trt("max_workspace_size_bytes", "-1"), "max_workspace_size_bytes", "-1");
    assertInvalid(() -> trt("max_workspace_size_bytes", "0"), "max_workspace_size_bytes", "> 0");
    assertInvalid(() -> trt("trt_engine_cache_enable", "yes"), "trt_engine_cache_enable", "yes");
    assertInvalid(() -> trt("trt_engine_cache_path", "/tmp/x"), "trt_engine_cache_path", "trt_engine_cache_enable");
    assertInvalid(() -> trt("use_cuda_graph", "1"), "use_cuda_graph", "not a TensorRT option", "precision_mode");
  }

  @Test
  void cudaParameters_fromParametersOrTheCudaAccelerator_areMappedAndChecked() {
    ModelConfig config = config("""
        instance_group { kind: KIND_GPU }
        parameters { key: "gpu_mem_limit" value { string_value: "2147483648" } }
        parameters { key: "cudnn_conv_algo_search" value { string_value: "1" } }
        parameters { key: "arena_extend_strategy" value { string_value: "1" } }
        optimization { execution_accelerators { gpu_execution_accelerator {
          name: "cuda" parameters { key: "do_copy_in_default_stream" value: "true" } } } }
        """);
    assertThat(OnnxExecutionProviders.forInstance(config, GPU_1).get(0).options()).isEqualTo(Map.of(
        "gpu_mem_limit", "2147483648", "cudnn_conv_algo_search", "HEURISTIC",
        "arena_extend_strategy", "kSameAsRequested", "do_copy_in_default_stream", "1"));

    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "instance_group { kind: KIND_GPU } parameters { key: 'cudnn_conv_algo_search' value { string_value: '7' } }")),
        "cudnn_conv_algo_search", "7", "EXHAUSTIVE");
    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "instance_group { kind: KIND_GPU } optimization { execution_accelerators { gpu_execution_accelerator { "
            + "name: 'cuda' parameters { key: 'trt_fp16_enable' value: '1' } } } }")),
        "trt_fp16_enable", "not a CUDA option");
  }

  @Test
  void gpuSettingsWithoutAGpuInstanceGroup_areRejected() {
    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "optimization { execution_accelerators { gpu_execution_accelerator { name: 'tensorrt' } } }")),
        "gpu_execution_accelerator", "KIND_GPU");
    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "instance_group { kind: KIND_CPU } parameters { key: 'gpu_mem_limit' value { string_value: '100' } }")),
        "gpu_mem_limit", "KIND_GPU");
  }

  @Test
  void unknownOrCpuAccelerators_areRejected() {
    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "instance_group { kind: KIND_GPU } optimization { execution_accelerators { gpu_execution_accelerator { name: 'openvino' } } }")),
        "gpu_execution_accelerator[0].name", "openvino", "'tensorrt' or 'cuda'");
    assertInvalid(() -> OnnxExecutionProviders.check(config(
        "optimization { execution_accelerators { cpu_execution_accelerator { name: 'openvino' } } }")),
        "cpu_execution_accelerator", "openvino");
  }

  @Test
  void providersMissingFromTheBuild_failWithTheProviderDeviceAndRemedy() {
    List<ExecutionProvider> trtAndCuda = List.of(new ExecutionProvider("tensorrt", 1, Map.of()),
        new ExecutionProvider("cuda", 1, Map.of()));
    assertThatThrownBy(() -> OnnxRuntime.checkProvidersAvailable("m", GPU_1, trtAndCuda, EnumSet.of(OrtProvider.CPU)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION))
        .hasMessageContaining("model 'm'").hasMessageContaining("TensorRT").hasMessageContaining("GPU 1")
        .hasMessageContaining("-Pgpu");
    assertThatThrownBy(() -> OnnxRuntime.checkProvidersAvailable("m", GPU_1, trtAndCuda,
        EnumSet.of(OrtProvider.CPU, OrtProvider.CUDA))).hasMessageContaining("TensorRT");
    OnnxRuntime.checkProvidersAvailable("m", GPU_1, trtAndCuda,
        EnumSet.of(OrtProvider.CPU, OrtProvider.CUDA, OrtProvider.TENSOR_RT)); // no exception
  }

  static Map<String, String> trt(String key, String value) {
    return OnnxExecutionProviders.tensorRtOptions("m", "accelerator", Map.of(key, value));
  }

  static ModelConfig config(String text) {
    try {
      return TextFormat.parse("name: 'm' " + text, ModelConfig.class);
    } catch (TextFormat.ParseException e) {
      throw new AssertionError(e);
    }
  }

  static void assertInvalid(ThrowingCallable call, String... fragments) {
    var assertion = assertThatThrownBy(call).isInstanceOfSatisfying(InferenceException.class,
        e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    for (String fragment : fragments) {
      assertion.hasMessageContaining(fragment);
    }
  }
}
