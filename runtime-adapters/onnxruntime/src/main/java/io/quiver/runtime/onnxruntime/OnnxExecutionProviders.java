package io.quiver.runtime.onnxruntime;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOptimizationPolicy.ExecutionAccelerators;
import io.quiver.proto.inference.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator;
import io.quiver.proto.inference.ModelParameter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which execution providers a model instance gets, from its config, with the names Triton's ONNX
 * Runtime backend uses. Pure functions of the config and the instance: no ONNX Runtime call, so the
 * mapping is tested on machines without a GPU.
 *
 * <ul>
 *   <li>A CPU instance gets none (ONNX Runtime's CPU provider).
 *   <li>A GPU instance on device {@code n} gets CUDA on {@code n}; with
 *       {@code optimization { execution_accelerators { gpu_execution_accelerator { name: "tensorrt" } } }}
 *       it gets TensorRT first and CUDA as the fallback for the nodes TensorRT does not take, both on
 *       {@code n}, as in Triton.
 *   <li>TensorRT parameters (Triton's names → ONNX Runtime's): {@code precision_mode} FP32 | FP16 |
 *       INT8 → {@code trt_fp16_enable} / {@code trt_int8_enable}; {@code max_workspace_size_bytes} →
 *       {@code trt_max_workspace_size}; {@code trt_engine_cache_enable}, {@code trt_engine_cache_path};
 *       {@code minimum_segment_size} → {@code trt_min_subgraph_size};
 *       {@code max_partition_iterations} → {@code trt_max_partition_iterations};
 *       {@code int8_calibration_table_name}, {@code int8_use_native_calibration_table} →
 *       {@code trt_int8_*}; {@code trt_timing_cache_enable}, {@code trt_timing_cache_path},
 *       {@code trt_layer_norm_fp32_fallback}, {@code trt_builder_optimization_level},
 *       {@code trt_force_sequential_engine_build} as named.
 *   <li>CUDA options, from the model's {@code parameters} (as in Triton) or from a
 *       {@code gpu_execution_accelerator { name: "cuda" }} (which wins): {@code gpu_mem_limit},
 *       {@code arena_extend_strategy} (0 kNextPowerOfTwo, 1 kSameAsRequested),
 *       {@code cudnn_conv_algo_search} (0 EXHAUSTIVE, 1 HEURISTIC, 2 DEFAULT),
 *       {@code do_copy_in_default_stream}, {@code cudnn_conv_use_max_workspace},
 *       {@code use_ep_level_unified_stream}.
 * </ul>
 * Anything else there (other accelerator names, CPU accelerators, unknown keys, bad values, GPU
 * settings on a model with no KIND_GPU instance group) is INVALID_ARGUMENT naming the field.
 *
 * <p>Stateless; thread-safe.
 */
final class OnnxExecutionProviders {
  /** Model-config parameters that configure the CUDA provider (Triton's ONNX Runtime backend keys). */
  static final Set<String> CUDA_PARAMETERS = Set.of("gpu_mem_limit", "arena_extend_strategy", "cudnn_conv_algo_search",
      "do_copy_in_default_stream", "cudnn_conv_use_max_workspace", "use_ep_level_unified_stream");

  /** TensorRT keys passed through unchanged (value checked as a flag, a non-empty path or an integer). */
  private static final Set<String> TRT_FLAGS = Set.of("trt_engine_cache_enable", "trt_timing_cache_enable",
      "trt_layer_norm_fp32_fallback", "trt_force_sequential_engine_build", "int8_use_native_calibration_table");
  private static final Set<String> TRT_PATHS = Set.of("trt_engine_cache_path", "trt_timing_cache_path",
      "int8_calibration_table_name");
  private static final Set<String> TRT_INTS = Set.of("max_workspace_size_bytes", "minimum_segment_size",
      "max_partition_iterations", "trt_builder_optimization_level");

  private OnnxExecutionProviders() {}

  /**
   * Checks every GPU setting of a config without regard to an instance.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field and value
   */
  static void check(ModelConfig config) {
    boolean hasGpuGroup = false;
    for (ModelInstanceGroup group : config.getInstanceGroupList()) {
      hasGpuGroup |= group.getKind() == ModelInstanceGroup.Kind.KIND_GPU;
    }
    String model = config.getName();
    ExecutionAccelerators accelerators = config.getOptimization().getExecutionAccelerators();
    if (accelerators.getCpuExecutionAcceleratorCount() > 0) {
      throw InferenceException.invalidArgument(
          "model '%s': optimization.execution_accelerators.cpu_execution_accelerator '%s' is not supported by the "
              + "onnxruntime runtime (only gpu_execution_accelerator 'tensorrt' and 'cuda')",
          model, accelerators.getCpuExecutionAccelerator(0).getName());
    }
    Set<String> cudaParameters = new TreeSet<>(config.getParametersMap().keySet());
    cudaParameters.retainAll(CUDA_PARAMETERS);
    if (!hasGpuGroup && (accelerators.getGpuExecutionAcceleratorCount() > 0 || !cudaParameters.isEmpty())) {
      throw InferenceException.invalidArgument(
          "model '%s': %s configures GPU execution, but no instance_group has kind KIND_GPU",
          model, accelerators.getGpuExecutionAcceleratorCount() > 0
              ? "optimization.execution_accelerators.gpu_execution_accelerator"
              : "parameters " + cudaParameters);
    }
    providers(config, 0);
  }

  /**
   * The providers for one instance, most preferred first; empty for a CPU instance.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field and value
   */
  static List<ExecutionProvider> forInstance(ModelConfig config, InstanceSpec instance) {
    if (instance.kind() != InstanceSpec.Kind.GPU) {
      return List.of();
    }
    if (instance.deviceId() < 0) {
      throw InferenceException.invalidArgument("model '%s': instance %d is a GPU instance with device id %d",
          config.getName(), instance.index(), instance.deviceId());
    }
    return providers(config, instance.deviceId());
  }

  private static List<ExecutionProvider> providers(ModelConfig config, int device) {
    String model = config.getName();
    Map<String, String> cuda = new LinkedHashMap<>();
    for (String key : CUDA_PARAMETERS) {
      ModelParameter parameter = config.getParametersMap().get(key);
      if (parameter != null) {
        cudaOption(model, "parameters['" + key + "']", key, parameter.getStringValue(), cuda);
      }
    }
    Map<String, String> tensorrt = null;
    List<Accelerator> accelerators = config.getOptimization().getExecutionAccelerators().getGpuExecutionAcceleratorList();
    for (int i = 0; i < accelerators.size(); i++) {
      Accelerator accelerator = accelerators.get(i);
      String where = "optimization.execution_accelerators.gpu_execution_accelerator[" + i + "]";
      switch (accelerator.getName()) {
        case ExecutionProvider.TENSORRT -> {
          if (tensorrt != null) {
            throw InferenceException.invalidArgument("model '%s': %s names 'tensorrt' a second time", model, where);
          }
          tensorrt = tensorRtOptions(model, where, accelerator.getParametersMap());
        }
        case ExecutionProvider.CUDA -> {
          for (Map.Entry<String, String> e : accelerator.getParametersMap().entrySet()) {
            if (!CUDA_PARAMETERS.contains(e.getKey())) {
              throw InferenceException.invalidArgument("model '%s': %s.parameters['%s'] is not a CUDA option (supported: %s)",
                  model, where, e.getKey(), new TreeSet<>(CUDA_PARAMETERS));
            }
            cudaOption(model, where + ".parameters['" + e.getKey() + "']", e.getKey(), e.getValue(), cuda);
          }
        }
        default -> throw InferenceException.invalidArgument(
            "model '%s': %s.name '%s' is not supported by the onnxruntime runtime (use 'tensorrt' or 'cuda')",
            model, where, accelerator.getName());
      }
    }
    List<ExecutionProvider> providers = new ArrayList<>(2);
    if (tensorrt != null) {
      providers.add(new ExecutionProvider(ExecutionProvider.TENSORRT, device, tensorrt));
    }
    providers.add(new ExecutionProvider(ExecutionProvider.CUDA, device, cuda));
    return providers;
  }

  /** Triton's TensorRT accelerator parameters → ONNX Runtime TensorRT provider options. */
  static Map<String, String> tensorRtOptions(String model, String where, Map<String, String> parameters) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String key : new TreeSet<>(parameters.keySet())) {
      String value = parameters.get(key).trim();
      String field = where + ".parameters['" + key + "']";
      if (key.equals("precision_mode")) {
        switch (value.toUpperCase(Locale.ROOT)) {
          case "FP32" -> { }
          case "FP16" -> out.put("trt_fp16_enable", "1");
          case "INT8" -> out.put("trt_int8_enable", "1");
          default -> throw InferenceException.invalidArgument("model '%s': %s must be FP32, FP16 or INT8; was \"%s\"",
              model, field, value);
        }
      } else if (TRT_FLAGS.contains(key)) {
        out.put(trtKey(key), flag(model, field, value));
      } else if (TRT_PATHS.contains(key)) {
        if (value.isEmpty()) {
          throw InferenceException.invalidArgument("model '%s': %s must not be empty", model, field);
        }
        out.put(trtKey(key), value);
      } else if (TRT_INTS.contains(key)) {
        long parsed = nonNegativeLong(model, field, value);
        if (key.equals("max_workspace_size_bytes") && parsed == 0) {
          throw InferenceException.invalidArgument("model '%s': %s must be > 0; was %s", model, field, value);
        }
        out.put(trtKey(key), Long.toString(parsed));
      } else {
        Set<String> supported = new TreeSet<>();
        supported.add("precision_mode");
        supported.addAll(TRT_FLAGS);
        supported.addAll(TRT_PATHS);
        supported.addAll(TRT_INTS);
        throw InferenceException.invalidArgument("model '%s': %s is not a TensorRT option (supported: %s)", model, field,
            supported);
      }
    }
    if (out.containsKey("trt_engine_cache_path") && !"1".equals(out.get("trt_engine_cache_enable"))) {
      throw InferenceException.invalidArgument(
          "model '%s': %s sets trt_engine_cache_path but not trt_engine_cache_enable: \"1\"; the path would be unused",
          model, where);
    }
    if (out.containsKey("trt_timing_cache_path") && !"1".equals(out.get("trt_timing_cache_enable"))) {
      throw InferenceException.invalidArgument(
          "model '%s': %s sets trt_timing_cache_path but not trt_timing_cache_enable: \"1\"; the path would be unused",
          model, where);
    }
    return out;
  }

  /** Triton's names for the few TensorRT keys that ONNX Runtime spells differently. */
  private static String trtKey(String tritonKey) {
    return switch (tritonKey) {
      case "max_workspace_size_bytes" -> "trt_max_workspace_size";
      case "minimum_segment_size" -> "trt_min_subgraph_size";
      case "max_partition_iterations" -> "trt_max_partition_iterations";
      case "int8_calibration_table_name" -> "trt_int8_calibration_table_name";
      case "int8_use_native_calibration_table" -> "trt_int8_use_native_calibration_table";
      default -> tritonKey;
    };
  }

  private static void cudaOption(String model, String field, String key, String rawValue, Map<String, String> out) {
    String value = rawValue.trim();
    switch (key) {
      case "gpu_mem_limit" -> {
        long bytes = nonNegativeLong(model, field, value);
        if (bytes == 0) {
          throw InferenceException.invalidArgument("model '%s': %s must be > 0 bytes; was %s", model, field, value);
        }
        out.put(key, Long.toString(bytes));
      }
      case "arena_extend_strategy" -> out.put(key, switch (value) {
        case "0", "kNextPowerOfTwo" -> "kNextPowerOfTwo";
        case "1", "kSameAsRequested" -> "kSameAsRequested";
        default -> throw InferenceException.invalidArgument(
            "model '%s': %s must be 0 (kNextPowerOfTwo) or 1 (kSameAsRequested); was \"%s\"", model, field, value);
      });
      case "cudnn_conv_algo_search" -> out.put(key, switch (value.toUpperCase(Locale.ROOT)) {
        case "0", "EXHAUSTIVE" -> "EXHAUSTIVE";
        case "1", "HEURISTIC" -> "HEURISTIC";
        case "2", "DEFAULT" -> "DEFAULT";
        default -> throw InferenceException.invalidArgument(
            "model '%s': %s must be 0 (EXHAUSTIVE), 1 (HEURISTIC) or 2 (DEFAULT); was \"%s\"", model, field, value);
      });
      default -> out.put(key, flag(model, field, value)); // the three on/off options
    }
  }

  private static String flag(String model, String field, String value) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "1", "true" -> "1";
      case "0", "false" -> "0";
      default -> throw InferenceException.invalidArgument("model '%s': %s must be 0, 1, true or false; was \"%s\"",
          model, field, value);
    };
  }

  private static long nonNegativeLong(String model, String field, String value) {
    try {
      long parsed = Long.parseLong(value);
      if (parsed >= 0) {
        return parsed;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw InferenceException.invalidArgument("model '%s': %s must be a non-negative integer; was \"%s\"", model, field,
        value);
  }
}
