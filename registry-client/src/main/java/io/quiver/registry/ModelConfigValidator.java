package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.core.SchedulingRules;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelEnsembling;
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
  /** Most tensor dimensions accepted in a config. */
  public static final int MAX_DIMS = 32;
  /** The platform of an ensemble (Triton's): its steps run other models; it has no model file. */
  public static final String ENSEMBLE_PLATFORM = "ensemble";
  /** Most steps one ensemble may have. */
  public static final int MAX_ENSEMBLE_STEPS = 64;

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
    // max_batch_size, dynamic_batching and the quiver.* scheduling parameters: the batcher's own rules.
    out.addAll(SchedulingRules.problems(config));
    checkInputs(config, out);
    checkOutputs(config, out);
    checkVersionPolicy(config, out);
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
    checkEnsemble(config, modelName, out);
    return out;
  }

  /** Whether the config describes an ensemble (platform "ensemble" or an ensemble_scheduling block). */
  public static boolean isEnsemble(ModelConfig config) {
    return ENSEMBLE_PLATFORM.equals(config.getPlatform()) || config.hasEnsembleScheduling();
  }

  /**
   * What an ensemble config must say on its own (the graph against its step models is checked at load,
   * when they are known): platform and ensemble_scheduling together, complete inputs and outputs (nothing
   * can fill them in), no fields about instances or files, and well-formed steps.
   */
  private static void checkEnsemble(ModelConfig config, String modelName, List<String> out) {
    boolean platform = ENSEMBLE_PLATFORM.equals(config.getPlatform());
    if (!platform && !config.hasEnsembleScheduling()) {
      return;
    }
    if (!platform) {
      out.add("ensemble_scheduling needs platform \"ensemble\"; was '" + ModelNames.printable(config.getPlatform()) + "'");
    } else if (!config.hasEnsembleScheduling()) {
      out.add("platform \"ensemble\" needs an ensemble_scheduling block with its steps");
    }
    if (!config.getBackend().isEmpty()) {
      out.add("backend must be empty for an ensemble; was '" + ModelNames.printable(config.getBackend()) + "'");
    }
    if (config.getInstanceGroupCount() > 0) {
      out.add("instance_group is not allowed for an ensemble: its steps run on their own models' instances");
    }
    if (config.getModelWarmupCount() > 0) {
      out.add("model_warmup is not allowed for an ensemble (warm up its step models instead)");
    }
    if (!config.getDefaultModelFilename().isEmpty()) {
      out.add("default_model_filename is not allowed for an ensemble: it has no model file");
    }
    if (config.hasOptimization()) {
      out.add("optimization is not allowed for an ensemble");
    }
    if (config.getInputCount() == 0) {
      out.add("an ensemble must declare its inputs");
    }
    if (config.getOutputCount() == 0) {
      out.add("an ensemble must declare its outputs");
    }
    Set<String> inputNames = new HashSet<>();
    for (ModelInput input : config.getInputList()) {
      inputNames.add(input.getName());
      if (input.getDataType() == io.quiver.proto.inference.DataType.TYPE_INVALID) {
        out.add(tensorLabel("input", 0, input.getName()) + ".data_type must be set for an ensemble");
      }
    }
    for (ModelOutput output : config.getOutputList()) {
      if (output.getDataType() == io.quiver.proto.inference.DataType.TYPE_INVALID) {
        out.add(tensorLabel("output", 0, output.getName()) + ".data_type must be set for an ensemble");
      }
      if (inputNames.contains(output.getName())) {
        out.add("ensemble tensor '" + output.getName() + "' is both an input and an output of the ensemble");
      }
    }
    if (!config.hasEnsembleScheduling()) {
      return;
    }
    List<ModelEnsembling.Step> steps = config.getEnsembleScheduling().getStepList();
    if (steps.isEmpty()) {
      out.add("ensemble_scheduling must have at least one step");
    } else if (steps.size() > MAX_ENSEMBLE_STEPS) {
      out.add("ensemble_scheduling has " + steps.size() + " steps; at most " + MAX_ENSEMBLE_STEPS + " are allowed");
    }
    for (int i = 0; i < steps.size(); i++) {
      ModelEnsembling.Step step = steps.get(i);
      String where = "ensemble_scheduling.step[" + i + "]";
      String problem = ModelNames.problem(step.getModelName());
      if (step.getModelName().isEmpty()) {
        out.add(where + ".model_name must not be empty");
      } else if (problem != null) {
        out.add(where + ".model_name: " + problem);
      } else if (step.getModelName().equals(modelName) || step.getModelName().equals(config.getName())) {
        out.add(where + ".model_name must not be the ensemble itself ('" + step.getModelName() + "')");
      }
      if (step.getModelVersion() < -1) {
        out.add(where + ".model_version must be -1 (the routed version) or a version number; was " + step.getModelVersion());
      }
      if (step.getInputMapCount() == 0) {
        out.add(where + ".input_map must map at least one input of model '" + step.getModelName() + "'");
      }
      if (step.getOutputMapCount() == 0) {
        out.add(where + ".output_map must map at least one output of model '" + step.getModelName() + "'");
      }
      checkTensorMap(where + ".input_map", step.getInputMapMap(), out);
      checkTensorMap(where + ".output_map", step.getOutputMapMap(), out);
    }
  }

  private static void checkTensorMap(String where, Map<String, String> map, List<String> out) {
    for (Map.Entry<String, String> e : map.entrySet()) {
      if (e.getKey().isEmpty() || e.getValue().isEmpty()) {
        out.add(where + " must not have an empty tensor name; was '" + ModelNames.printable(e.getKey()) + "' -> '"
            + ModelNames.printable(e.getValue()) + "'");
      }
    }
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
