package io.quiver.batching;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * For {@code preserve_ordering}: completes batches in the order they were dispatched, whichever
 * instance finishes first. Lock-free combining: the thread that finishes a batch tries to become the
 * drainer (a CAS on {@code draining}); the drainer completes every consecutive finished batch from
 * {@code next} on; a thread that loses the CAS leaves its batch for the drainer, who re-checks after
 * releasing, so no finished batch is left behind.
 */
final class CompletionSequencer {
  private final AtomicReferenceArray<Batch> slots; // indexed by sequence & mask; the dispatch owner registers, finishing threads read
  private final int mask;
  private final AtomicBoolean draining = new AtomicBoolean();
  private final DynamicBatcher batcher;
  private volatile long next; // written only by the drainer; volatile so a losing thread's re-check reads it fresh

  /** @param maxOutstanding the number of batch objects, an upper bound on batches between dispatch and completion */
  CompletionSequencer(DynamicBatcher batcher, int maxOutstanding) {
    int size = Integer.highestOneBit(Math.max(1, maxOutstanding) - 1 | 1) << 1;
    this.slots = new AtomicReferenceArray<>(size);
    this.mask = size - 1;
    this.batcher = batcher;
  }

  /** Dispatch owner, at dispatch, before the batch is published to the thread that runs it. */
  void register(Batch batch) {
    // The slot is free: its previous batch (sequence - size) completed before its Batch object could
    // be taken again, and at most `size` batch objects exist.
    slots.set((int) batch.sequence & mask, batch);
  }

  /** The thread that ran {@code batch}, after its outputs or failure are set. */
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
          batcher.completeBatch(b, b != batch);
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
