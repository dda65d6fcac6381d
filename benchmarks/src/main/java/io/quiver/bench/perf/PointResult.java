package io.quiver.bench.perf;

/**
 * The outcome of one load level: the merged measurement windows it is judged by, and the counts
 * over the whole level (warm-up, every window and the drain), which must add up:
 * {@code sent == completed + errors} and {@code latencyCount == completed}. Immutable.
 *
 * @param mode "concurrency" (closed loop) or "rate" (open loop)
 * @param load the concurrency, or the intended requests per second
 * @param measured the last {@value WindowStability#WINDOWS} windows merged (fewer if the run had fewer)
 * @param windows windows measured in all
 * @param stable whether the last windows agreed within the tolerance
 * @param rejected the part of {@code errors} refused for load (RESOURCE_EXHAUSTED, UNAVAILABLE)
 * @param firstError the first error seen (status and description), or empty
 * @param rejectionNanos over every measured window, time from send to answer of the unary requests the
 *     server refused for load (client-side: the server's own time plus the network and the client's
 *     read); empty when none were refused. Not corrected to the intended send time: it times how fast
 *     a refusal comes back, not the schedule.
 */
public record PointResult(String mode, double load, String distribution, boolean streaming, WindowResult measured,
    int windows, boolean stable, long sent, long completed, long errors, long rejected, long latencyCount,
    String firstError, org.HdrHistogram.Histogram rejectionNanos) {

  /** Latency of refusals ({@link #rejectionNanos}); NaN figures when there were none. */
  public LatencyStats rejectionLatency() {
    return LatencyStats.of(rejectionNanos);
  }

  public double throughput() {
    return measured.throughput();
  }

  public double inferencesPerSecond() {
    return throughput() * measured.rowsPerRequest();
  }

  public LatencyStats latency() {
    return measured.latency();
  }

  public double serverCpuMicrosPerRequest() {
    return Rates.cpuMicrosPerRequest(measured.serverCpuNanos(), measured.completed());
  }

  /** Bytes the server allocated per completed request; NaN when unknown. */
  public double serverAllocatedBytesPerRequest() {
    long bytes = measured.serverAllocatedBytes();
    return bytes < 0 || measured.completed() == 0 ? Double.NaN : (double) bytes / measured.completed();
  }

  /** Context switches of the server's threads per completed request; NaN when unknown. */
  public double serverContextSwitchesPerRequest() {
    long n = measured.serverContextSwitches();
    return n < 0 || measured.completed() == 0 ? Double.NaN : (double) n / measured.completed();
  }

  public double clientCpuMicrosPerRequest() {
    return Rates.cpuMicrosPerRequest(measured.clientCpuNanos(), measured.completed());
  }

  public double serverCoresUsed() {
    return Rates.coresUsed(measured.serverCpuNanos(), measured.wallNanos());
  }

  /** Inferences (rows) per server CPU-second; NaN without a server pid. */
  public double inferencesPerServerCpuSecond() {
    return Rates.perCpuSecond(measured.completed() * measured.rowsPerRequest(), measured.serverCpuNanos());
  }

  /**
   * Open loop: whether any measured window was client-bound (the load generator fell behind its own
   * schedule): its latencies then include the client's backlog and are not a server measurement.
   */
  public boolean clientBound() {
    return measured.clientBound();
  }

  /** Open loop: whether the in-flight limit held the sender back in a measured window (server overload). */
  public boolean inflightLimited() {
    return measured.inflightStalls() > 0;
  }

  public double meanBatch() {
    return Rates.meanBatch(measured.inferenceCountDelta(), measured.executionCountDelta());
  }
}
