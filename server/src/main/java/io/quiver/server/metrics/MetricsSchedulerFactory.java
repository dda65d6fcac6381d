package io.quiver.server.metrics;

import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
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

  public MetricsSchedulerFactory(SchedulerFactory delegate, ServerMetrics metrics) {
    this.delegate = delegate;
    this.metrics = metrics;
  }

  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    VersionMetrics versionMetrics = metrics.forVersion(modelName, version);
    List<ModelRunner> timed = new ArrayList<>(instances.size());
    for (ModelRunner runner : instances) {
      timed.add(new TimedRunner(runner, versionMetrics, signature.batches()));
    }
    return delegate.create(modelName, version, config, signature, timed);
  }

  /** Times {@code run}; called by one thread at a time, like the runner it wraps. */
  private static final class TimedRunner implements ModelRunner {
    private final ModelRunner runner;
    private final VersionMetrics metrics;
    private final boolean batches;

    TimedRunner(ModelRunner runner, VersionMetrics metrics, boolean batches) {
      this.runner = runner;
      this.metrics = metrics;
      this.batches = batches;
    }

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      long t0 = System.nanoTime();
      Tensor[] outputs = runner.run(inputs, outputIndices);
      metrics.executed(rows(inputs), System.nanoTime() - t0);
      return outputs;
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
