package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.bench.perf.ArrivalSchedule.Distribution;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

/**
 * A simulated open-loop run with virtual time: requests every 1 ms, a server that answers in 100 µs
 * but stalls once for 200 ms, and a client with room for one request in flight (so it cannot send
 * during the stall). Measured from the real send, the stall is one slow request among 1000; measured
 * from the intended send time (what {@link LoadGenerator} records), every request scheduled during
 * the stall waits for it, as users would.
 */
class CoordinatedOmissionTest {
  private static final long SERVICE_NS = 100_000;
  private static final long STALL_AT_NS = 300_000_000;
  private static final long STALL_NS = 200_000_000;

  @Test
  void latencyFromIntendedSendTime_countsTheWaitBehindAStall() {
    Histogram corrected = LatencyStats.newHistogram();
    Histogram naive = LatencyStats.newHistogram();
    ArrivalSchedule schedule = new ArrivalSchedule(Distribution.CONSTANT, 1000, 1);
    long serverFreeAt = 0;
    boolean stalled = false;
    for (int i = 0; i < 1000; i++) {
      long intended = schedule.nextOffsetNanos();
      long sent = Math.max(intended, serverFreeAt); // one in flight: wait for the previous answer
      long service = SERVICE_NS;
      if (!stalled && sent >= STALL_AT_NS) {
        service += STALL_NS;
        stalled = true;
      }
      long completed = sent + service;
      serverFreeAt = completed;
      corrected.recordValue(LoadGenerator.correctedLatencyNanos(intended, completed));
      naive.recordValue(completed - sent);
    }
    assertThat(corrected.getTotalCount()).isEqualTo(1000);
    // Naive: only the stalled request is slow, so p99 is the service time.
    assertThat(naive.getValueAtPercentile(99)).isLessThan(2 * SERVICE_NS);
    // Corrected: ≈200 requests were due during the stall; the p99 is most of the stall.
    assertThat(corrected.getValueAtPercentile(99)).isGreaterThan(STALL_NS / 2);
    assertThat(corrected.getValueAtPercentile(50)).isLessThan(2 * SERVICE_NS);
    assertThat(corrected.getMaxValue()).isGreaterThanOrEqualTo(STALL_NS);
  }
}
