package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOutput;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.proto.inference.ModelWarmup;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks the values of a ModelConfig once, at load: every problem is reported with the field and the
 * value ("max_batch_size must be >= 0; was -3"). Both declared configs (as parsed from config.pbtxt,
 * possibly partial) and completed configs pass through it. Stateless, thread-safe.
 */
public final class ModelConfigValidator {
  /** Most instances (summed over instance groups) one model version may ask for. */
  public static final int MAX_INSTANCES = 256;
  /** Most priority levels a dynamic batcher may be asked for. */
  public static final long MAX_PRIORITY_LEVELS = 1024;
  /** Most tensor dimensions accepted in a config. */
  public static final int MAX_DIMS = 32;

  private ModelConfigValidator() {}

  /**
   * @param modelName the model's directory name; the config's {@code name}, when set, must equal it
   *     (null skips that check)
   * @param source where the config came from, for the message (e.g. the file path)
   * @throws InferenceException INVALID_ARGUMENT listing every problem found
   */
  public static void validate(ModelConfig config, String modelName, String source) {
    List<String> problems = problems(config, modelName);
    if (!problems.isEmpty()) {
      throw InferenceException.invalidArgument("invalid model configuration %s: %s", source, String.join("; ", problems));
    }
  }

  /** Every problem of the config, in field order; empty when it is valid. */
  public static List<String> problems(ModelConfig config, String modelName) {
    List<String> out = new ArrayList<>();
    if (modelName != null && !config.getName().isEmpty() && !config.getName().equals(modelName)) {
      out.add("name must match the model directory name '" + modelName + "'; was '"
          + ModelNames.printable(config.getName()) + "'");
    }
    int maxBatch = config.getMaxBatchSize();
    if (maxBatch < 0) {
      out.add("max_batch_size must be >= 0; was " + maxBatch);
    }
    checkInputs(config, out);
    checkOutputs(config, out);
    checkVersionPolicy(config, out);
    if (config.hasDynamicBatching()) {
      checkDynamicBatching(config.getDynamicBatching(), maxBatch, out);
    }
    out.addAll(io.quiver.core.SequenceBatchingSpec.problems(config));
    checkInstanceGroups(config, out);
    String file = config.getDefaultModelFilename();
    if (!file.isEmpty() && !isPlainFileName(file)) {
      out.add("default_model_filename must be a plain file name inside the version directory; was '"
          + ModelNames.printable(file) + "'");
    }
    for (Map.Entry<String, ?> parameter : config.getParametersMap().entrySet()) {
      if (parameter.getKey().isEmpty()) {
        out.add("parameters must not have an empty key");
      }
    }
    for (int i = 0; i < config.getModelWarmupCount(); i++) {
      checkWarmup(config.getModelWarmup(i), i, maxBatch, out);
    }
    return out;
  }

