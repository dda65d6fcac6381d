package io.quiver.runtime.tensorflow;

import io.quiver.core.InferenceException;
import io.quiver.core.runtime.ConfigCompleter;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;

/**
 * Triton's config auto-complete for TensorFlow SavedModels ({@link ConfigCompleter}, with
 * max_batch_size {@value TensorFlowRuntime#DEFAULT_MAX_BATCH_SIZE} for a batchable model that says
 * nothing about batching), plus what only this runtime needs checked: CPU instances only, no
 * {@code optimization} settings, and its {@link TfModelOptions parameters}. Tensor names are the
 * signature's keys (what Triton's TensorFlow backend uses), not graph tensor names.
 *
 * <p>Stateless and thread-safe.
 */
final class TfConfigCompleter extends ConfigCompleter {
  static final TfConfigCompleter INSTANCE = new TfConfigCompleter();

  private TfConfigCompleter() {
    super(TensorFlowRuntime.NAME, TensorFlowRuntime.PLATFORM, TensorFlowRuntime.BACKEND,
        TensorFlowRuntime.DEFAULT_MAX_BATCH_SIZE);
  }

  @Override
  protected void checkInstanceGroup(String model, int index, ModelInstanceGroup group) {
    if (group.getKind() == ModelInstanceGroup.Kind.KIND_GPU || group.getKind() == ModelInstanceGroup.Kind.KIND_MODEL
        || group.getGpusCount() > 0) {
      throw InferenceException.invalidArgument(
          "model '%s': instance_group[%d] asks for %s%s, but the tensorflow runtime runs on CPU only "
              + "(it ships TensorFlow's CPU build, tensorflow-core-native linux-x86_64); use KIND_CPU",
          model, index, group.getKind(), group.getGpusCount() > 0 ? " gpus " + group.getGpusList() : "");
    }
  }

  @Override
  protected void checkRuntimeSettings(ModelConfig config) {
    String model = config.getName();
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
}
