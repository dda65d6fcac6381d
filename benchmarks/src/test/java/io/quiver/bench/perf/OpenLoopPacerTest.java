package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.bench.perf.ArrivalSchedule.Distribution;
import java.util.ArrayList;
import java.util.List;
import org.HdrHistogram.Histogram;
import org.junit.jupiter.api.Test;

/** The open-loop pacer and the client-bound rule, on a fake clock: no timing, no threads. */
class OpenLoopPacerTest {
  private static final long T0 = 1_000_000_000L;
  private static final long MS = 1_000_000L;

  @Test
  void sendDue_sendsEveryDueRequestInOneBurst_withItsScheduledTime() {
    OpenLoopPacer pacer = new OpenLoopPacer(new ArrivalSchedule(Distribution.CONSTANT, 1000, 1), T0);
    List<Long> sent = new ArrayList<>();
    assertThat(pacer.sendDue(T0 + 4 * MS + 1, 64, sent::add)).isEqualTo(5); // offsets 0..4 ms are due
    assertThat(sent).containsExactly(T0, T0 + MS, T0 + 2 * MS, T0 + 3 * MS, T0 + 4 * MS);
    assertThat(pacer.nextIntendedNanos()).isEqualTo(T0 + 5 * MS); // the one wake-up to schedule next
    assertThat(pacer.sendDue(T0 + 5 * MS - 1, 64, sent::add)).isZero();
  }

  @Test
  void sendDue_respectsTheBurstLimit_andKeepsTheRestDue() {
    OpenLoopPacer pacer = new OpenLoopPacer(new ArrivalSchedule(Distribution.CONSTANT, 1000, 1), T0);
    List<Long> sent = new ArrayList<>();
    long now = T0 + 99 * MS;
    assertThat(pacer.sendDue(now, 64, sent::add)).isEqualTo(64);
    assertThat(pacer.isDue(now)).isTrue();
    assertThat(pacer.sendDue(now, 64, sent::add)).isEqualTo(36);
    assertThat(pacer.isDue(now)).isFalse();
    // Late sends keep their intended times: latency from them stays corrected for coordinated omission.
    assertThat(sent.get(99)).isEqualTo(T0 + 99 * MS);
  }

  @Test
  void poissonPacing_handsOutTheScheduleUnchanged() {
    ArrivalSchedule reference = new ArrivalSchedule(Distribution.POISSON, 5000, 42);
    OpenLoopPacer pacer = new OpenLoopPacer(new ArrivalSchedule(Distribution.POISSON, 5000, 42), T0);
    List<Long> sent = new ArrayList<>();
    for (long now = T0; sent.size() < 1000; now += 137_000) { // wake-ups unrelated to the schedule
      pacer.sendDue(now, 64, sent::add);
    }
    for (int i = 0; i < 1000; i++) {
      assertThat(sent.get(i)).isEqualTo(T0 + reference.nextOffsetNanos());
    }
  }

  @Test
  void frontier_showsTheLag_andRebaseDropsIt() {
    OpenLoopPacer pacer = new OpenLoopPacer(new ArrivalSchedule(Distribution.CONSTANT, 1000, 1), T0);
    List<Long> sent = new ArrayList<>();
    pacer.sendDue(T0 + 10 * MS, 5, sent::add); // a slow client: only 5 of 11 due requests went out
    assertThat(pacer.publishedFrontierNanos()).isEqualTo(T0 + 5 * MS);
    assertThat(pacer.lagNanos(T0 + 10 * MS)).isEqualTo(5 * MS);
    assertThat(pacer.rebase(T0 + 10 * MS)).isEqualTo(5 * MS);
    assertThat(pacer.lagNanos(T0 + 10 * MS)).isZero();
    assertThat(pacer.nextIntendedNanos()).isEqualTo(T0 + 10 * MS);
    pacer.sendDue(T0 + 11 * MS, 64, sent::add);
    assertThat(sent.subList(5, sent.size())).containsExactly(T0 + 10 * MS, T0 + 11 * MS); // spacing kept
    assertThat(pacer.rebase(T0 + 11 * MS)).isZero(); // on time: nothing to drop
  }

