package io.quiver.runtime.onnxruntime;

import io.quiver.core.DataType;
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
 * Completes a declared model config from what the ONNX model itself says, following Triton's
 * auto-complete for ONNX models, and checks the declared parts against the model.
 *
 * <ul>
 *   <li>Inputs and outputs the config leaves out are added (declared ones first, in declared order,
 *       then the rest in model order); a missing {@code data_type} or empty {@code dims} is filled in.
 *   <li>Batching: when {@code max_batch_size} is 0 or absent, every model input and output has a
 *       variable first dimension, and no declared dims spell out that first dimension, the model
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
final class OnnxConfigCompleter {
  private OnnxConfigCompleter() {}

  /**
   * Rejects config fields this runtime does not implement; each message names the field.
   *
   * @throws InferenceException INVALID_ARGUMENT
   */
  static void checkSupported(ModelConfig config) {
    String model = config.getName();
    if (!config.getPlatform().isEmpty() && !config.getPlatform().equals(OnnxRuntime.PLATFORM)) {
      throw InferenceException.invalidArgument("model '%s': platform \"%s\" is not served by the onnxruntime runtime (expected \"%s\")",
          model, config.getPlatform(), OnnxRuntime.PLATFORM);
    }
    if (!config.getBackend().isEmpty() && !config.getBackend().equals(OnnxRuntime.BACKEND)) {
      throw InferenceException.invalidArgument("model '%s': backend \"%s\" is not served by the onnxruntime runtime (expected \"%s\")",
          model, config.getBackend(), OnnxRuntime.BACKEND);
    }
    if (config.getMaxBatchSize() < 0) {
      throw InferenceException.invalidArgument("model '%s': max_batch_size must be ≥ 0; was %d", model, config.getMaxBatchSize());
    }
    for (int i = 0; i < config.getInstanceGroupCount(); i++) {
      ModelInstanceGroup group = config.getInstanceGroup(i);
      if (group.getKind() == ModelInstanceGroup.Kind.KIND_MODEL) {
        throw InferenceException.invalidArgument(
            "model '%s': instance_group[%d].kind KIND_MODEL is not supported by the onnxruntime runtime (use KIND_CPU or KIND_GPU)",
            model, i);
      }
      if (group.getGpusCount() > 0 && group.getKind() != ModelInstanceGroup.Kind.KIND_GPU) {
        throw InferenceException.invalidArgument(
            "model '%s': instance_group[%d].gpus %s needs kind KIND_GPU; was %s", model, i, group.getGpusList(),
            group.getKind());
      }
      for (int gpu : group.getGpusList()) {
        if (gpu < 0) {
          throw InferenceException.invalidArgument("model '%s': instance_group[%d].gpus must be ≥ 0; was %d", model, i, gpu);
        }
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
    OnnxExecutionProviders.check(config); // instance kinds, execution_accelerators, CUDA parameters
    OnnxSessionOptions.of(config); // parameters and optimization.graph.level
  }

  /**
   * Returns the completed config.
   *
   * @param declared the config as declared (may hold only the name)
   * @param modelInputs the model's inputs, in model order
   * @param modelOutputs the model's outputs, in model order
   * @throws InferenceException INVALID_ARGUMENT when the declared config contradicts the model
   */
  static ModelConfig complete(ModelConfig declared, List<ModelTensor> modelInputs, List<ModelTensor> modelOutputs) {
    checkSupported(declared);
    String model = declared.getName();
    Map<String, ModelTensor> inputsByName = byName(modelInputs);
    Map<String, ModelTensor> outputsByName = byName(modelOutputs);
    checkNames(model, "input", declaredInputNames(declared), inputsByName);
    checkNames(model, "output", declaredOutputNames(declared), outputsByName);

    int maxBatchSize = maxBatchSize(declared, modelInputs, modelOutputs, inputsByName, outputsByName);
    boolean batches = maxBatchSize > 0;

    ModelConfig.Builder completed = declared.toBuilder().clearInput().clearOutput().setMaxBatchSize(maxBatchSize);
    if (completed.getPlatform().isEmpty()) {
      completed.setPlatform(OnnxRuntime.PLATFORM);
    }
    if (completed.getBackend().isEmpty()) {
      completed.setBackend(OnnxRuntime.BACKEND);
    }

    Set<String> seen = new HashSet<>();
    for (ModelInput input : declared.getInputList()) {
      ModelTensor tensor = inputsByName.get(input.getName());
      ModelInput.Builder builder = input.toBuilder();
      builder.setDataType(checkType(model, "input", input.getName(), input.getDataType(), tensor));
      builder.clearDims().addAllDims(checkDims(model, "input", input.getName(), input.getDimsList(), tensor, batches));
      completed.addInput(builder);
      seen.add(input.getName());
    }
    for (ModelTensor tensor : modelInputs) {
      if (seen.add(tensor.name())) {
        completed.addInput(ModelInput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    seen.clear();
    for (ModelOutput output : declared.getOutputList()) {
      ModelTensor tensor = outputsByName.get(output.getName());
      ModelOutput.Builder builder = output.toBuilder();
      builder.setDataType(checkType(model, "output", output.getName(), output.getDataType(), tensor));
      builder.clearDims().addAllDims(checkDims(model, "output", output.getName(), output.getDimsList(), tensor, batches));
      completed.addOutput(builder);
      seen.add(output.getName());
    }
    for (ModelTensor tensor : modelOutputs) {
      if (seen.add(tensor.name())) {
        completed.addOutput(ModelOutput.newBuilder().setName(tensor.name()).setDataType(tensor.dataType().toConfig())
            .addAllDims(configDims(tensor, batches)));
      }
    }
    if (maxBatchSize > 1 && !declared.hasDynamicBatching()) {
      completed.setDynamicBatching(ModelDynamicBatching.getDefaultInstance());
    }
    checkInputTypesFeedable(completed.build());
    return completed.build();
  }

  /**
   * Rejects inputs whose datatype ONNX Runtime Java cannot create tensors of (UINT16, UINT32, UINT64).
   *
   * @throws InferenceException INVALID_ARGUMENT naming the input and its type
   */
  static void checkInputTypesFeedable(ModelConfig config) {
    for (ModelInput input : config.getInputList()) {
      DataType type = DataType.fromConfig(input.getDataType());
      if (type != null && OrtTypes.inputJavaType(type) == null) {
        throw InferenceException.invalidArgument(
            "model '%s': input '%s' has type %s, which ONNX Runtime's Java API cannot create tensors of "
                + "(no unsigned 16/32/64-bit input types); unsigned outputs are supported",
            config.getName(), input.getName(), input.getDataType());
      }
    }
  }

  private static int maxBatchSize(ModelConfig declared, List<ModelTensor> inputs, List<ModelTensor> outputs,
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
      ModelTensor tensor = inputsByName.get(input.getName());
      if (input.getDimsCount() > 0 && input.getDimsCount() == tensor.shape().length) {
        return 0;
      }
    }
    for (ModelOutput output : declared.getOutputList()) {
      ModelTensor tensor = outputsByName.get(output.getName());
      if (output.getDimsCount() > 0 && output.getDimsCount() == tensor.shape().length) {
        return 0;
      }
    }
    return OnnxRuntime.DEFAULT_MAX_BATCH_SIZE;
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

  private static Map<String, ModelTensor> byName(List<ModelTensor> tensors) {
    Map<String, ModelTensor> map = new LinkedHashMap<>();
    for (ModelTensor tensor : tensors) {
      map.put(tensor.name(), tensor);
    }
    return map;
  }

  private static InferenceException unsupported(String model, String tensorField, String field) {
    return InferenceException.invalidArgument("model '%s': %s sets %s, which the onnxruntime runtime does not support",
        model, tensorField, field);
  }
}
