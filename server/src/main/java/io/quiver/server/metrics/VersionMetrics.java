package io.quiver.server.metrics;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.quiver.core.ErrorCode;

/**
 * The label children of one model version, resolved once: recording is a few striped adds, no
 * lookups and no allocation. Thread-safe.
 */
public final class VersionMetrics {
  private final CounterDataPoint success;
  private final CounterDataPoint[] failures;
  private final DistributionDataPoint requestDuration;
  private final DistributionDataPoint computeInfer;
  private final DistributionDataPoint batchSize;
  private final DistributionDataPoint queue;
  private final DistributionDataPoint requestComputeInput;
  private final DistributionDataPoint requestComputeInfer;
  private final DistributionDataPoint requestComputeOutput;

  VersionMetrics(ServerMetrics metrics, String model, String version) {
    success = metrics.success.labelValues(model, version);
    ServerMetrics.Reason[] reasons = ServerMetrics.Reason.values();
    failures = new CounterDataPoint[reasons.length];
    for (ServerMetrics.Reason reason : reasons) {
      failures[reason.ordinal()] = metrics.failure.labelValues(model, version, reason.label);
    }
    requestDuration = metrics.requestDuration.labelValues(model, version);
    computeInfer = metrics.computeInferDuration.labelValues(model, version);
    batchSize = metrics.batchSize.labelValues(model, version);
    queue = metrics.queueDuration.labelValues(model, version);
    requestComputeInput = metrics.requestComputeDuration.labelValues(model, version, "input");
    requestComputeInfer = metrics.requestComputeDuration.labelValues(model, version, "infer");
    requestComputeOutput = metrics.requestComputeDuration.labelValues(model, version, "output");
  }

  /** The scheduler's timings of a request that succeeded (see InferRequest#recordTimings). */
  public void timings(long queueNanos, long inputNanos, long inferNanos, long outputNanos) {
    queue.observe(queueNanos * 1e-9);
    requestComputeInput.observe(inputNanos * 1e-9);
    requestComputeInfer.observe(inferNanos * 1e-9);
    requestComputeOutput.observe(outputNanos * 1e-9);
  }

  /** A request succeeded after {@code nanos} in the server. */
  public void succeeded(long nanos) {
    success.inc();
    requestDuration.observe(nanos * 1e-9);
  }

  /** A routed request failed (at submit or later) after {@code nanos}. */
  public void failed(ErrorCode code, long nanos) {
    failures[ServerMetrics.Reason.of(code).ordinal()].inc();
    requestDuration.observe(nanos * 1e-9);
  }

  /** One batch of {@code rows} rows executed in {@code nanos}. */
  public void executed(long rows, long nanos) {
    computeInfer.observe(nanos * 1e-9);
    batchSize.observe(rows);
  }
}
