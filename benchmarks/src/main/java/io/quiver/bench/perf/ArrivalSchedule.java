package io.quiver.bench.perf;

import java.util.SplittableRandom;

/**
 * Intended send times of an open-loop load: constant spacing or a Poisson process (exponential
 * gaps) at a given mean rate. The times are fixed in advance of the sends, so latency measured from
 * them includes any time a request spent waiting to be sent (coordinated omission corrected).
 *
 * <p>Not thread-safe: one sender thread owns a schedule. Seeded: the same seed gives the same times.
 */
public final class ArrivalSchedule {
  /** How requests are spaced. */
  public enum Distribution { CONSTANT, POISSON }

  private final Distribution distribution;
  private final double meanGapNanos;
  private final SplittableRandom random;
  private double offsetNanos;
  private long count;

  /**
   * @param ratePerSecond mean requests per second, > 0
   * @param seed seed of the Poisson gaps (ignored for constant spacing)
   */
  public ArrivalSchedule(Distribution distribution, double ratePerSecond, long seed) {
    if (!(ratePerSecond > 0) || Double.isInfinite(ratePerSecond)) {
      throw new IllegalArgumentException("request rate must be a positive number; was " + ratePerSecond);
    }
    this.distribution = distribution;
    this.meanGapNanos = 1e9 / ratePerSecond;
    this.random = new SplittableRandom(seed);
  }

  /**
   * Offset of the next request from the start of the schedule, in nanoseconds. The first request
   * is at offset 0 for constant spacing and after one exponential gap for Poisson.
   */
  public long nextOffsetNanos() {
    if (distribution == Distribution.CONSTANT) {
      // Multiplying (not accumulating) keeps long runs free of drift.
      return (long) (count++ * meanGapNanos);
    }
    // Inverse-CDF sampling of Exp(1/mean); 1 - u is in (0, 1], so the log is finite.
    offsetNanos += -Math.log(1.0 - random.nextDouble()) * meanGapNanos;
    count++;
    return (long) offsetNanos;
  }

  /** Requests scheduled so far. */
  public long count() {
    return count;
  }

  public double meanGapNanos() {
    return meanGapNanos;
  }
}
