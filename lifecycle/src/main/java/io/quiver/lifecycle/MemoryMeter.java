package io.quiver.lifecycle;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Measures how much the process's resident set grows while a version's instances open and warm up,
 * less what the JVM's heap and direct buffers grew by in the same window (other threads' requests,
 * GC sizing): what is left is native memory, where runtimes keep sessions and weights. The growth is
 * only attributable to one version when no other version loads at the same time: with
 * {@code exclusive} (a memory budget is set) measured sections run one at a time, so every load gets
 * a figure; without it sections may overlap and an overlapped one reports -1 (the files' size and the
 * runtime's report then stand alone). Native allocations by other threads in the same window (a
 * runtime's arenas growing under traffic) still count: the figure errs on the high side. Thread-safe.
 */
final class MemoryMeter {
  private final ReentrantLock exclusive;
  private final AtomicInteger running = new AtomicInteger();
  private final AtomicLong started = new AtomicLong();

  MemoryMeter(boolean exclusive) {
    this.exclusive = exclusive ? new ReentrantLock() : null;
  }

  /** A measured section; {@link #end()} exactly once, on the thread that began it. */
  final class Section {
    private final long generation;
    private final boolean overlappedAtStart;
    private final long residentBefore;
    private final long jvmBefore;

    private Section() {
      if (exclusive != null) {
        exclusive.lock();
      }
      overlappedAtStart = running.getAndIncrement() > 0;
      generation = started.incrementAndGet();
      jvmBefore = jvmBytes();
      residentBefore = ProcessMemory.residentBytes();
    }

    /** The resident growth in bytes (≥ 0), or -1 when it cannot be attributed to this section. */
    long end() {
      long after = ProcessMemory.residentBytes();
      long jvmGrowth = Math.max(0, jvmBytes() - jvmBefore);
      boolean overlapped = overlappedAtStart || started.get() != generation;
      running.decrementAndGet();
      if (exclusive != null) {
        exclusive.unlock();
      }
      if (overlapped || residentBefore < 0 || after < 0) {
        return -1;
      }
      return Math.max(0, after - residentBefore - jvmGrowth);
    }
  }

  private static final java.lang.management.MemoryMXBean HEAP = java.lang.management.ManagementFactory.getMemoryMXBean();
  /** Looked up once: each lookup walks the platform's bean registry with a stream, a fifth of what measuring cost. */
  private static final List<java.lang.management.BufferPoolMXBean> BUFFER_POOLS = List.copyOf(
      java.lang.management.ManagementFactory.getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class));

  /** Committed heap plus direct and mapped buffer memory: what the JVM itself may have made resident. */
  private static long jvmBytes() {
    long bytes = HEAP.getHeapMemoryUsage().getCommitted();
    for (java.lang.management.BufferPoolMXBean pool : BUFFER_POOLS) {
      bytes += Math.max(0, pool.getMemoryUsed());
    }
    return bytes;
  }

  Section begin() {
    return new Section();
  }
}
