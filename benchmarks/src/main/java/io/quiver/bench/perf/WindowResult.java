package io.quiver.bench.perf;

import org.HdrHistogram.Histogram;

/**
 * What one measurement window saw: counts, the latencies of the requests that completed in it
 * (nanoseconds), and CPU and server-statistics deltas (negative when unknown). Immutable once built;
 * the histogram must not be changed after construction.
 *
 * @param rejected the part of {@code errors} the server refused for load (RESOURCE_EXHAUSTED, UNAVAILABLE)
 * @param rowsPerRequest the batch size of each request, to turn requests into inferences
 * @param scheduleNanos open loop: how far the send schedule advanced (intended time of the next
 *     unsent request, end minus start); -1 in closed loop. Equal to {@code wallNanos} (within a gap)
 *     when the client kept up; the achieved send rate over the offered one is their ratio.
 * @param sendLagNanos open loop: how far behind its schedule the sender was at the window's end
 *     (the largest over merged windows); -1 in closed loop
 * @param inflightStalls open loop: times the sender found the in-flight limit reached (then the lag
 *     is the server's doing, not the client's); 0 in closed loop
 * @param clientBoundWindows how many of the windows were client-bound ({@link #isClientBound})
 * @param serverAllocatedBytes bytes the server's Java threads allocated in the window ({@link ServerProbe}); -1 unknown
 * @param serverContextSwitches context switches of the server's threads in the window; -1 unknown
 */
public record WindowResult(long wallNanos, long sent, long completed, long errors, long rejected, Histogram latencyNanos,
    long serverCpuNanos, long clientCpuNanos, long inferenceCountDelta, long executionCountDelta,
    int rowsPerRequest, long scheduleNanos, long sendLagNanos, long inflightStalls, int clientBoundWindows,
    long serverAllocatedBytes, long serverContextSwitches) {

  /** Below this fraction of the offered rate (schedule time covered per wall time), the client fell behind. */
  public static final double CLIENT_BOUND_SEND_FRACTION = 0.95;
  /** A sender behind its schedule by more than this fraction of the window at its end is client-bound too. */
  public static final double CLIENT_BOUND_LAG_FRACTION = 0.05;

  /** A closed-loop window (no send schedule). */
  public WindowResult(long wallNanos, long sent, long completed, long errors, long rejected, Histogram latencyNanos,
      long serverCpuNanos, long clientCpuNanos, long inferenceCountDelta, long executionCountDelta, int rowsPerRequest) {
    this(wallNanos, sent, completed, errors, rejected, latencyNanos, serverCpuNanos, clientCpuNanos, inferenceCountDelta,
        executionCountDelta, rowsPerRequest, -1, -1, 0, 0, -1, -1);
  }

  /** This window with the server's allocation and context-switch counts (-1 = unknown). */
  public WindowResult withServerCounters(long allocatedBytes, long contextSwitches) {
    return new WindowResult(wallNanos, sent, completed, errors, rejected, latencyNanos, serverCpuNanos, clientCpuNanos,
        inferenceCountDelta, executionCountDelta, rowsPerRequest, scheduleNanos, sendLagNanos, inflightStalls,
        clientBoundWindows, allocatedBytes, contextSwitches);
  }

  /** An open-loop window, judged client-bound or not by {@link #isClientBound}. */
  public static WindowResult open(long wallNanos, long sent, long completed, long errors, long rejected,
      Histogram latencyNanos, long serverCpuNanos, long clientCpuNanos, long inferenceCountDelta,
      long executionCountDelta, int rowsPerRequest, long scheduleNanos, long sendLagNanos, long inflightStalls) {
    boolean bound = isClientBound(wallNanos, scheduleNanos, sendLagNanos, inflightStalls);
    return new WindowResult(wallNanos, sent, completed, errors, rejected, latencyNanos, serverCpuNanos, clientCpuNanos,
        inferenceCountDelta, executionCountDelta, rowsPerRequest, scheduleNanos, sendLagNanos, inflightStalls,
        bound ? 1 : 0, -1, -1);
  }

  /**
   * The client-bound rule for one open-loop window: the sender fell behind its schedule by itself
   * (it covered less than {@value #CLIENT_BOUND_SEND_FRACTION} of the window's time, or ended it
   * behind by more than {@value #CLIENT_BOUND_LAG_FRACTION} of it) while the in-flight limit never
   * held it back. Such a window's latencies include the client's own backlog: not a server
   * measurement.
   */
  public static boolean isClientBound(long wallNanos, long scheduleNanos, long sendLagNanos, long inflightStalls) {
    if (scheduleNanos < 0 || wallNanos <= 0 || inflightStalls > 0) {
      return false;
    }
    return scheduleNanos < CLIENT_BOUND_SEND_FRACTION * wallNanos || sendLagNanos > CLIENT_BOUND_LAG_FRACTION * wallNanos;
  }

  /** Open loop: achieved send rate / offered rate (schedule time covered per wall time); NaN in closed loop. */
  public double sendRateRatio() {
    return scheduleNanos < 0 || wallNanos <= 0 ? Double.NaN : (double) scheduleNanos / wallNanos;
  }

  public boolean clientBound() {
    return clientBoundWindows > 0;
  }

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
    long schedule = 0;
    long lag = 0;
    long stalls = 0;
    int bound = 0;
    long allocated = 0;
    long switches = 0;
    for (WindowResult w : windows) {
      allocated = allocated < 0 || w.serverAllocatedBytes < 0 ? -1 : allocated + w.serverAllocatedBytes;
      switches = switches < 0 || w.serverContextSwitches < 0 ? -1 : switches + w.serverContextSwitches;
      schedule = schedule < 0 || w.scheduleNanos < 0 ? -1 : schedule + w.scheduleNanos;
      lag = lag < 0 || w.sendLagNanos < 0 ? -1 : Math.max(lag, w.sendLagNanos);
      stalls += w.inflightStalls;
      bound += w.clientBoundWindows;
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
    return new WindowResult(wall, sent, completed, errors, rejected, all, server, client, inferences, executions, rows,
        schedule, lag, stalls, bound, windows.isEmpty() ? -1 : allocated, windows.isEmpty() ? -1 : switches);
  }
}
