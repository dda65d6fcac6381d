package io.quiver.server.metrics;

import java.util.Map;

/**
 * The cumulative figures of one model version at one instant, read from the same sources as
 * /metrics and the statistics RPC (never from exposition text): Triton's statistics
 * ({@code InferenceStats}), the failure counters, the request-latency and queue-wait histograms, and
 * the scheduler's gauges. A reader diffs two samples to get rates and windowed percentiles.
 *
 * @param success requests that succeeded (the statistics RPC's {@code inference_stats.success.count})
 * @param successNanos their summed end-to-end time ({@code success.ns})
 * @param fail requests that failed after the scheduler accepted them ({@code fail.count})
 * @param failures routed requests that failed, by reason ({@code quiver_inference_failure_total}), including
 *     those refused at submit (queue full)
 * @param queueNanos summed queue wait of successful requests ({@code queue.ns})
 * @param computeNanos summed compute time (input + infer + output) charged to successful requests
 * @param inferenceCount rows executed ({@code inference_count})
 * @param executionCount batches executed ({@code execution_count})
 * @param batches executions by batch size (rows), only sizes that occurred
 * @param queued requests waiting in the scheduler's queue now
 * @param inFlight requests accepted and not yet answered now (queued or running)
 * @param latency the end-to-end latency histogram ({@code quiver_request_duration_seconds})
 * @param queueWait the per-request queue-wait histogram ({@code quiver_request_queue_duration_seconds})
 */
public record VersionSample(String model, long version, long success, long successNanos, long fail,
    Map<String, Long> failures, long queueNanos, long computeNanos, long inferenceCount, long executionCount,
    Map<Integer, Long> batches, int queued, int inFlight, Buckets latency, Buckets queueWait) {

  /**
   * A classic histogram: {@code counts[i]} observations fell at or below {@code upperBounds[i]} and above
   * the bound before it (not cumulative); the last bound is +Inf.
   */
  public record Buckets(double[] upperBounds, long[] counts) {
    static final Buckets EMPTY = new Buckets(new double[0], new long[0]);
  }
}
