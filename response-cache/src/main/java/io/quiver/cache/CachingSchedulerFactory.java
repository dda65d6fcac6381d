package io.quiver.cache;

import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRouter;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Puts a {@link CachingScheduler} in front of the scheduler of every model version whose config enables
 * {@code response_cache}; other models get the wrapped factory's scheduler untouched, so a model without
 * the cache pays nothing for it. With no server cache configured, an enabled model is served uncached
 * and a warning says so. Thread-safe.
 */
public final class CachingSchedulerFactory implements SchedulerFactory {
  private static final Logger log = LoggerFactory.getLogger(CachingSchedulerFactory.class);

  private final SchedulerFactory inner;
  private final ResponseCache cache; // null: no --cache-config
  private volatile ModelRouter router;

  public CachingSchedulerFactory(SchedulerFactory inner, ResponseCache cache) {
    this.inner = Objects.requireNonNull(inner, "inner");
    this.cache = cache;
  }

  /** How an ensemble's key finds the versions its steps route to (the model manager's acquire). */
  public CachingSchedulerFactory routeThrough(ModelRouter router) {
    this.router = Objects.requireNonNull(router, "router");
    return this;
  }

  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    InferenceScheduler scheduler = inner.create(modelName, version, config, signature, instances);
    if (!config.getResponseCache().getEnable()) {
      return scheduler;
    }
    if (cache == null) {
      log.warn("model '{}' version {} enables response_cache, but the server has no cache (--cache-config);"
          + " its answers are not cached", modelName, version);
      return scheduler;
    }
    if (config.hasEnsembleScheduling() && router == null) {
      log.warn("ensemble '{}' version {} enables response_cache, but this server cannot see its steps' versions;"
          + " its answers are not cached", modelName, version);
      return scheduler;
    }
    return new CachingScheduler(scheduler, cache, modelName, version, config, signature, router);
  }
}