  @Test
  void clientBound_whenTheSenderCoversLessThan95PercentOfTheWindow() {
    long w = 1000 * MS;
    assertThat(WindowResult.isClientBound(w, 999 * MS, 0, 0)).isFalse();
    assertThat(WindowResult.isClientBound(w, 940 * MS, 10 * MS, 0)).isTrue();
    // Behind by more than 5% of the window at its end, even if it kept pace during it.
    assertThat(WindowResult.isClientBound(w, w, 60 * MS, 0)).isTrue();
    // The in-flight limit held the sender back: the server's doing, not the client's.
    assertThat(WindowResult.isClientBound(w, 500 * MS, 500 * MS, 3)).isFalse();
    // Closed loop has no schedule.
    assertThat(WindowResult.isClientBound(w, -1, -1, 0)).isFalse();
  }

  @Test
  void clientBoundFlag_survivesMergingWindows_andReachesTheResultRow() {
    WindowResult good = WindowResult.open(1000 * MS, 1000, 1000, 0, 0, latencies(1000), -1, 5, -1, -1, 1, 1000 * MS, 0, 0);
    WindowResult behind = WindowResult.open(1000 * MS, 700, 700, 0, 0, latencies(700), -1, 5, -1, -1, 1, 700 * MS, 300 * MS, 0);
    assertThat(good.clientBound()).isFalse();
    assertThat(behind.clientBound()).isTrue();
    WindowResult merged = WindowResult.merge(List.of(good, behind));
    assertThat(merged.clientBound()).isTrue();
    assertThat(merged.sendRateRatio()).isEqualTo(0.85);
    assertThat(merged.sendLagNanos()).isEqualTo(300 * MS);
    PointResult r = new PointResult("rate", 1000, "poisson", false, merged, 2, true, 1700, 1700, 0, 0, 1700, "", latencies(0));
    assertThat(ResultFiles.row("", r)).containsEntry("client_bound", true).containsEntry("send_rate_ratio", 0.85);
    PointResult closed = new PointResult("concurrency", 4, "", false,
        new WindowResult(1000 * MS, 10, 10, 0, 0, latencies(10), -1, 5, -1, -1, 1), 1, true, 10, 10, 0, 0, 10, "", latencies(0));
    assertThat(closed.clientBound()).isFalse();
    assertThat(closed.measured().sendRateRatio()).isNaN();
  }

  @Test
  void rejectionLatency_isReportedInTheRow_andUnknownWithoutRejections() {
    WindowResult window = new WindowResult(1000 * MS, 30, 10, 20, 20, latencies(10), -1, 5, -1, -1, 1);
    Histogram refused = LatencyStats.newHistogram();
    for (int i = 1; i <= 20; i++) {
      refused.recordValue(i * 100_000L); // 0.1 .. 2 ms
    }
    PointResult r = new PointResult("rate", 30, "poisson", false, window, 1, true, 30, 10, 20, 20, 10, "", refused);
    assertThat(r.rejectionLatency().count()).isEqualTo(20);
    assertThat((Double) ResultFiles.row("", r).get("rejection_p99_us")).isCloseTo(2000.0, org.assertj.core.data.Offset.offset(5.0));
    PointResult none = new PointResult("rate", 30, "poisson", false, window, 1, true, 30, 10, 20, 20, 10, "", latencies(0));
    assertThat((Double) ResultFiles.row("", none).get("rejection_p99_us")).isNaN();
  }

  private static Histogram latencies(int n) {
    Histogram h = LatencyStats.newHistogram();
    for (int i = 0; i < n; i++) {
      h.recordValue(100_000);
    }
    return h;
  }
}
