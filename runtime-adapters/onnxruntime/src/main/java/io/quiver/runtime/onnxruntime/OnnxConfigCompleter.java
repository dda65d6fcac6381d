package io.quiver.runtime.onnxruntime;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.runtime.ConfigCompleter;
import io.quiver.core.runtime.ModelTensor;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelInstanceGroup;
import java.util.List;

/**
 * Triton's config auto-complete for ONNX models ({@link ConfigCompleter}, with max_batch_size
 * {@value OnnxRuntime#DEFAULT_MAX_BATCH_SIZE} for a batchable model that says nothing about
 * batching), plus what only ONNX Runtime needs checked: instance kinds (KIND_MODEL is refused,
 * {@code gpus} needs KIND_GPU), execution providers and session settings, and input datatypes its
 * Java API can create tensors of.
 *
 * <p>Stateless and thread-safe.
 */
final class OnnxConfigCompleter extends ConfigCompleter {
  static final OnnxConfigCompleter INSTANCE = new OnnxConfigCompleter();

  private OnnxConfigCompleter() {
    super(OnnxRuntime.NAME, OnnxRuntime.PLATFORM, OnnxRuntime.BACKEND, OnnxRuntime.DEFAULT_MAX_BATCH_SIZE);
  }

  @Override
  protected void checkInstanceGroup(String model, int index, ModelInstanceGroup group) {
    if (group.getKind() == ModelInstanceGroup.Kind.KIND_MODEL) {
      throw InferenceException.invalidArgument(
          "model '%s': instance_group[%d].kind KIND_MODEL is not supported by the onnxruntime runtime (use KIND_CPU or KIND_GPU)",
          model, index);
    }
    if (group.getGpusCount() > 0 && group.getKind() != ModelInstanceGroup.Kind.KIND_GPU) {
      throw InferenceException.invalidArgument(
          "model '%s': instance_group[%d].gpus %s needs kind KIND_GPU; was %s", model, index, group.getGpusList(),
          group.getKind());
    }
    for (int gpu : group.getGpusList()) {
      if (gpu < 0) {
        throw InferenceException.invalidArgument("model '%s': instance_group[%d].gpus must be ≥ 0; was %d", model, index, gpu);
      }
    }
  }

  @Override
  protected void checkRuntimeSettings(ModelConfig config) {
    OnnxExecutionProviders.check(config); // instance kinds, execution_accelerators, CUDA parameters
    OnnxSessionOptions.of(config); // parameters and optimization.graph.level
  }

  /** Completes the config, then refuses input datatypes ONNX Runtime's Java API cannot feed. */
  @Override
  public ModelConfig complete(ModelConfig declared, List<ModelTensor> modelInputs, List<ModelTensor> modelOutputs) {
    ModelConfig completed = super.complete(declared, modelInputs, modelOutputs);
    checkInputTypesFeedable(completed);
    return completed;
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
    io.quiver.core.SequenceBatchingSpec sequence = io.quiver.core.SequenceBatchingSpec.of(config);
    if (sequence != null) {
      for (io.quiver.core.SequenceBatchingSpec.Control control : sequence.controls()) {
        if (OrtTypes.inputJavaType(control.dataType()) == null) {
          throw InferenceException.invalidArgument(
              "model '%s': sequence_batching control input '%s' (%s) is %s, which ONNX Runtime's Java API cannot create"
                  + " tensors of; use TYPE_INT64 (or TYPE_INT32, TYPE_STRING) for the CORRID control",
              config.getName(), control.inputName(), control.kind(), control.dataType().wireName());
        }
      }
      for (io.quiver.core.SequenceBatchingSpec.State state : sequence.states()) {
        if (OrtTypes.inputJavaType(state.dataType()) == null) {
          throw InferenceException.invalidArgument("model '%s': sequence_batching state input '%s' is %s, which ONNX"
              + " Runtime's Java API cannot create tensors of", config.getName(), state.inputName(),
              state.dataType().wireName());
        }
      }
    }
  }

  /**
   * The inputs a model takes as ONNX string tensors (BYTES, including a string CORRID control): ONNX
   * Runtime's Java API creates string tensors only from Java Strings, which its native side encodes as
   * modified UTF-8, so such inputs carry text, not arbitrary bytes. Said once at load (a warning naming
   * them); requests whose elements would not reach the model byte for byte are refused.
   */
  static java.util.List<String> stringInputs(ModelConfig config) {
    java.util.List<String> names = new java.util.ArrayList<>();
    for (io.quiver.core.TensorSpec spec : io.quiver.core.ModelSignature.of(config).inputs()) {
      if (spec.dataType() == DataType.BYTES) {
        names.add(spec.name());
      }
    }
    return names;
  }
}
