package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

class RatesAndPercentilesTest {
  @Test
  void percentiles_ofUniformMicroseconds() {
    Histogram h = LatencyStats.newHistogram();
    for (int us = 1; us <= 10_000; us++) {
      h.recordValue(us * 1_000L); // nanoseconds
    }
    LatencyStats s = LatencyStats.of(h);
    assertThat(s.count()).isEqualTo(10_000);
    // 3 significant digits: values within 0.1%.
    assertThat(s.p50Us()).isCloseTo(5_000, within(5.0));
    assertThat(s.p90Us()).isCloseTo(9_000, within(9.0));
    assertThat(s.p99Us()).isCloseTo(9_900, within(10.0));
    assertThat(s.p999Us()).isCloseTo(9_990, within(10.0));
    assertThat(s.meanUs()).isCloseTo(5_000.5, within(5.0));
  }

  @Test
  void emptyHistogram_givesNaNNotZero() {
    LatencyStats s = LatencyStats.of(LatencyStats.newHistogram());
    assertThat(s.count()).isZero();
    assertThat(s.p99Us()).isNaN();
  }

  @Test
  void rates() {
    assertThat(Rates.perSecond(5_000, 2_000_000_000L)).isEqualTo(2_500.0);
    assertThat(Rates.perSecond(5, 0)).isNaN();
    assertThat(Rates.cpuMicrosPerRequest(20_000_000L, 1_000)).isEqualTo(20.0);
    assertThat(Rates.cpuMicrosPerRequest(-1, 1_000)).isNaN();
    assertThat(Rates.cpuMicrosPerRequest(5, 0)).isNaN();
    assertThat(Rates.coresUsed(1_500_000_000L, 1_000_000_000L)).isEqualTo(1.5);
    assertThat(Rates.perCpuSecond(24_000, 500_000_000L)).isEqualTo(48_000.0);
    assertThat(Rates.meanBatch(640, 20)).isEqualTo(32.0);
    assertThat(Rates.meanBatch(640, 0)).isNaN();
  }

  @Test
  void mergedWindows_sumCountsAndCombineHistograms() {
    WindowResult a = window(1_000_000_000L, 1000, 100, 10_000_000L);
    WindowResult b = window(1_000_000_000L, 3000, 300, 30_000_000L);
    WindowResult merged = WindowResult.merge(List.of(a, b));
    assertThat(merged.completed()).isEqualTo(4000);
    assertThat(merged.throughput()).isEqualTo(2000.0);
    assertThat(merged.latencyNanos().getTotalCount()).isEqualTo(400);
    assertThat(merged.serverCpuNanos()).isEqualTo(40_000_000L);
    assertThat(Rates.meanBatch(merged.inferenceCountDelta(), merged.executionCountDelta())).isEqualTo(4.0);
  }

  @Test
  void mergedWindows_unknownCpuStaysUnknown() {
    WindowResult known = window(1_000_000_000L, 10, 1, 5);
    WindowResult unknown = new WindowResult(1, 1, 1, 0, 0, LatencyStats.newHistogram(), -1, -1, -1, -1, 1);
    assertThat(WindowResult.merge(List.of(known, unknown)).serverCpuNanos()).isEqualTo(-1);
  }

  private static WindowResult window(long nanos, long completed, int latencies, long serverCpu) {
    Histogram h = LatencyStats.newHistogram();
    for (int i = 0; i < latencies; i++) {
      h.recordValue(100_000);
    }
    return new WindowResult(nanos, completed, completed, 0, 0, h, serverCpu, serverCpu, completed, completed / 4, 1);
  }

  @Test
  void procStat_fieldsCountedFromTheLastParenthesis() {
    String stat = "1234 (java (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 40 0 12345";
    assertThat(CpuClock.parseStatTicks(stat)).isEqualTo(325);
  }

  @Test
  void selfCpu_isReadable() {
    assertThat(CpuClock.selfCpuNanos()).isPositive();
    assertThat(CpuClock.processCpuNanos(ProcessHandle.current().pid())).isGreaterThanOrEqualTo(0);
    assertThat(CpuClock.processCpuNanos(Long.MAX_VALUE)).isEqualTo(-1);
  }
}
