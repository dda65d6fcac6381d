package io.quiver.runtime.tensorflow;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.proto.inference.ModelOutput;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Completes a declared model config from the SavedModel signature being served, following Triton's
 * auto-complete for TensorFlow SavedModels, and checks the declared parts against the signature.
 * Tensor names are the signature's keys (what Triton's TensorFlow backend uses), not graph tensor
 * names.
 *
 * <ul>
 *   <li>Inputs and outputs the config leaves out are added (declared ones first, in declared order,
 *       then the rest in model order); a missing {@code data_type} or empty {@code dims} is filled in.
 *   <li>Batching: when {@code max_batch_size} is 0 or absent, every signature input and output has
 *       a variable first dimension, and no declared dims spell out that first dimension, the model
 *       batches with {@code max_batch_size} {@value OnnxRuntime#DEFAULT_MAX_BATCH_SIZE} (Triton's
 *       default-max-batch-size). Dims exclude the batch dimension whenever the model batches.
 *   <li>As in Triton, a batching model (max_batch_size &gt; 1) with no scheduler gets an empty
 *       {@code dynamic_batching}.
 *   <li>Declared names the model lacks, datatypes that differ, and dims that contradict fixed model
 *       dims are INVALID_ARGUMENT errors naming the model, the tensor and both values.
 * </ul>
 *
 * <p>Stateless; pure functions of their arguments.
 */
final class TfConfigCompleter {
  private TfConfigCompleter() {}

