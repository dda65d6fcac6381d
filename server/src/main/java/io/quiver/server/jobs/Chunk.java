package io.quiver.server.jobs;

import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Up to {@code capacity} consecutive records of a job, the unit of output commit. Slots are filled by
 * whichever thread finishes each record (a runner thread, or the reader for records that failed to
 * decode); the thread whose completion brings {@link #remaining} to zero hands the chunk to the
 * committer. Each slot is written once, before that slot's decrement of {@link #remaining} (a
 * volatile read-modify-write), so the committer, which acts after the last decrement, sees every slot.
 */
final class Chunk {
  /** A record's answer: the model's outputs. */
  record Success(String model, String version, String id, Tensor[] outputs) {}

  /** A record that failed, with its position for the failures file. */
  record Failure(String id, long line, InferenceException error) {}

  final long index;
  final int capacity;
  final Object[] results;
  final AtomicInteger remaining;
  /** Records in the chunk: capacity, or fewer for the input's last chunk (set before it is sealed). */
  volatile int size;
  // Where the input continues after this chunk's last record (written by the reader before it submits
  // that record, so before the chunk can be complete).
  long endOffset;
  long endLine;

  Chunk(long index, int capacity) {
    this.index = index;
    this.capacity = capacity;
    this.results = new Object[capacity];
    this.remaining = new AtomicInteger(capacity);
    this.size = capacity;
  }

  /** Stores a slot's result; true when this completion finished the chunk. Any thread, once per slot. */
  boolean complete(int slot, Object result) {
    results[slot] = result;
    return remaining.decrementAndGet() == 0;
  }

  /**
   * The input ended after {@code records} records of this chunk (fewer than its capacity): true when
   * every one of them had already completed, so the caller hands the chunk on. Reader thread, once.
   */
  boolean seal(int records) {
    size = records;
    return remaining.addAndGet(records - capacity) == 0;
  }

  boolean isComplete() {
    return remaining.get() == 0;
  }
}
