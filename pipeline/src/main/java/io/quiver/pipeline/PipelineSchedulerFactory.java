package io.quiver.pipeline;

import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.runtime.ModelParameters;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRouter;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.Objects;

/**
 * The scheduler factory a server installs in front of its batcher factory: an ensemble
 * ({@code platform: "ensemble"}) gets an {@link EnsembleScheduler} whose steps go through
 * {@link #routeThrough the router}; every other model gets the wrapped factory's scheduler; and a
 * model or ensemble with {@code quiver.max_inflight_requests} gets an {@link AdmissionLimit} around it.
 *
 * <p>Thread-safe. {@link #routeThrough} is called once, before the first ensemble loads (the router is
 * usually the model manager, which itself needs this factory to be built).
 */
public final class PipelineSchedulerFactory implements SchedulerFactory {
  private final SchedulerFactory models;
  private final StepListener.Factory listeners;
  private volatile ModelRouter router;

  /**
   * @param models builds the scheduler of every model that is not an ensemble (the batcher)
   * @param listeners makes each ensemble version's step listener (per-step metrics)
   */
  public PipelineSchedulerFactory(SchedulerFactory models, StepListener.Factory listeners) {
    this.models = Objects.requireNonNull(models, "models");
    this.listeners = Objects.requireNonNull(listeners, "listeners");
  }

  /** Sets how ensemble steps find their models (the model manager's acquire). */
  public PipelineSchedulerFactory routeThrough(ModelRouter router) {
    this.router = Objects.requireNonNull(router, "router");
    return this;
  }

  /**
   * @throws InferenceException INVALID_ARGUMENT for an ensemble whose graph does not fit its step
   *     models (naming the step and tensor) or an invalid limit; UNAVAILABLE or NOT_FOUND, naming the step,
   *     when a step model is not loaded
   */
  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    int limit = ModelParameters.intValue(config, AdmissionLimit.PARAMETER, 0, 1, AdmissionLimit.MAX_LIMIT);
    InferenceScheduler scheduler;
    if (isEnsemble(config)) {
      ModelRouter r = router;
      if (r == null) {
        throw InferenceException.failedPrecondition("ensemble '%s': this server cannot route ensemble steps", modelName);
      }
      EnsemblePlan plan = EnsemblePlan.build(modelName, version, config, signature, r);
      scheduler = new EnsembleScheduler(plan, r, listeners.create(modelName, version, plan.stepModels()));
    } else {
      scheduler = models.create(modelName, version, config, signature, instances);
    }
    return limit > 0 ? new AdmissionLimit(scheduler, limit, modelName, version) : scheduler;
  }

  /** Whether the config describes an ensemble. */
  public static boolean isEnsemble(ModelConfig config) {
    return "ensemble".equals(config.getPlatform()) || config.hasEnsembleScheduling();
  }
}
