package io.quiver.batching;

import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;

/**
 * Builds a {@link DynamicBatcher} for every loaded model version, batching or not (a model without
 * dynamic_batching gets batches of one through the same path). Stateless and thread-safe; also
 * registered for {@link java.util.ServiceLoader}.
 */
public final class DynamicBatcherFactory implements SchedulerFactory {
  private final NanoClock clock;

  public DynamicBatcherFactory() {
    this(NanoClock.SYSTEM);
  }

  public DynamicBatcherFactory(NanoClock clock) {
    this.clock = clock;
  }

  /** @throws io.quiver.core.InferenceException INVALID_ARGUMENT when the config's batching policy is invalid */
  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    return DynamicBatcher.builder()
        .model(modelName, version, config, signature)
        .runners(instances)
        .clock(clock)
        .build();
  }
}
