package io.quiver.core.runtime;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOutput;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Completes a declared model config from what the model itself says, following Triton's
 * auto-complete, and checks the declared parts against the model. Runtime-neutral: a runtime
 * describes its model's inputs and outputs as {@link ModelTensor}s and gets the completed config.
 *
 * <ul>
 *   <li>Inputs and outputs the config leaves out are added (declared ones first, in declared order,
 *       then the rest in model order); a missing {@code data_type} or empty {@code dims} is filled in;
 *       an empty {@code platform} or {@code backend} is set to the runtime's.
 *   <li>Batching: when {@code max_batch_size} is 0 or absent, every model input and output has a
 *       variable first dimension, and no declared dims spell out that first dimension, the model
 *       batches with the runtime's default max batch size (Triton's default-max-batch-size). Dims
 *       exclude the batch dimension whenever the model batches. A declared {@code max_batch_size > 0}
 *       on a model with a fixed first dimension is an error.
 *   <li>As in Triton, a batching model (max_batch_size &gt; 1) with no scheduler gets an empty
 *       {@code dynamic_batching}.
 *   <li>Declared names the model lacks, datatypes that differ, and dims that contradict fixed model
 *       dims are INVALID_ARGUMENT errors naming the model, the tensor and both values.
 * </ul>
 *
 * <p>{@link #checkSupported} makes the checks every runtime shares (platform and backend, {@code
 * max_batch_size ≥ 0}, instance counts, and the tensor features no runtime implements: {@code
 * reshape}, {@code is_shape_tensor}, {@code allow_ragged_batch}). A runtime adds its own by
 * overriding {@link #checkInstanceGroup} (device kinds) and {@link #checkRuntimeSettings}
 * (optimization, parameters).
 *
 * <p>Thread-safe when the subclass is (this class is immutable): pure functions of their arguments.
 */
public class ConfigCompleter {
  private final String runtime;
  private final String platform;
  private final String backend;
  private final int defaultMaxBatchSize;

  /**
   * @param runtime the runtime's name, used in messages ("onnxruntime")
   * @param platform the platform it serves and writes into completed configs ("onnxruntime_onnx")
   * @param backend the backend it serves and writes into completed configs ("onnxruntime")
   * @param defaultMaxBatchSize max_batch_size given to a batchable model whose config says nothing about batching
   */
  public ConfigCompleter(String runtime, String platform, String backend, int defaultMaxBatchSize) {
    this.runtime = Objects.requireNonNull(runtime, "runtime");
    this.platform = Objects.requireNonNull(platform, "platform");
    this.backend = Objects.requireNonNull(backend, "backend");
    if (defaultMaxBatchSize < 1) {
      throw new IllegalArgumentException("defaultMaxBatchSize must be ≥ 1; was " + defaultMaxBatchSize);
    }
    this.defaultMaxBatchSize = defaultMaxBatchSize;
  }

  /**
   * The declared config, named after the model directory when it has no name:
   * {@code <repo>/<model>/<version>/<model file>} → {@code <model>}.
   */
  public static ModelConfig withModelName(ModelConfig declared, Path modelFile) {
    if (!declared.getName().isEmpty()) {
      return declared;
    }
    Path versionDir = modelFile.toAbsolutePath().getParent();
    Path modelDir = versionDir == null ? null : versionDir.getParent();
    String name = modelDir == null || modelDir.getFileName() == null
        ? modelFile.toString()
        : modelDir.getFileName().toString();
    return declared.toBuilder().setName(name).build();
  }

  /**
   * Rejects config fields this runtime does not implement; each message names the field. Cheap:
   * call it before opening the model file.
   *
   * @throws InferenceException INVALID_ARGUMENT
   */
  public final void checkSupported(ModelConfig config) {
    String model = config.getName();
    if (!config.getPlatform().isEmpty() && !config.getPlatform().equals(platform)) {
      throw InferenceException.invalidArgument("model '%s': platform \"%s\" is not served by the %s runtime (expected \"%s\")",
          model, config.getPlatform(), runtime, platform);
    }
    if (!config.getBackend().isEmpty() && !config.getBackend().equals(backend)) {
      throw InferenceException.invalidArgument("model '%s': backend \"%s\" is not served by the %s runtime (expected \"%s\")",
          model, config.getBackend(), runtime, backend);
    }
    if (config.getMaxBatchSize() < 0) {
      throw InferenceException.invalidArgument("model '%s': max_batch_size must be ≥ 0; was %d", model, config.getMaxBatchSize());
    }
    for (int i = 0; i < config.getInstanceGroupCount(); i++) {
      ModelInstanceGroup group = config.getInstanceGroup(i);
      checkInstanceGroup(model, i, group);
      if (group.getCount() < 0) {
        throw InferenceException.invalidArgument("model '%s': instance_group[%d].count must be ≥ 0; was %d",
            model, i, group.getCount());
      }
    }
    for (ModelInput input : config.getInputList()) {
      String field = "input '" + input.getName() + "'";
      if (input.hasReshape()) {
        throw unsupported(model, field, "reshape");
      }
      if (input.getIsShapeTensor()) {
        throw unsupported(model, field, "is_shape_tensor");
      }
      if (input.getAllowRaggedBatch()) {
        throw unsupported(model, field, "allow_ragged_batch");
      }
    }
    for (ModelOutput output : config.getOutputList()) {
      String field = "output '" + output.getName() + "'";
      if (output.hasReshape()) {
        throw unsupported(model, field, "reshape");
      }
      if (output.getIsShapeTensor()) {
        throw unsupported(model, field, "is_shape_tensor");
      }
    }
    checkRuntimeSettings(config);
  }

  /**
   * The runtime's checks of one {@code instance_group} (which kinds and devices it can run), made
   * before its count is checked. Does nothing unless overridden.
   *
   * @throws InferenceException INVALID_ARGUMENT naming {@code instance_group[index]}
   */
  protected void checkInstanceGroup(String model, int index, ModelInstanceGroup group) {}

  /**
   * The runtime's checks of its own settings ({@code optimization}, {@code parameters}), made last.
   * Does nothing unless overridden.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field
   */
  protected void checkRuntimeSettings(ModelConfig config) {}

  /**
   * Returns the completed config (after {@link #checkSupported}).
   *
   * @param declared the config as declared (may hold only the name)
   * @param modelInputs the model's inputs, in model order
   * @param modelOutputs the model's outputs, in model order
   * @throws InferenceException INVALID_ARGUMENT when the declared config is unsupported or contradicts the model
   */
  public ModelConfig complete(ModelConfig declared, List<ModelTensor> modelInputs, List<ModelTensor> modelOutputs) {
    checkSupported(declared);
    String model = declared.getName();
    Map<String, ModelTensor> inputsByName = byName(modelInputs);
    Map<String, ModelTensor> outputsByName = byName(modelOutputs);
    List<String> inputNames = new ArrayList<>();
    for (ModelInput input : declared.getInputList()) {
      inputNames.add(input.getName());
    }
    List<String> outputNames = new ArrayList<>();
    for (ModelOutput output : declared.getOutputList()) {
      outputNames.add(output.getName());
    }
    checkNames(model, "input", inputNames, inputsByName);
    checkNames(model, "output", outputNames, outputsByName);

    int maxBatchSize = maxBatchSize(declared, modelInputs, modelOutputs, inputsByName, outputsByName);
    boolean batches = maxBatchSize > 0;

    ModelConfig.Builder completed = declared.toBuilder().clearInput().clearOutput().setMaxBatchSize(maxBatchSize);
    if (completed.getPlatform().isEmpty()) {
      completed.setPlatform(platform);
    }
    if (completed.getBackend().isEmpty()) {
      completed.setBackend(backend);
    }

    for (ModelInput input : declared.getInputList()) {
      ModelTensor tensor = inputsByName.get(input.getName());
      completed.addInput(input.toBuilder()
          .setDataType(checkType(model, "input", input.getName(), input.getDataType(), tensor))
          .clearDims().addAllDims(checkDims(model, "input", input.getName(), input.getDimsList(), tensor, batches)));
    }
    // The sequence batcher's inputs and state outputs stay out of the config's lists (as in Triton):
    // they must be in the model with the configured types, and the client never sees them.
    checkSequenceTensors(declared, inputsByName, outputsByName, inputNames, outputNames);
    Set<String> declaredInputs = new HashSet<>(inputNames);
    declaredInputs.addAll(io.quiver.core.SequenceBatchingSpec.serverInputNames(declared));
    for (ModelTensor tensor : modelInputs) {
      if (declaredInputs.add(tensor.name())) {
        completed.addInput(ModelInput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    for (ModelOutput output : declared.getOutputList()) {
      ModelTensor tensor = outputsByName.get(output.getName());
      completed.addOutput(output.toBuilder()
          .setDataType(checkType(model, "output", output.getName(), output.getDataType(), tensor))
          .clearDims().addAllDims(checkDims(model, "output", output.getName(), output.getDimsList(), tensor, batches)));
    }
    Set<String> declaredOutputs = new HashSet<>(outputNames);
    declaredOutputs.addAll(io.quiver.core.SequenceBatchingSpec.serverOutputNames(declared));
    for (ModelTensor tensor : modelOutputs) {
      if (declaredOutputs.add(tensor.name())) {
        completed.addOutput(ModelOutput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    if (maxBatchSize > 1 && !declared.hasDynamicBatching() && !declared.hasSequenceBatching()) {
      completed.setDynamicBatching(ModelDynamicBatching.getDefaultInstance());
    }
    return completed.build();
  }

  private int maxBatchSize(ModelConfig declared, List<ModelTensor> inputs, List<ModelTensor> outputs,
      Map<String, ModelTensor> inputsByName, Map<String, ModelTensor> outputsByName) {
    ModelTensor fixedFirst = firstWithoutBatchDim(inputs, outputs);
    if (declared.getMaxBatchSize() > 0) {
      if (fixedFirst != null) {
        throw InferenceException.invalidArgument(
            "model '%s': max_batch_size is %d but the model cannot batch: '%s' has shape %s, whose first dimension is not variable",
            declared.getName(), declared.getMaxBatchSize(), fixedFirst.name(), Arrays.toString(fixedFirst.shape()));
      }
      return declared.getMaxBatchSize();
    }
    if (fixedFirst != null) {
      return 0;
    }
    // max_batch_size 0 or absent on a model that could batch: Triton batches it unless the declared dims
    // already spell out the full model shape, batch dimension included (an explicit "do not batch").
    for (ModelInput input : declared.getInputList()) {
      if (spellsOutFullShape(input.getDimsCount(), inputsByName.get(input.getName()))) {
        return 0;
      }
    }
    for (ModelOutput output : declared.getOutputList()) {
      if (spellsOutFullShape(output.getDimsCount(), outputsByName.get(output.getName()))) {
        return 0;
      }
    }
    return defaultMaxBatchSize;
  }

  private static void checkSequenceTensors(ModelConfig declared, Map<String, ModelTensor> inputs,
      Map<String, ModelTensor> outputs, List<String> inputNames, List<String> outputNames) {
    io.quiver.core.SequenceBatchingSpec spec = io.quiver.core.SequenceBatchingSpec.of(declared);
    if (spec == null) {
      return;
    }
    String model = declared.getName();
    for (io.quiver.core.SequenceBatchingSpec.Control control : spec.controls()) {
      checkServerTensor(model, "input", "control input", control.inputName(), control.dataType(), inputs, inputNames);
    }
    for (io.quiver.core.SequenceBatchingSpec.State state : spec.states()) {
      checkServerTensor(model, "input", "state input", state.inputName(), state.dataType(), inputs, inputNames);
      checkServerTensor(model, "output", "state output", state.outputName(), state.dataType(), outputs, outputNames);
    }
  }

  private static void checkServerTensor(String model, String kind, String what, String name,
      io.quiver.core.DataType type, Map<String, ModelTensor> tensors, List<String> declaredNames) {
    if (declaredNames.contains(name)) {
      throw InferenceException.invalidArgument("model '%s': sequence_batching %s '%s' must not also be listed in the"
          + " config's %s list (the server sets it, the client never sees it)", model, what, name, kind);
    }
    ModelTensor tensor = tensors.get(name);
    if (tensor == null) {
      throw InferenceException.invalidArgument("model '%s': sequence_batching %s '%s' is not an %s of the model (the"
          + " model has %s)", model, what, name, kind, tensors.keySet());
    }
    if (tensor.dataType() != type) {
      throw InferenceException.invalidArgument("model '%s': sequence_batching %s '%s' is %s in the config but %s in"
          + " the model", model, what, name, type.wireName(), tensor.dataType().wireName());
    }
  }

  private static boolean spellsOutFullShape(int declaredDims, ModelTensor tensor) {
    return declaredDims > 0 && declaredDims == tensor.shape().length;
  }

  private static ModelTensor firstWithoutBatchDim(List<ModelTensor> inputs, List<ModelTensor> outputs) {
    for (ModelTensor tensor : inputs) {
      if (!tensor.hasDynamicFirstDim()) {
        return tensor;
      }
    }
    for (ModelTensor tensor : outputs) {
      if (!tensor.hasDynamicFirstDim()) {
        return tensor;
      }
    }
    return null;
  }

  private static io.quiver.proto.inference.DataType checkType(String model, String kind, String name,
      io.quiver.proto.inference.DataType declared, ModelTensor tensor) {
    io.quiver.proto.inference.DataType actual = tensor.dataType().toConfig();
    if (declared != io.quiver.proto.inference.DataType.TYPE_INVALID && declared != actual) {
      throw InferenceException.invalidArgument("model '%s': %s '%s' has data_type %s in the config but %s in the model",
          model, kind, name, declared, actual);
    }
    return actual;
  }

  private static List<Long> checkDims(String model, String kind, String name, List<Long> declared, ModelTensor tensor,
      boolean batches) {
    List<Long> expected = configDims(tensor, batches);
    if (declared.isEmpty()) {
      return expected;
    }
    if (declared.size() != expected.size()) {
      throw InferenceException.invalidArgument(
          "model '%s': %s '%s' has dims %s in the config but the model's shape is %s (expected %d dims%s)",
          model, kind, name, declared, Arrays.toString(tensor.shape()), expected.size(),
          batches ? ", excluding the batch dimension" : "");
    }
    for (int i = 0; i < declared.size(); i++) {
      long d = declared.get(i);
      long m = expected.get(i);
      if (d < -1 || (m >= 0 && d >= 0 && d != m)) {
        throw InferenceException.invalidArgument(
            "model '%s': %s '%s' has dims %s in the config but the model's shape is %s (dims %s%s)",
            model, kind, name, declared, Arrays.toString(tensor.shape()), expected,
            batches ? " without the batch dimension" : "");
      }
    }
    return declared;
  }

  /** The model's shape as config dims: without the batch dimension when batching. */
  private static List<Long> configDims(ModelTensor tensor, boolean batches) {
    long[] shape = tensor.shape();
    List<Long> dims = new ArrayList<>(shape.length);
    for (int i = batches ? 1 : 0; i < shape.length; i++) {
      dims.add(shape[i] < 0 ? -1L : shape[i]);
    }
    return dims;
  }

  private static void checkNames(String model, String kind, List<String> declared, Map<String, ModelTensor> actual) {
    Set<String> seen = new HashSet<>();
    for (String name : declared) {
      if (!seen.add(name)) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' is declared twice in the config", model, kind, name);
      }
      if (!actual.containsKey(name)) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' in the config is not an %s of the model (the model has %s)",
            model, kind, name, kind, actual.keySet());
      }
    }
  }

  private static Map<String, ModelTensor> byName(List<ModelTensor> tensors) {
    Map<String, ModelTensor> map = new LinkedHashMap<>();
    for (ModelTensor tensor : tensors) {
      map.put(tensor.name(), tensor);
    }
    return map;
  }

  private InferenceException unsupported(String model, String tensorField, String field) {
    return InferenceException.invalidArgument("model '%s': %s sets %s, which the %s runtime does not support",
        model, tensorField, field, runtime);
  }
}
