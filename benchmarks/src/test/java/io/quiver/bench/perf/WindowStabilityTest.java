package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

class WindowStabilityTest {
  @Test
  void fewerThanThreeWindows_isNeverStable() {
    assertThat(WindowStability.isStable(windows(1000, 1000), 0.10)).isFalse();
  }

  @Test
  void lastThreeWithinTenPercentOfTheirMean_isStable() {
    assertThat(WindowStability.isStable(windows(100, 1000, 1050, 960), 0.10)).isTrue();
  }

  @Test
  void oneWindowOffByMoreThanTenPercent_isNotStable() {
    assertThat(WindowStability.isStable(windows(1000, 1000, 1300), 0.10)).isFalse();
  }

  @Test
  void latencyMustAgreeToo() {
    List<WindowResult> w = new ArrayList<>(windows(1000, 1000));
    w.add(window(1000, 500_000)); // same throughput, p50 5x higher
    assertThat(WindowStability.isStable(w, 0.10)).isFalse();
  }

  @Test
  void agree_edgeCases() {
    assertThat(WindowStability.agree(new double[] {90, 100, 110}, 0.10)).isTrue();
    assertThat(WindowStability.agree(new double[] {89, 100, 111}, 0.10)).isFalse();
    assertThat(WindowStability.agree(new double[] {Double.NaN, 1, 1}, 0.10)).isFalse();
    assertThat(WindowStability.agree(new double[] {0, 0, 0}, 0.10)).isFalse();
  }

  private static List<WindowResult> windows(long... completions) {
    List<WindowResult> list = new ArrayList<>();
    for (long c : completions) {
      list.add(window(c, 100_000));
    }
    return list;
  }

  private static WindowResult window(long completed, long latencyNanos) {
    Histogram h = LatencyStats.newHistogram();
    h.recordValueWithCount(latencyNanos, 10);
    return new WindowResult(1_000_000_000L, completed, completed, 0, 0, h, -1, -1, -1, -1, 1);
  }
}
