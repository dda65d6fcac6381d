package io.quiver.bench.perf;

import java.util.List;

/**
 * When to stop measuring: the last {@value #WINDOWS} windows agree, i.e. each one's throughput and
 * each one's p50 latency lie within {@code tolerance} (0.10 = 10%) of the mean of those windows —
 * perf_analyzer's rule. Stateless.
 */
public final class WindowStability {
  /** How many trailing windows must agree. */
  public static final int WINDOWS = 3;

  private WindowStability() {}

  /** True when there are at least {@value #WINDOWS} windows and the last ones agree. */
  public static boolean isStable(List<WindowResult> windows, double tolerance) {
    if (windows.size() < WINDOWS) {
      return false;
    }
    List<WindowResult> last = windows.subList(windows.size() - WINDOWS, windows.size());
    double[] throughput = new double[WINDOWS];
    double[] p50 = new double[WINDOWS];
    for (int i = 0; i < WINDOWS; i++) {
      throughput[i] = last.get(i).throughput();
      p50[i] = last.get(i).latency().p50Us();
    }
    return agree(throughput, tolerance) && agree(p50, tolerance);
  }

  /** Every value within {@code tolerance} of the mean; false for NaN or a zero mean. */
  public static boolean agree(double[] values, double tolerance) {
    double sum = 0;
    for (double v : values) {
      if (Double.isNaN(v)) {
        return false;
      }
      sum += v;
    }
    double mean = sum / values.length;
    if (mean <= 0) {
      return false;
    }
    for (double v : values) {
      if (Math.abs(v - mean) > tolerance * mean) {
        return false;
      }
    }
    return true;
  }
}
