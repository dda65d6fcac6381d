package io.quiver.bench.perf;

/** The arithmetic behind the reported rates; kept in one place so it is tested once. */
public final class Rates {
  private Rates() {}

  /** Events per second over {@code nanos}; NaN for an empty interval. */
  public static double perSecond(long events, long nanos) {
    return nanos <= 0 ? Double.NaN : events * 1e9 / nanos;
  }

  /** CPU microseconds per request; NaN when unknown (negative CPU) or when nothing completed. */
  public static double cpuMicrosPerRequest(long cpuNanos, long requests) {
    return cpuNanos < 0 || requests <= 0 ? Double.NaN : cpuNanos / 1e3 / requests;
  }

  /** Cores busy on average: CPU time over wall time; NaN when unknown. */
  public static double coresUsed(long cpuNanos, long wallNanos) {
    return cpuNanos < 0 || wallNanos <= 0 ? Double.NaN : (double) cpuNanos / wallNanos;
  }

  /** Inferences (rows) per CPU-second; NaN when unknown. */
  public static double perCpuSecond(long inferences, long cpuNanos) {
    return cpuNanos <= 0 ? Double.NaN : inferences * 1e9 / cpuNanos;
  }

  /** Mean formed batch: rows executed per execution (ModelStatistics deltas); NaN without executions. */
  public static double meanBatch(long inferenceDelta, long executionDelta) {
    return executionDelta <= 0 ? Double.NaN : (double) inferenceDelta / executionDelta;
  }
}
