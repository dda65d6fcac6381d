package io.quiver.bench.perf;

import org.HdrHistogram.Histogram;

/**
 * The latency figures we report, taken from a histogram of nanosecond values and given in
 * microseconds. Immutable.
 */
public record LatencyStats(long count, double meanUs, double p50Us, double p90Us, double p95Us, double p99Us,
    double p999Us, double maxUs) {

  /** Histograms record nanoseconds with this many significant digits (0.1% value error). */
  public static final int SIGNIFICANT_DIGITS = 3;

  /** A histogram for nanosecond latencies that grows as needed. */
  public static Histogram newHistogram() {
    Histogram histogram = new Histogram(SIGNIFICANT_DIGITS);
    histogram.setAutoResize(true);
    return histogram;
  }

  public static LatencyStats of(Histogram nanos) {
    if (nanos.getTotalCount() == 0) {
      return new LatencyStats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
    }
    return new LatencyStats(nanos.getTotalCount(), nanos.getMean() / 1e3, us(nanos, 50), us(nanos, 90),
        us(nanos, 95), us(nanos, 99), us(nanos, 99.9), nanos.getMaxValue() / 1e3);
  }

  private static double us(Histogram nanos, double percentile) {
    return nanos.getValueAtPercentile(percentile) / 1e3;
  }
}
