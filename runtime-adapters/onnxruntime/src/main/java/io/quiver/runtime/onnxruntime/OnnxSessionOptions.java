package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The ONNX Runtime session settings a model config asks for, parsed and checked once at load.
 *
 * <p>Config {@code parameters} read here use the Triton ONNX Runtime backend's names:
 * {@value #INTRA_OP_THREAD_COUNT} and {@value #INTER_OP_THREAD_COUNT} (0 = ONNX Runtime's default,
 * one per core), {@value #EXECUTION_MODE} (0 sequential, 1 parallel), {@value #ENABLE_MEM_ARENA},
 * {@value #ENABLE_MEM_PATTERN}; plus Quiver's {@value #ALLOW_SPINNING} (default "0"). Keys of the
 * Triton backend that only apply to GPUs are rejected; other keys are left to other components.
 * {@code optimization.graph.level} follows Triton: 0 = all optimizations (default), -1 = basic,
 * 1 = basic and extended, 2 = none.
 */
record OnnxSessionOptions(int intraOpThreads, int interOpThreads, boolean parallel, boolean allowSpinning,
    Boolean memArena, Boolean memPattern, OptLevel optLevel) {

  static final String INTRA_OP_THREAD_COUNT = "intra_op_thread_count";
  static final String INTER_OP_THREAD_COUNT = "inter_op_thread_count";
  static final String EXECUTION_MODE = "execution_mode";
  static final String ALLOW_SPINNING = "allow_spinning";
  static final String ENABLE_MEM_ARENA = "enable_mem_arena";
  static final String ENABLE_MEM_PATTERN = "enable_mem_pattern";

  /** Threads of one session's pools are capped: a typo like "800" must not start 800 spinning threads. */
  static final int MAX_THREADS = 1024;

  /** Triton ONNX Runtime backend parameters that configure GPU execution, which this runtime lacks. */
  private static final Set<String> GPU_ONLY_PARAMETERS = Set.of(
      "cudnn_conv_algo_search", "gpu_mem_limit", "arena_extend_strategy", "do_copy_in_default_stream",
      "cudnn_conv_use_max_workspace", "use_ep_level_unified_stream",
      "session.use_device_allocator_for_initializers");

  /**
   * Parses the settings of a config.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the parameter and its value
   */
  static OnnxSessionOptions of(ModelConfig config) {
    Map<String, ModelParameter> parameters = config.getParametersMap();
    for (String key : parameters.keySet()) {
      if (GPU_ONLY_PARAMETERS.contains(key)) {
        throw InferenceException.invalidArgument(
            "model '%s': parameters['%s'] configures GPU execution, which the onnxruntime runtime does not support",
            config.getName(), key);
      }
    }
    int intra = intParameter(config, INTRA_OP_THREAD_COUNT);
    int inter = intParameter(config, INTER_OP_THREAD_COUNT);
    int mode = intParameter(config, EXECUTION_MODE);
    if (mode > 1) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be 0 (sequential) or 1 (parallel); was %d",
          config.getName(), EXECUTION_MODE, mode);
    }
    Boolean spinning = boolParameter(config, ALLOW_SPINNING);
    return new OnnxSessionOptions(intra, inter, mode == 1, spinning != null && spinning,
        boolParameter(config, ENABLE_MEM_ARENA), boolParameter(config, ENABLE_MEM_PATTERN), optLevel(config));
  }

  /** Creates ONNX Runtime session options; the caller closes them after the session is built. */
  SessionOptions create() throws OrtException {
    SessionOptions options = new SessionOptions();
    try {
      options.setOptimizationLevel(optLevel);
      options.setExecutionMode(parallel ? ExecutionMode.PARALLEL : ExecutionMode.SEQUENTIAL);
      if (intraOpThreads > 0) {
        options.setIntraOpNumThreads(intraOpThreads);
      }
      if (interOpThreads > 0) {
        options.setInterOpNumThreads(interOpThreads);
      }
      // ONNX Runtime's pool threads spin between ops by default and then compete with the gRPC event
      // loops for the cores (NOTES.md: ≈0.3 core freed, 18-27% slower at batch 1 when off). Off unless asked.
      String spin = allowSpinning ? "1" : "0";
      options.addConfigEntry("session.intra_op.allow_spinning", spin);
      options.addConfigEntry("session.inter_op.allow_spinning", spin);
      if (memArena != null) {
        options.setCPUArenaAllocator(memArena);
      }
      if (memPattern != null) {
        options.setMemoryPatternOptimization(memPattern);
      }
      return options;
    } catch (OrtException | RuntimeException e) {
      options.close();
      throw e;
    }
  }

  private static OptLevel optLevel(ModelConfig config) {
    if (!config.hasOptimization() || !config.getOptimization().hasGraph()) {
      return OptLevel.ALL_OPT;
    }
    int level = config.getOptimization().getGraph().getLevel();
    switch (level) {
      case 0: return OptLevel.ALL_OPT;
      case -1: return OptLevel.BASIC_OPT;
      case 1: return OptLevel.EXTENDED_OPT;
      case 2: return OptLevel.NO_OPT;
      default:
        throw InferenceException.invalidArgument(
            "model '%s': optimization.graph.level must be -1 (basic), 0 (all), 1 (extended) or 2 (none); was %d",
            config.getName(), level);
    }
  }

  private static int intParameter(ModelConfig config, String key) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return 0;
    }
    String value = parameter.getStringValue().trim();
    int parsed;
    try {
      parsed = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be an integer; was \"%s\"",
          config.getName(), key, value);
    }
    if (parsed < 0 || parsed > MAX_THREADS) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be between 0 and %d; was %d",
          config.getName(), key, MAX_THREADS, parsed);
    }
    return parsed;
  }

  private static Boolean boolParameter(ModelConfig config, String key) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return null;
    }
    String value = parameter.getStringValue().trim().toLowerCase(Locale.ROOT);
    switch (value) {
      case "1": case "true": return Boolean.TRUE;
      case "0": case "false": return Boolean.FALSE;
      default:
        throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be 0, 1, true or false; was \"%s\"",
            config.getName(), key, parameter.getStringValue());
    }
  }
}
