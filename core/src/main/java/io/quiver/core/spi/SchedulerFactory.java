package io.quiver.core.spi;

import io.quiver.core.ModelSignature;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;

/** Builds the scheduler for a loaded model version. Implemented by the batching module. */
public interface SchedulerFactory {
  /**
   * @param config the completed config (dynamic_batching, max_batch_size, parameters)
   * @param instances the version's runner instances; the scheduler gives each one batch at a time
   */
  InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances);
}