  /**
   * Rejects config fields this runtime does not implement; each message names the field.
   *
   * @throws InferenceException INVALID_ARGUMENT
   */
  static void checkSupported(ModelConfig config) {
    String model = config.getName();
    if (!config.getPlatform().isEmpty() && !config.getPlatform().equals(TensorFlowRuntime.PLATFORM)) {
      throw InferenceException.invalidArgument("model '%s': platform \"%s\" is not served by the tensorflow runtime (expected \"%s\")",
          model, config.getPlatform(), TensorFlowRuntime.PLATFORM);
    }
    if (!config.getBackend().isEmpty() && !config.getBackend().equals(TensorFlowRuntime.BACKEND)) {
      throw InferenceException.invalidArgument("model '%s': backend \"%s\" is not served by the tensorflow runtime (expected \"%s\")",
          model, config.getBackend(), TensorFlowRuntime.BACKEND);
    }
    if (config.getMaxBatchSize() < 0) {
      throw InferenceException.invalidArgument("model '%s': max_batch_size must be ≥ 0; was %d", model, config.getMaxBatchSize());
    }
    for (int i = 0; i < config.getInstanceGroupCount(); i++) {
      ModelInstanceGroup group = config.getInstanceGroup(i);
      if (group.getKind() == ModelInstanceGroup.Kind.KIND_GPU || group.getKind() == ModelInstanceGroup.Kind.KIND_MODEL
          || group.getGpusCount() > 0) {
        throw InferenceException.invalidArgument(
            "model '%s': instance_group[%d] asks for %s%s, but the tensorflow runtime runs on CPU only "
                + "(it ships TensorFlow's CPU build, tensorflow-core-native linux-x86_64); use KIND_CPU",
            model, i, group.getKind(), group.getGpusCount() > 0 ? " gpus " + group.getGpusList() : "");
      }
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
    if (config.hasOptimization() && config.getOptimization().hasExecutionAccelerators()) {
      throw InferenceException.invalidArgument(
          "model '%s': optimization.execution_accelerators is not supported by the tensorflow runtime", model);
    }
    if (config.hasOptimization() && config.getOptimization().hasGraph()) {
      throw InferenceException.invalidArgument(
          "model '%s': optimization.graph is not supported by the tensorflow runtime", model);
    }
    TfModelOptions.of(config); // parameters
  }

  /**
   * Returns the completed config.
   *
   * @param declared the config as declared (may hold only the name)
   * @param modelInputs the signature's inputs, in signature order
   * @param modelOutputs the signature's outputs, in signature order
   * @throws InferenceException INVALID_ARGUMENT when the declared config contradicts the model
   */
  static ModelConfig complete(ModelConfig declared, List<SignatureTensor> modelInputs, List<SignatureTensor> modelOutputs) {
    checkSupported(declared);
    String model = declared.getName();
    Map<String, SignatureTensor> inputsByName = byName(modelInputs);
    Map<String, SignatureTensor> outputsByName = byName(modelOutputs);
    checkNames(model, "input", declaredInputNames(declared), inputsByName);
    checkNames(model, "output", declaredOutputNames(declared), outputsByName);

    int maxBatchSize = maxBatchSize(declared, modelInputs, modelOutputs, inputsByName, outputsByName);
    boolean batches = maxBatchSize > 0;

    ModelConfig.Builder completed = declared.toBuilder().clearInput().clearOutput().setMaxBatchSize(maxBatchSize);
    if (completed.getPlatform().isEmpty()) {
      completed.setPlatform(TensorFlowRuntime.PLATFORM);
    }
    if (completed.getBackend().isEmpty()) {
      completed.setBackend(TensorFlowRuntime.BACKEND);
    }

    Set<String> seen = new HashSet<>();
    for (ModelInput input : declared.getInputList()) {
      SignatureTensor tensor = inputsByName.get(input.getName());
      ModelInput.Builder builder = input.toBuilder();
      builder.setDataType(checkType(model, "input", input.getName(), input.getDataType(), tensor));
      builder.clearDims().addAllDims(checkDims(model, "input", input.getName(), input.getDimsList(), tensor, batches));
      completed.addInput(builder);
      seen.add(input.getName());
    }
    for (SignatureTensor tensor : modelInputs) {
      if (seen.add(tensor.name())) {
        completed.addInput(ModelInput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    seen.clear();
    for (ModelOutput output : declared.getOutputList()) {
      SignatureTensor tensor = outputsByName.get(output.getName());
      ModelOutput.Builder builder = output.toBuilder();
      builder.setDataType(checkType(model, "output", output.getName(), output.getDataType(), tensor));
      builder.clearDims().addAllDims(checkDims(model, "output", output.getName(), output.getDimsList(), tensor, batches));
      completed.addOutput(builder);
      seen.add(output.getName());
    }
    for (SignatureTensor tensor : modelOutputs) {
      if (seen.add(tensor.name())) {
        completed.addOutput(ModelOutput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    if (maxBatchSize > 1 && !declared.hasDynamicBatching()) {
      completed.setDynamicBatching(ModelDynamicBatching.getDefaultInstance());
    }
    return completed.build();
  }

  private static int maxBatchSize(ModelConfig declared, List<SignatureTensor> inputs, List<SignatureTensor> outputs,
      Map<String, SignatureTensor> inputsByName, Map<String, SignatureTensor> outputsByName) {
    SignatureTensor fixedFirst = firstWithoutBatchDim(inputs, outputs);
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
      SignatureTensor tensor = inputsByName.get(input.getName());
      if (input.getDimsCount() > 0 && input.getDimsCount() == tensor.shape().length) {
        return 0;
      }
    }
    for (ModelOutput output : declared.getOutputList()) {
      SignatureTensor tensor = outputsByName.get(output.getName());
      if (output.getDimsCount() > 0 && output.getDimsCount() == tensor.shape().length) {
        return 0;
      }
    }
    return TensorFlowRuntime.DEFAULT_MAX_BATCH_SIZE;
  }

  private static SignatureTensor firstWithoutBatchDim(List<SignatureTensor> inputs, List<SignatureTensor> outputs) {
    for (SignatureTensor tensor : inputs) {
      if (!tensor.hasDynamicFirstDim()) {
        return tensor;
      }
    }
    for (SignatureTensor tensor : outputs) {
      if (!tensor.hasDynamicFirstDim()) {
        return tensor;
      }
    }
    return null;
  }

  private static io.quiver.proto.inference.DataType checkType(String model, String kind, String name,
      io.quiver.proto.inference.DataType declared, SignatureTensor tensor) {
    io.quiver.proto.inference.DataType actual = tensor.dataType().toConfig();
    if (declared != io.quiver.proto.inference.DataType.TYPE_INVALID && declared != actual) {
      throw InferenceException.invalidArgument("model '%s': %s '%s' has data_type %s in the config but %s in the model",
          model, kind, name, declared, actual);
    }
    return actual;
  }

  private static List<Long> checkDims(String model, String kind, String name, List<Long> declared, SignatureTensor tensor,
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
  private static List<Long> configDims(SignatureTensor tensor, boolean batches) {
    long[] shape = tensor.shape();
    List<Long> dims = new ArrayList<>(shape.length);
    for (int i = batches ? 1 : 0; i < shape.length; i++) {
      dims.add(shape[i] < 0 ? -1L : shape[i]);
    }
    return dims;
  }

  private static void checkNames(String model, String kind, List<String> declared, Map<String, SignatureTensor> actual) {
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

  private static List<String> declaredInputNames(ModelConfig config) {
    List<String> names = new ArrayList<>();
    for (ModelInput input : config.getInputList()) {
      names.add(input.getName());
    }
    return names;
  }

  private static List<String> declaredOutputNames(ModelConfig config) {
    List<String> names = new ArrayList<>();
    for (ModelOutput output : config.getOutputList()) {
      names.add(output.getName());
    }
    return names;
  }

  private static Map<String, SignatureTensor> byName(List<SignatureTensor> tensors) {
    Map<String, SignatureTensor> map = new LinkedHashMap<>();
    for (SignatureTensor tensor : tensors) {
      map.put(tensor.name(), tensor);
    }
    return map;
  }

  private static InferenceException unsupported(String model, String tensorField, String field) {
    return InferenceException.invalidArgument("model '%s': %s sets %s, which the tensorflow runtime does not support",
        model, tensorField, field);
  }
}
