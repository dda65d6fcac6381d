package io.quiver.batching;

import java.util.concurrent.locks.LockSupport;

/**
 * Spins, then yields, then parks for doubling periods from {@code minParkNanos} up to the limit the
 * agent passes in. Not thread-safe: one instance per agent. The default spins and yields little,
 * because on a machine with few cores a spinning agent steals CPU from the runners.
 */
public final class BackoffIdleStrategy implements AgentIdleStrategy {
  public static final int DEFAULT_MAX_SPINS = 16;
  public static final int DEFAULT_MAX_YIELDS = 4;
  public static final long DEFAULT_MIN_PARK_NS = 1_000L;

  private final int maxSpins;
  private final int maxYields;
  private final long minParkNanos;
  private int spins;
  private int yields;
  private long parkNanos;

  public BackoffIdleStrategy() {
    this(DEFAULT_MAX_SPINS, DEFAULT_MAX_YIELDS, DEFAULT_MIN_PARK_NS);
  }

  public BackoffIdleStrategy(int maxSpins, int maxYields, long minParkNanos) {
    if (maxSpins < 0 || maxYields < 0 || minParkNanos < 1) {
      throw new IllegalArgumentException("spins and yields must be >= 0 and minParkNanos >= 1");
    }
    this.maxSpins = maxSpins;
    this.maxYields = maxYields;
    this.minParkNanos = minParkNanos;
    this.parkNanos = minParkNanos;
  }

  @Override
  public void idle(int workCount, long maxParkNanos) {
    if (workCount > 0) {
      reset();
      return;
    }
    if (spins < maxSpins) {
      spins++;
      Thread.onSpinWait();
    } else if (yields < maxYields) {
      yields++;
      Thread.yield();
    } else {
      LockSupport.parkNanos(Math.min(parkNanos, maxParkNanos));
      parkNanos = Math.min(parkNanos << 1, Long.MAX_VALUE >> 2);
    }
  }

  @Override
  public void reset() {
    spins = 0;
    yields = 0;
    parkNanos = minParkNanos;
  }
}
