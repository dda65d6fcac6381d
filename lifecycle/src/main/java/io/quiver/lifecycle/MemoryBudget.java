package io.quiver.lifecycle;

import java.util.Arrays;

/**
 * The memory accounting of loaded versions against an optional budget. Counts three amounts: what
 * loaded versions hold until their instances close ({@code resident}), what loads under way expect
 * to need ({@code reserved}, their estimates), and what models claimed for eviction hold until they
 * close ({@code evicting}, already counted in resident; it tells a second load not to evict for room
 * that is about to come back). A load reserves before it opens anything and trades its reservation
 * for its measured cost once loaded.
 *
 * <p>Estimates for a version never loaded before are its files' size times the median ratio of
 * measured cost to files' size over the last {@value #RATIO_WINDOW} loads in this process (at least
 * 1), so later first loads learn from earlier ones. The median, not the mean: a resident-growth
 * measurement swings by megabytes from one load of the same model to the next (the allocator reuses
 * pages, or does not), and one outlier must not make every later guess too large to fit. A load that
 * measures more than its estimate is corrected after it loaded (the manager evicts others, or takes
 * it back). Thread-safe: every method holds this object's monitor, which is also what
 * {@link #awaitChange} waits on; nothing blocks while holding it.
 */
final class MemoryBudget {
  /** Budget value meaning "no budget": everything fits. */
  static final long UNLIMITED = Long.MAX_VALUE;

  final long limit;
  private long resident;
  private long reserved;
  private long evicting;
  /** Measured cost / files' size of the last loads, a ring of {@value #RATIO_WINDOW}. */
  private final double[] ratios = new double[RATIO_WINDOW];
  private long ratioCount;

  static final int RATIO_WINDOW = 32;

  MemoryBudget(long limit) {
    this.limit = limit <= 0 ? UNLIMITED : limit;
  }

  boolean enabled() {
    return limit != UNLIMITED;
  }

  /** The bytes to reserve for a version: what it measured last time, else its files scaled by the learned ratio. */
  synchronized long estimate(long fileBytes, Long measuredBefore) {
    if (measuredBefore != null) {
      return Math.max(fileBytes, measuredBefore);
    }
    double ratio = Math.max(1.0, medianRatio());
    double scaled = Math.ceil(fileBytes * ratio);
    return scaled >= Long.MAX_VALUE ? Long.MAX_VALUE : Math.max(fileBytes, (long) scaled);
  }

  /** Reserves {@code bytes} when they fit beside what is resident and reserved. */
  synchronized boolean tryReserve(long bytes) {
    if (!enabled()) {
      reserved += bytes;
      return true;
    }
    if (bytes <= limit - resident - reserved) {
      reserved += bytes;
      return true;
    }
    return false;
  }

  /** How many bytes still have to be freed for {@code bytes} to fit, beyond evictions already under way; ≤ 0 when none. */
  synchronized long shortfall(long bytes) {
    return resident + reserved + bytes - limit - evicting;
  }

  /** How far resident plus reserved is over the limit (≤ 0 when within). */
  synchronized long overBy() {
    return enabled() ? resident + reserved - limit : Long.MIN_VALUE;
  }

  synchronized void evictionStarted(long bytes) {
    evicting += bytes;
  }

  synchronized void evictionEnded(long bytes) {
    evicting -= bytes;
    notifyAll();
  }

  /** A load finished: its reservation becomes its measured cost. */
  synchronized void loaded(long reservation, VersionMemory memory) {
    reserved -= reservation;
    resident += memory.bytes();
    if (memory.fileBytes() > 0) {
      ratios[(int) (ratioCount++ % RATIO_WINDOW)] = Math.min(64.0, (double) memory.bytes() / memory.fileBytes());
    }
    notifyAll();
  }

  /** Caller holds the monitor. The median of the ratios kept; 1 before any load measured one. */
  private double medianRatio() {
    int n = (int) Math.min(ratioCount, RATIO_WINDOW);
    if (n == 0) {
      return 1.0;
    }
    double[] sorted = Arrays.copyOf(ratios, n);
    Arrays.sort(sorted);
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  /** A load failed or was abandoned: its reservation is given back. */
  synchronized void cancelled(long reservation) {
    reserved -= reservation;
    notifyAll();
  }

  /** A loaded version's instances closed. */
  synchronized void released(long bytes) {
    resident -= bytes;
    notifyAll();
  }

  /** Bytes held by loaded versions that have not closed yet. */
  synchronized long resident() {
    return resident;
  }

  synchronized long reserved() {
    return reserved;
  }

  /** Waits up to {@code millis} for any change of the amounts (an eviction or load finishing). */
  synchronized void awaitChange(long millis) throws InterruptedException {
    wait(Math.max(1, millis));
  }
}
