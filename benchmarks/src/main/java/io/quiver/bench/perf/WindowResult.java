package io.quiver.bench.perf;

import org.HdrHistogram.Histogram;

/**
 * What one measurement window saw: counts, the latencies of the requests that completed in it
 * (nanoseconds), and CPU and server-statistics deltas (negative when unknown). Immutable once built;
 * the histogram must not be changed after construction.
 *
 * @param rejected the part of {@code errors} the server refused for load (RESOURCE_EXHAUSTED, UNAVAILABLE)
 * @param rowsPerRequest the batch size of each request, to turn requests into inferences
 */
public record WindowResult(long wallNanos, long sent, long completed, long errors, long rejected, Histogram latencyNanos,
    long serverCpuNanos, long clientCpuNanos, long inferenceCountDelta, long executionCountDelta,
    int rowsPerRequest) {

  public double throughput() {
    return Rates.perSecond(completed, wallNanos);
  }

  /** Requests sent per second: the offered load in open loop. */
  public double offeredRate() {
    return Rates.perSecond(sent, wallNanos);
  }

  /** Requests refused for load per second. */
  public double rejectedRate() {
    return Rates.perSecond(rejected, wallNanos);
  }

  public LatencyStats latency() {
    return LatencyStats.of(latencyNanos);
  }

  /** Merges consecutive windows into one: sums, and one histogram holding every latency. */
  public static WindowResult merge(java.util.List<WindowResult> windows) {
    Histogram all = LatencyStats.newHistogram();
    long wall = 0;
    long sent = 0;
    long completed = 0;
    long errors = 0;
    long rejected = 0;
    long server = 0;
    long client = 0;
    long inferences = 0;
    long executions = 0;
    int rows = 1;
    for (WindowResult w : windows) {
      all.add(w.latencyNanos);
      wall += w.wallNanos;
      sent += w.sent;
      completed += w.completed;
      errors += w.errors;
      rejected += w.rejected;
      server = server < 0 || w.serverCpuNanos < 0 ? -1 : server + w.serverCpuNanos;
      client = client < 0 || w.clientCpuNanos < 0 ? -1 : client + w.clientCpuNanos;
      inferences = inferences < 0 || w.inferenceCountDelta < 0 ? -1 : inferences + w.inferenceCountDelta;
      executions = executions < 0 || w.executionCountDelta < 0 ? -1 : executions + w.executionCountDelta;
      rows = w.rowsPerRequest;
    }
    return new WindowResult(wall, sent, completed, errors, rejected, all, server, client, inferences, executions, rows);
  }
}
