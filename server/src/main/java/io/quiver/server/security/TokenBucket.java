package io.quiver.server.security;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A token bucket of {@code burst} tokens refilled at {@code ratePerSecond}, kept as one number: the
 * "theoretical arrival time" of the generic cell rate algorithm (GCRA). Taking a token is a CAS loop on
 * one AtomicLong: lock-free, no allocation. Thread-safe.
 */
public final class TokenBucket {
  private final long intervalNanos;
  private final long burstNanos;
  /** The time at which the bucket would be full again; starts in the past (a full bucket). */
  private final AtomicLong tat;

  public TokenBucket(double ratePerSecond, int burst) {
    if (!(ratePerSecond > 0) || burst < 1) {
      throw new IllegalArgumentException("rate must be > 0 and burst ≥ 1; were " + ratePerSecond + ", " + burst);
    }
    this.intervalNanos = Math.max(1, (long) (1e9 / ratePerSecond));
    this.burstNanos = intervalNanos * burst;
    this.tat = new AtomicLong(System.nanoTime() - burstNanos);
  }

  /**
   * Takes one token. Returns 0 when taken, else how many nanoseconds until one will be available
   * (the caller's Retry-After).
   */
  public long tryAcquire(long nowNanos) {
    while (true) {
      long t = tat.get();
      long base = t - nowNanos < 0 ? nowNanos : t; // an idle bucket does not bank more than `burst` tokens
      long next = base + intervalNanos;
      long ahead = next - nowNanos; // how far the bucket is "in debt" after taking this token
      if (ahead > burstNanos) {
        return ahead - burstNanos;
      }
      if (tat.compareAndSet(t, next)) {
        return 0;
      }
    }
  }
}
