package io.quiver.server.metrics;

import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.server.tracing.ExecutionWindow;
import java.util.ArrayList;
import java.util.List;

/**
 * Wraps another {@link SchedulerFactory} so that every runner instance it is given reports each
 * execution (compute-infer time and batch size) to the version's {@link VersionMetrics}. The
 * scheduler itself is the delegate's, unchanged.
 */
public final class MetricsSchedulerFactory implements SchedulerFactory {
  private final SchedulerFactory delegate;
  private final ServerMetrics metrics;
  private final boolean traceExecutions;

  public MetricsSchedulerFactory(SchedulerFactory delegate, ServerMetrics metrics) {
    this(delegate, metrics, false);
  }

  /**
   * @param traceExecutions also leave each run's window in the worker thread's {@link ExecutionWindow}
   *     for the request spans (only while tracing is on)
   */
  public MetricsSchedulerFactory(SchedulerFactory delegate, ServerMetrics metrics, boolean traceExecutions) {
    this.delegate = delegate;
    this.metrics = metrics;
    this.traceExecutions = traceExecutions;
  }

  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    VersionMetrics versionMetrics = metrics.forVersion(modelName, version);
    // With preserve_ordering and several instances, one worker may complete another's batch: its
    // thread's window would not be that batch's run, so spans get no compute child there.
    boolean windows = traceExecutions
        && !(instances.size() > 1 && config.hasDynamicBatching() && config.getDynamicBatching().getPreserveOrdering());
    List<ModelRunner> timed = new ArrayList<>(instances.size());
    for (ModelRunner runner : instances) {
      timed.add(new TimedRunner(runner, versionMetrics, signature.batches(), windows ? modelName : null, version));
    }
    return delegate.create(modelName, version, config, signature, timed);
  }

  /** Times {@code run}; called by one worker thread at a time, like the runner it wraps. */
  private static final class TimedRunner implements ModelRunner {
    private final ModelRunner runner;
    private final VersionMetrics metrics;
    private final boolean batches;
    private final String tracedModel; // null: no execution windows (tracing off)
    private final long version;

    TimedRunner(ModelRunner runner, VersionMetrics metrics, boolean batches, String tracedModel, long version) {
      this.runner = runner;
      this.metrics = metrics;
      this.batches = batches;
      this.tracedModel = tracedModel;
      this.version = version;
    }

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      long t0 = System.nanoTime();
      if (tracedModel == null) {
        Tensor[] outputs = runner.run(inputs, outputIndices);
        metrics.executed(rows(inputs), System.nanoTime() - t0);
        return outputs;
      }
      long rows = rows(inputs);
      try {
        Tensor[] outputs = runner.run(inputs, outputIndices);
        metrics.executed(rows, System.nanoTime() - t0);
        return outputs;
      } finally {
        ExecutionWindow.record(tracedModel, version, t0, System.nanoTime(), rows);
      }
    }

    private long rows(Tensor[] inputs) {
      if (!batches) {
        return 1;
      }
      for (Tensor input : inputs) {
        if (input != null && input.shape().length > 0) {
          return input.shape()[0];
        }
      }
      return 1;
    }

    @Override
    public void close() {
      runner.close();
    }
  }
}
