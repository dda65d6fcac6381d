package io.quiver.batching;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * For {@code preserve_ordering}: completes batches in the order the agent dispatched them, whichever
 * instance finishes first. Lock-free combining: the worker that finishes a batch tries to become the
 * drainer (a CAS on {@code draining}); the drainer completes every consecutive finished batch from
 * {@code next} on; a worker that loses the CAS leaves its batch for the drainer, who re-checks after
 * releasing, so no finished batch is left behind.
 */
final class CompletionSequencer {
  private final AtomicReferenceArray<Batch> slots; // indexed by sequence & mask; the agent registers, workers read
  private final int mask;
  private final AtomicBoolean draining = new AtomicBoolean();
  private final DynamicBatcher batcher;
  private volatile long next; // written only by the drainer; volatile so a losing worker's re-check reads it fresh

  /** @param maxOutstanding the number of batch objects, an upper bound on batches between dispatch and completion */
  CompletionSequencer(DynamicBatcher batcher, int maxOutstanding) {
    int size = Integer.highestOneBit(Math.max(1, maxOutstanding) - 1 | 1) << 1;
    this.slots = new AtomicReferenceArray<>(size);
    this.mask = size - 1;
    this.batcher = batcher;
  }

  /** Agent thread, at dispatch, before the batch is published to its worker. */
  void register(Batch batch) {
    // The slot is free: its previous batch (sequence - size) completed before its Batch object came
    // back to the agent's free pool, and at most `size` batch objects exist.
    slots.set((int) batch.sequence & mask, batch);
  }

  /** Worker thread, after the batch's outputs or failure are set. */
  void finished(Batch batch) {
    batch.finished = true; // volatile write before the CAS below: a drainer that releases after our failed CAS sees it
    while (draining.compareAndSet(false, true)) {
      try {
        for (;;) {
          long seq = next;
          Batch b = slots.get((int) seq & mask);
          if (b == null || b.sequence != seq || !b.finished) {
            break;
          }
          slots.set((int) seq & mask, null);
          next = seq + 1;
          batcher.completeBatch(b);
        }
      } finally {
        draining.set(false);
      }
      long seq = next;
      Batch b = slots.get((int) seq & mask);
      if (b == null || b.sequence != seq || !b.finished) {
        return; // nothing ready; whoever finishes `seq` will drain
      }
    }
  }
}
