package io.quiver.server.monitoring;

import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;

/**
 * Where a model version's monitoring starts: at load, when its scheduler is built. Reads and
 * validates the {@code quiver.monitoring*} parameters (a bad one fails the load, naming it); for a
 * monitored version opens its {@link VersionMonitor} (reading the stored reference) and wraps the
 * scheduler in a {@link MonitoredScheduler}; an unmonitored version gets the delegate's scheduler as
 * is. Called on the model manager's load threads.
 */
public final class MonitoringSchedulerFactory implements SchedulerFactory {
  private final SchedulerFactory delegate;
  private final ModelMonitoring monitoring;

  public MonitoringSchedulerFactory(SchedulerFactory delegate, ModelMonitoring monitoring) {
    this.delegate = delegate;
    this.monitoring = monitoring;
  }

  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    MonitoringConfig settings = MonitoringConfig.from(config);
    List<TensorLayout> layouts = settings == null ? null : TensorLayout.plan(modelName, signature, settings);
    InferenceScheduler scheduler = delegate.create(modelName, version, config, signature, instances);
    if (settings == null) {
      return scheduler;
    }
    try {
      VersionMonitor monitor = monitoring.open(modelName, version, signature, layouts, settings, scheduler);
      return new MonitoredScheduler(scheduler, monitor, monitoring);
    } catch (RuntimeException e) {
      scheduler.close();
      throw e;
    }
  }
}
