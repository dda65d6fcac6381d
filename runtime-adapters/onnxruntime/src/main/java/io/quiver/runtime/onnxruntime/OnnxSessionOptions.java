package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import ai.onnxruntime.providers.OrtCUDAProviderOptions;
import ai.onnxruntime.providers.OrtTensorRTProviderOptions;
import io.quiver.core.InferenceException;
import io.quiver.core.runtime.ModelParameters;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The ONNX Runtime session settings a model config asks for, parsed and checked once at load.
 *
 * <p>Config {@code parameters} read here use the Triton ONNX Runtime backend's names:
 * {@value #INTRA_OP_THREAD_COUNT} and {@value #INTER_OP_THREAD_COUNT} (0 = ONNX Runtime's default,
 * one per core), {@value #EXECUTION_MODE} (0 sequential, 1 parallel), {@value #ENABLE_MEM_ARENA},
 * {@value #ENABLE_MEM_PATTERN}; plus Quiver's {@value #ALLOW_SPINNING} (default "0") and
 * {@value #CPU_CORES}. The Triton backend's CUDA keys are read by {@link OnnxExecutionProviders}
 * (only for models with KIND_GPU instances); other keys are left to other components.
 *
 * <p>{@value #CPU_CORES}: core sets separated by {@code ;}, each a Linux CPU list ({@code "0-3"},
 * {@code "4,6"}; 0-based, as {@code taskset -c} and {@code /proc/cpuinfo} number them). CPU
 * instance {@code i} of the model uses set {@code i mod n}: its intra-op pool gets one thread per
 * core of the set, and ONNX Runtime pins the pool's threads 2..k to cores 2..k of the set
 * ({@code session.intra_op_thread_affinities}). Thread 1 is the calling thread, Quiver's instance
 * worker, which ONNX Runtime does not pin and Java cannot pin without native code: it runs wherever
 * the OS schedules it.
 * {@code optimization.graph.level} follows Triton: 0 = all optimizations (default), -1 = basic,
 * 1 = basic and extended, 2 = none.
 */
record OnnxSessionOptions(int intraOpThreads, int interOpThreads, boolean parallel, boolean allowSpinning,
    Boolean memArena, Boolean memPattern, OptLevel optLevel, List<int[]> cpuCoreSets) {

  static final String INTRA_OP_THREAD_COUNT = "intra_op_thread_count";
  static final String INTER_OP_THREAD_COUNT = "inter_op_thread_count";
  static final String EXECUTION_MODE = "execution_mode";
  static final String ALLOW_SPINNING = "allow_spinning";
  static final String ENABLE_MEM_ARENA = "enable_mem_arena";
  static final String ENABLE_MEM_PATTERN = "enable_mem_pattern";
  static final String CPU_CORES = "cpu_cores";
  /** ONNX Runtime's session config key for the intra-op pool's thread affinities. */
  static final String INTRA_OP_THREAD_AFFINITIES = "session.intra_op_thread_affinities";
  /** Highest core number accepted in {@value #CPU_CORES}; a guard against typos, not a hardware limit. */
  static final int MAX_CORE_ID = 4095;

  /** Threads of one session's pools are capped: a typo like "800" must not start 800 spinning threads. */
  static final int MAX_THREADS = 1024;

  /** Triton ONNX Runtime backend parameters this runtime does not implement. */
  private static final Set<String> UNSUPPORTED_PARAMETERS = Set.of("session.use_device_allocator_for_initializers");

  /**
   * Parses the settings of a config.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the parameter and its value
   */
  static OnnxSessionOptions of(ModelConfig config) {
    Map<String, ModelParameter> parameters = config.getParametersMap();
    for (String key : parameters.keySet()) {
      if (UNSUPPORTED_PARAMETERS.contains(key)) {
        throw InferenceException.invalidArgument(
            "model '%s': parameters['%s'] is not supported by the onnxruntime runtime", config.getName(), key);
      }
    }
    int intra = intParameter(config, INTRA_OP_THREAD_COUNT);
    int inter = intParameter(config, INTER_OP_THREAD_COUNT);
    int mode = intParameter(config, EXECUTION_MODE);
    if (mode > 1) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be 0 (sequential) or 1 (parallel); was %d",
          config.getName(), EXECUTION_MODE, mode);
    }
    Boolean spinning = ModelParameters.boolValue(config, ALLOW_SPINNING);
    List<int[]> cores = coreSets(config);
    for (int[] set : cores) {
      if (intra > 0 && intra != set.length) {
        throw InferenceException.invalidArgument(
            "model '%s': parameters['%s'] is %d but parameters['%s'] gives a set of %d cores; set one thread per core or leave %s out",
            config.getName(), INTRA_OP_THREAD_COUNT, intra, CPU_CORES, set.length, INTRA_OP_THREAD_COUNT);
      }
    }
    return new OnnxSessionOptions(intra, inter, mode == 1, spinning != null && spinning,
        ModelParameters.boolValue(config, ENABLE_MEM_ARENA), ModelParameters.boolValue(config, ENABLE_MEM_PATTERN), optLevel(config), cores);
  }

  @Override
  public String toString() {
    StringBuilder cores = new StringBuilder();
    for (int[] set : cpuCoreSets) {
      cores.append(cores.length() == 0 ? "" : ";").append(java.util.Arrays.toString(set));
    }
    return "OnnxSessionOptions[intraOpThreads=" + intraOpThreads + ", interOpThreads=" + interOpThreads + ", parallel="
        + parallel + ", allowSpinning=" + allowSpinning + ", memArena=" + memArena + ", memPattern=" + memPattern
        + ", optLevel=" + optLevel + ", cpuCores=" + (cores.length() == 0 ? "none" : cores) + "]";
  }

  /** The cores of CPU instance {@code index}, or null when the config pins nothing. */
  int[] coresFor(int index) {
    return cpuCoreSets.isEmpty() ? null : cpuCoreSets.get(Math.floorMod(index, cpuCoreSets.size()));
  }

  /**
   * ONNX Runtime's affinity string for a core set: threads 2..k of the intra-op pool, one core each,
   * as 1-based logical processor ids separated by ';' (thread 1 is the caller, which ONNX Runtime
   * leaves alone). Empty for a one-core set.
   */
  static String affinityString(int[] cores) {
    StringBuilder out = new StringBuilder();
    for (int i = 1; i < cores.length; i++) {
      if (i > 1) {
        out.append(';');
      }
      out.append(cores[i] + 1); // ONNX Runtime numbers logical processors from 1
    }
    return out.toString();
  }

  /**
   * Creates ONNX Runtime session options for one instance: the settings of the config, the core pinning
   * of a CPU instance, and the execution providers of a GPU instance (added in order, before ONNX
   * Runtime's implicit CPU fallback). The caller closes the returned options (and with them the
   * provider options) after the session is built.
   *
   * @throws OrtException when ONNX Runtime refuses a setting or cannot create a provider
   */
  SessionOptions create(InstanceSpec instance, List<ExecutionProvider> providers) throws OrtException {
    SessionOptions options = create();
    List<AutoCloseable> providerOptions = new ArrayList<>(providers.size());
    try {
      int[] cores = instance.kind() == InstanceSpec.Kind.CPU ? coresFor(instance.index()) : null;
      if (cores != null) {
        options.setIntraOpNumThreads(cores.length);
        if (cores.length > 1) {
          options.addConfigEntry(INTRA_OP_THREAD_AFFINITIES, affinityString(cores));
        }
      }
      for (ExecutionProvider provider : providers) {
        switch (provider.name()) {
          case ExecutionProvider.TENSORRT -> {
            OrtTensorRTProviderOptions trt = new OrtTensorRTProviderOptions(provider.deviceId());
            providerOptions.add(trt);
            for (Map.Entry<String, String> e : provider.options().entrySet()) {
              trt.add(e.getKey(), e.getValue());
            }
            options.addTensorrt(trt);
          }
          case ExecutionProvider.CUDA -> {
            OrtCUDAProviderOptions cuda = new OrtCUDAProviderOptions(provider.deviceId());
            providerOptions.add(cuda);
            for (Map.Entry<String, String> e : provider.options().entrySet()) {
              cuda.add(e.getKey(), e.getValue());
            }
            options.addCUDA(cuda);
          }
          default -> throw new IllegalArgumentException("unknown execution provider " + provider.name());
        }
      }
      return options;
    } catch (OrtException | RuntimeException e) {
      options.close();
      throw e;
    } finally {
      // ONNX Runtime copies provider options into the session options when they are appended.
      for (AutoCloseable o : providerOptions) {
        try {
          o.close();
        } catch (Exception ignored) {
          // closing a native options struct does not fail in practice; nothing to recover
        }
      }
    }
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

  /** Parses {@value #CPU_CORES}: "0-3;4-7" → [[0,1,2,3],[4,5,6,7]]. */
  static List<int[]> coreSets(ModelConfig config) {
    ModelParameter parameter = config.getParametersMap().get(CPU_CORES);
    if (parameter == null) {
      return List.of();
    }
    String value = parameter.getStringValue().trim();
    List<int[]> sets = new ArrayList<>();
    for (String set : value.split(";", -1)) {
      TreeSet<Integer> cores = new TreeSet<>();
      for (String item : set.trim().split(",", -1)) {
        String range = item.trim();
        int dash = range.indexOf('-');
        int first = coreId(config, value, dash < 0 ? range : range.substring(0, dash));
        int last = dash < 0 ? first : coreId(config, value, range.substring(dash + 1));
        if (last < first) {
          throw InferenceException.invalidArgument("model '%s': parameters['%s'] has the empty range \"%s\" in \"%s\"",
              config.getName(), CPU_CORES, range, value);
        }
        for (int core = first; core <= last; core++) {
          if (!cores.add(core)) {
            throw InferenceException.invalidArgument("model '%s': parameters['%s'] lists core %d twice in one set: \"%s\"",
                config.getName(), CPU_CORES, core, value);
          }
        }
      }
      if (cores.size() > MAX_THREADS) {
        throw InferenceException.invalidArgument("model '%s': parameters['%s'] has a set of %d cores; at most %d",
            config.getName(), CPU_CORES, cores.size(), MAX_THREADS);
      }
      sets.add(cores.stream().mapToInt(Integer::intValue).toArray());
    }
    return List.copyOf(sets);
  }

  private static int coreId(ModelConfig config, String value, String text) {
    try {
      int id = Integer.parseInt(text.trim());
      if (id >= 0 && id <= MAX_CORE_ID) {
        return id;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw InferenceException.invalidArgument(
        "model '%s': parameters['%s'] must be core sets like \"0-3;4-7\" (0-based core numbers up to %d, sets separated by ';'); was \"%s\"",
        config.getName(), CPU_CORES, MAX_CORE_ID, value);
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
    return ModelParameters.intValue(config, key, 0, 0, MAX_THREADS);
  }
}