  private static void checkInputs(ModelConfig config, List<String> out) {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < config.getInputCount(); i++) {
      ModelInput input = config.getInput(i);
      String where = tensorLabel("input", i, input.getName());
      if (input.getName().isEmpty()) {
        out.add("input[" + i + "].name must not be empty");
      } else if (!seen.add(input.getName())) {
        out.add("input name '" + input.getName() + "' is declared more than once");
      }
      checkDims(where + ".dims", input.getDimsList(), out);
      if (input.hasReshape()) {
        out.add(where + ".reshape is not supported");
      }
      if (input.getIsShapeTensor()) {
        out.add(where + ".is_shape_tensor is not supported");
      }
      if (input.getAllowRaggedBatch()) {
        out.add(where + ".allow_ragged_batch is not supported");
      }
    }
  }

  private static void checkOutputs(ModelConfig config, List<String> out) {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < config.getOutputCount(); i++) {
      ModelOutput output = config.getOutput(i);
      String where = tensorLabel("output", i, output.getName());
      if (output.getName().isEmpty()) {
        out.add("output[" + i + "].name must not be empty");
      } else if (!seen.add(output.getName())) {
        out.add("output name '" + output.getName() + "' is declared more than once");
      }
      checkDims(where + ".dims", output.getDimsList(), out);
      if (output.hasReshape()) {
        out.add(where + ".reshape is not supported");
      }
      if (output.getIsShapeTensor()) {
        out.add(where + ".is_shape_tensor is not supported");
      }
      String labels = output.getLabelFilename();
      if (!labels.isEmpty() && !isPlainFileName(labels)) {
        out.add(where + ".label_filename must be a plain file name in the model directory; was '"
            + ModelNames.printable(labels) + "'");
      }
    }
  }

  private static void checkDims(String where, List<Long> dims, List<String> out) {
    if (dims.size() > MAX_DIMS) {
      out.add(where + " must have at most " + MAX_DIMS + " dimensions; was " + dims.size());
      return;
    }
    for (int j = 0; j < dims.size(); j++) {
      long d = dims.get(j);
      if (d < 1 && d != -1) {
        out.add(where + "[" + j + "] must be >= 1, or -1 for a variable dimension; was " + d);
      }
    }
  }

  private static void checkVersionPolicy(ModelConfig config, List<String> out) {
    if (!config.hasVersionPolicy()) {
      return;
    }
    ModelVersionPolicy policy = config.getVersionPolicy();
    switch (policy.getPolicyChoiceCase()) {
      case LATEST -> {
        // uint32 on the wire: read it unsigned so that 4294967295 is not mistaken for -1.
        long n = Integer.toUnsignedLong(policy.getLatest().getNumVersions());
        if (n < 1) {
          out.add("version_policy.latest.num_versions must be >= 1; was " + n);
        }
      }
      case SPECIFIC -> {
        List<Long> versions = policy.getSpecific().getVersionsList();
        if (versions.isEmpty()) {
          out.add("version_policy.specific.versions must name at least one version");
        }
        for (long v : versions) {
          if (v < 0) {
            out.add("version_policy.specific.versions must be >= 0; was " + v);
          }
        }
      }
      case ALL, POLICYCHOICE_NOT_SET -> { }
    }
  }

  private static void checkDynamicBatching(ModelDynamicBatching batching, int maxBatch, List<String> out) {
    if (maxBatch == 0) {
      out.add("dynamic_batching requires max_batch_size > 0; was 0");
    }
    for (int size : batching.getPreferredBatchSizeList()) {
      if (size < 1) {
        out.add("dynamic_batching.preferred_batch_size must be >= 1; was " + size);
      } else if (maxBatch > 0 && size > maxBatch) {
        out.add("dynamic_batching.preferred_batch_size must be <= max_batch_size " + maxBatch + "; was " + size);
      }
    }
    long levels = batching.getPriorityLevels();
    long defaultLevel = batching.getDefaultPriorityLevel();
    // uint64 fields arrive as signed longs: compare unsigned so that a huge value is not read as negative.
    if (Long.compareUnsigned(levels, MAX_PRIORITY_LEVELS) > 0) {
      out.add("dynamic_batching.priority_levels must be <= " + MAX_PRIORITY_LEVELS + "; was "
          + Long.toUnsignedString(levels));
    } else if (levels == 0 && defaultLevel != 0) {
      out.add("dynamic_batching.default_priority_level must be 0 when priority_levels is 0; was "
          + Long.toUnsignedString(defaultLevel));
    } else if (levels > 0 && (defaultLevel < 1 || Long.compareUnsigned(defaultLevel, levels) > 0)) {
      out.add("dynamic_batching.default_priority_level must be between 1 and priority_levels " + levels + "; was "
          + Long.toUnsignedString(defaultLevel));
    }
    for (long level : batching.getPriorityQueuePolicyMap().keySet()) {
      if (level < 1 || Long.compareUnsigned(level, levels) > 0) {
        out.add("dynamic_batching.priority_queue_policy key must be between 1 and priority_levels " + levels
            + "; was " + Long.toUnsignedString(level));
      }
    }
  }

  private static void checkInstanceGroups(ModelConfig config, List<String> out) {
    long total = 0;
    for (int i = 0; i < config.getInstanceGroupCount(); i++) {
      ModelInstanceGroup group = config.getInstanceGroup(i);
      String where = "instance_group[" + i + "]";
      if (group.getCount() < 0) {
        out.add(where + ".count must be >= 0; was " + group.getCount());
      }
      for (int gpu : group.getGpusList()) {
        if (gpu < 0) {
          out.add(where + ".gpus must be >= 0; was " + gpu);
        }
      }
      switch (group.getKind()) {
        case KIND_CPU -> {
          if (group.getGpusCount() > 0) {
            out.add(where + ".gpus must be empty for KIND_CPU; was " + group.getGpusList());
          }
        }
        case KIND_MODEL -> out.add(where + ".kind KIND_MODEL is not supported");
        default -> { }
      }
      // Per Triton, count 0 means 1, and KIND_GPU places count instances on every listed GPU.
      long perDevice = Math.max(1, group.getCount());
      long devices = group.getKind() == ModelInstanceGroup.Kind.KIND_GPU ? Math.max(1, group.getGpusCount()) : 1;
      total += perDevice * devices;
    }
    if (total > MAX_INSTANCES) {
      out.add("instance_group asks for " + total + " instances in all; at most " + MAX_INSTANCES + " are allowed");
    }
  }

  private static void checkWarmup(ModelWarmup warmup, int i, int maxBatch, List<String> out) {
    String where = "model_warmup[" + i + "]";
    if (warmup.getName().isEmpty()) {
      out.add(where + ".name must not be empty");
    }
    long batch = Integer.toUnsignedLong(warmup.getBatchSize());
    if (batch > Math.max(1, maxBatch)) {
      out.add(where + ".batch_size must be <= " + Math.max(1, maxBatch) + "; was " + batch);
    }
    for (Map.Entry<String, ModelWarmup.Input> input : warmup.getInputsMap().entrySet()) {
      for (long d : input.getValue().getDimsList()) {
        if (d < 1) {
          out.add(where + ".inputs['" + input.getKey() + "'].dims must be >= 1; was " + d);
        }
      }
      String file = input.getValue().getInputDataFile();
      if (!file.isEmpty() && !isPlainFileName(file)) {
        out.add(where + ".inputs['" + input.getKey() + "'].input_data_file must be a plain file name; was '"
            + ModelNames.printable(file) + "'");
      }
    }
  }

  private static String tensorLabel(String kind, int index, String name) {
    return name.isEmpty() ? kind + "[" + index + "]" : kind + " '" + name + "'";
  }

  /** A name that resolves inside its directory: no separators, not "." or "..", no control characters. */
  static boolean isPlainFileName(String name) {
    if (name.isEmpty() || name.equals(".") || name.equals("..")) {
      return false;
    }
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '/' || c == '\\' || Character.isISOControl(c)) {
        return false;
      }
    }
    return true;
  }
}
