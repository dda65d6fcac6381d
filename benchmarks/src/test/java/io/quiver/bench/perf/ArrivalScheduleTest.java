package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.quiver.bench.perf.ArrivalSchedule.Distribution;
import org.junit.jupiter.api.Test;

class ArrivalScheduleTest {
  @Test
  void constant_isEvenlySpacedFromZero() {
    ArrivalSchedule s = new ArrivalSchedule(Distribution.CONSTANT, 1000, 1);
    assertThat(s.nextOffsetNanos()).isZero();
    assertThat(s.nextOffsetNanos()).isEqualTo(1_000_000);
    assertThat(s.nextOffsetNanos()).isEqualTo(2_000_000);
    for (int i = 3; i < 1_000_000; i++) {
      s.nextOffsetNanos();
    }
    assertThat(s.nextOffsetNanos()).isEqualTo(1_000_000L * 1_000_000L); // no drift after a million
  }

  @Test
  void poisson_sameSeedSameTimes_otherSeedOtherTimes() {
    ArrivalSchedule a = new ArrivalSchedule(Distribution.POISSON, 5000, 42);
    ArrivalSchedule b = new ArrivalSchedule(Distribution.POISSON, 5000, 42);
    ArrivalSchedule c = new ArrivalSchedule(Distribution.POISSON, 5000, 43);
    boolean differs = false;
    for (int i = 0; i < 1000; i++) {
      long x = a.nextOffsetNanos();
      assertThat(b.nextOffsetNanos()).isEqualTo(x);
      differs |= c.nextOffsetNanos() != x;
    }
    assertThat(differs).isTrue();
  }

  @Test
  void poisson_gapsAreExponentialWithTheRequestedMean() {
    double rate = 2000;
    ArrivalSchedule s = new ArrivalSchedule(Distribution.POISSON, rate, 7);
    int n = 200_000;
    double sum = 0;
    double sumSq = 0;
    long previous = 0;
    long shortGaps = 0;
    double mean = 1e9 / rate;
    for (int i = 0; i < n; i++) {
      long offset = s.nextOffsetNanos();
      long gap = offset - previous;
      assertThat(gap).isGreaterThanOrEqualTo(0);
      previous = offset;
      sum += gap;
      sumSq += (double) gap * gap;
      if (gap < mean) {
        shortGaps++;
      }
    }
    double m = sum / n;
    double sd = Math.sqrt(sumSq / n - m * m);
    assertThat(m / mean).isCloseTo(1.0, within(0.01));
    assertThat(sd / m).isCloseTo(1.0, within(0.02)); // exponential: coefficient of variation 1
    assertThat((double) shortGaps / n).isCloseTo(1 - Math.exp(-1), within(0.01)); // P(gap < mean) = 1 - 1/e
  }

  @Test
  void rateMustBePositive() {
    assertThatThrownBy(() -> new ArrivalSchedule(Distribution.POISSON, 0, 1)).hasMessageContaining("rate");
  }
}
