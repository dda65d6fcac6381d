package io.quiver.server.monitoring;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceStats;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.SchedulerDecorator;

/**
 * The scheduler of a monitored model version: the batcher's scheduler, unchanged, carrying the
 * version's {@link VersionMonitor} so that the request path finds it with one type check (an
 * unmonitored version's scheduler is not wrapped at all). Closing it closes the scheduler, then the
 * monitor. It is the outermost decorator of a version's scheduler (in front of the response cache, an
 * ensemble, the admission limit), and a {@link SchedulerDecorator}, so what is behind it can be found.
 * Thread-safe as the scheduler it wraps.
 */
public final class MonitoredScheduler implements InferenceScheduler, SchedulerDecorator {
  private final InferenceScheduler delegate;
  private final VersionMonitor monitor;
  private final ModelMonitoring monitoring;

  MonitoredScheduler(InferenceScheduler delegate, VersionMonitor monitor, ModelMonitoring monitoring) {
    this.delegate = delegate;
    this.monitor = monitor;
    this.monitoring = monitoring;
  }

  /** The monitor of a version's scheduler, or null when the version is not monitored. */
  public static VersionMonitor monitorOf(InferenceScheduler scheduler) {
    return scheduler instanceof MonitoredScheduler m ? m.monitor : null;
  }

  /** Request-path hook after validation: samples the inputs of a monitored version; a type check otherwise. */
  public static void sampleInputs(InferenceScheduler scheduler, Tensor[] inputs, int rows) {
    if (scheduler instanceof MonitoredScheduler m) {
      m.monitor.sampleInputs(inputs, rows);
    }
  }

  /** Success hook, while the outputs are valid: samples the outputs of a monitored version; a type check otherwise. */
  public static void sampleOutputs(InferenceScheduler scheduler, InferRequest request, Tensor[] outputs) {
    if (scheduler instanceof MonitoredScheduler m) {
      m.monitor.sampleOutputs(request.outputIndices(), outputs, request.batchSize());
    }
  }

  VersionMonitor monitor() {
    return monitor;
  }

  InferenceScheduler delegate() {
    return delegate;
  }

  @Override
  public InferenceScheduler inner() {
    return delegate;
  }

  @Override
  public void submit(InferRequest request) {
    delegate.submit(request);
  }

  @Override
  public long admit(int priority) {
    return delegate.admit(priority);
  }

  @Override
  public int queuedRequests() {
    return delegate.queuedRequests();
  }

  @Override
  public int inFlightRequests() {
    return delegate.inFlightRequests();
  }

  @Override
  public InferenceStats stats() {
    return delegate.stats();
  }

  @Override
  public void close() {
    try {
      delegate.close();
    } finally {
      monitoring.closeMonitor(monitor);
    }
  }
}
