package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.util.concurrent.Executor;
import org.jctools.queues.MpscArrayQueue;

/**
 * The pending requests of one model version and the rules that form them into batches (Triton's
 * dynamic_batching). Not thread-safe and owned by no thread in particular: whoever holds the batcher's
 * dispatch ownership (a transport thread after reading requests, a compute thread that just finished a
 * batch, a timer) runs one {@link #cycle} at a time; other threads reach it only through the per-level
 * MPSC request queues and the MPSC queue of finished batches.
 *
 * <p>Each cycle: take in finished batches (feeding the cost model and the adaptive controller); move
 * new requests from the MPSC queues into the per-level pending rings; when a deadline may have passed,
 * fail expired or cancelled requests (or move DELAY-policy ones to their level's delayed ring); then,
 * while an instance is ready, form a batch and hand it over. It never runs a model and allocates
 * nothing per request on the success path.
 */
final class BatchFormer {
  /** Longest stretch between two sweeps for cancelled requests while requests wait, in clock nanos. */
  static final long CANCEL_SWEEP_INTERVAL_NS = 10_000_000L;
  /** Requests moved from one MPSC queue per cycle, so one busy level cannot starve the others. */
  static final int DRAIN_LIMIT = 1024;
  /** Waits in a row that gained no partner before the adaptive queue delay stops waiting. */
  static final int FRUITLESS_WAITS_TO_SKIP = 4;
  /** While the delay is skipped, one formation in this many still waits (a probe). */
  static final int SKIP_PROBE_PERIOD = 128;
  private static final long NO_WAIT = Long.MIN_VALUE;
  /** Rounds smaller than this many rows are never split (see {@link #roundRows}). */
  static final int MIN_ROUND_TO_SPLIT = 4;

  private final DynamicBatcher batcher;
  private final BatchingPolicy policy;
  private final MpscArrayQueue<InferRequest>[] queues;
  private final PendingRing[] rings; // 2 per level: [2*l] main, [2*l+1] delayed; level index 0 = priority 1
  private final ModelInstance[] instances;
  private final MpscArrayQueue<Batch> finished;
  private final CompletionSequencer sequencer;
  private final AdaptiveBatchController controller;
  private final BatchCostModel cost;
  private final boolean dynamic;
  private final boolean adaptiveDelay;
  private final int[] preferred;

  private int pending;
  private int effectiveMaxRows;
  private long effectiveDelayNanos;
  private long nextExpiryNanos = Long.MAX_VALUE;
  private long nextWakeNanos = Long.MAX_VALUE;
  private long sequence;
  private int nextInstance;
  private boolean lastFormationFull;
  private volatile double avgBatchNanos; // read racily by producers for retry hints
  private long closingSinceRealNanos = -1;
  private int work;
  // adaptive queue delay (see sent())
  private long waitKey = NO_WAIT;
  private int waitStartRows;
  private int fruitlessWaits;
  private boolean skippingDelay;
  private int formationsSinceProbe;
  /**
   * Rows that waits which ran the whole queue delay gathered lately (moving average, weight 1/4; 0
   * before the first): the size of a round of the callers. A wait with a ready instance sends once it
   * holds half of that, so a round goes out as two batches and the callers start on the first half's
   * answers while the second half runs, instead of both sides taking turns (docs/batching.md).
   */
  private double roundRows;

  BatchFormer(DynamicBatcher batcher, MpscArrayQueue<InferRequest>[] queues, ModelInstance[] instances,
      MpscArrayQueue<Batch> finished, CompletionSequencer sequencer, AdaptiveBatchController controller,
      BatchCostModel cost) {
    this.batcher = batcher;
    this.policy = batcher.policy();
    this.queues = queues;
    this.instances = instances;
    this.finished = finished;
    this.sequencer = sequencer;
    this.controller = controller;
    this.cost = cost;
    this.dynamic = policy.dynamicBatching();
    this.adaptiveDelay = dynamic && policy.adaptiveQueueDelay();
    this.preferred = policy.preferredBatchSizes();
    // One pair of rings per queue level; the background level's pair is last, so form() and take(),
    // which walk the rings in order, reach background requests only after every configured level's.
    this.rings = new PendingRing[2 * policy.queueLevels()];
    for (int l = 0; l < policy.queueLevels(); l++) {
      int bound = policy.level(l + 1).maxQueueSize();
      rings[2 * l] = new PendingRing(bound);
      rings[2 * l + 1] = new PendingRing(bound);
    }
    this.effectiveMaxRows = dynamic ? policy.maxBatchRows() : 1;
    this.effectiveDelayNanos = policy.maxQueueDelayNanos();
  }

  /**
   * One dispatch cycle (dispatch owner only). Every batch formed is assigned to a ready instance; the
   * one chosen to run on the calling thread is returned, the others go to {@code compute}.
   *
   * @param self an instance the calling thread just finished with: it gets the first batch if ready
   *     (and that batch is returned, to run here), so a busy model keeps its compute thread
   * @param inlineHere whether a cheap batch may run on the calling thread (a transport thread)
   * @return the instance whose {@link ModelInstance#assigned} batch the caller runs now, or null
   */
  ModelInstance cycle(long now, ModelInstance self, boolean inlineHere, Executor compute) {
    work = 0;
    reclaim();
    drain(now);
    if (now >= nextExpiryNanos) {
      sweep(now);
    }
    return dispatch(now, self, inlineHere, compute);
  }

  /** Requests moved, failed or dispatched by the last cycle. */
  int lastWork() {
    return work;
  }

  /** True once closing and every accepted request has been answered. */
  boolean terminated() {
    return batcher.closing() && batcher.inFlightRequests() == 0 && pending == 0;
  }

  /** The next time a cycle has something to do without a new event (queue delay, deadline), or Long.MAX_VALUE. */
  long nextTimerNanos() {
    return pending == 0 ? Long.MAX_VALUE : Math.min(nextExpiryNanos, nextWakeNanos);
  }

  int pending() {
    return pending;
  }

  int effectiveMaxRows() {
    return effectiveMaxRows;
  }

  long effectiveDelayNanos() {
    return effectiveDelayNanos;
  }

  long dispatchedBatches() {
    return sequence;
  }

  double averageBatchNanos() {
    return avgBatchNanos;
  }

  /** The round size the adaptive queue delay has measured (tests). */
  double roundRows() {
    return roundRows;
  }

  /** Whether the adaptive queue delay currently sends without waiting (tests, metrics). */
  boolean skippingQueueDelay() {
    return skippingDelay;
  }

  private void reclaim() {
    Batch b;
    while ((b = finished.poll()) != null) { // acquire: sees everything the completing thread wrote into the batch
      if (b.failure == null) {
        long compute = b.inputNanos + b.inferNanos + b.outputNanos;
        avgBatchNanos = avgBatchNanos == 0 ? compute : 0.9 * avgBatchNanos + 0.1 * compute;
        cost.add(b.rows, compute);
        if (controller != null) {
          controller.onBatch(b.full, b.latencies, b.count);
          effectiveMaxRows = controller.maxRows();
          effectiveDelayNanos = controller.delayNanos();
        }
      }
      work++;
    }
  }

  private int drain(long now) {
    int n = 0;
    for (int l = 0; l < queues.length; l++) {
      MpscArrayQueue<InferRequest> q = queues[l];
      BatchingPolicy.LevelPolicy lp = policy.level(l + 1);
      PendingRing ring = rings[2 * l];
      for (int i = 0; i < DRAIN_LIMIT; i++) {
        // relaxedPoll, not poll: poll spins while a producer that has claimed the head slot has not yet
        // stored into it, and a producer may be a nice-19 job thread preempted right there; the owner
        // (an event loop or a compute thread) would then spin on its core until that thread runs again.
        // Stopping at such a slot loses nothing: once its offer completes, the producer kicks a dispatch,
        // or, finding every instance busy, leaves it to the one that finishes (DynamicBatcher.submit's fence).
        InferRequest r = q.relaxedPoll();
        if (r == null) {
          break;
        }
        long timeout = lp.defaultTimeoutNanos();
        long own = r.timeoutMicros();
        // Triton: an override may only shorten the default (or set one where there is none).
        if (lp.allowTimeoutOverride() && own > 0 && own < Long.MAX_VALUE / 1000
            && (timeout == 0 || own * 1000 < timeout)) {
          timeout = own * 1000;
        }
        long policyDeadline = timeout > 0 ? saturatedAdd(r.enqueueNanos(), timeout) : InferRequest.NO_DEADLINE;
        ring.addLast(r, policyDeadline);
        pending++;
        nextExpiryNanos = Math.min(nextExpiryNanos, Math.min(policyDeadline, r.deadlineNanos()));
        n++;
      }
    }
    work += n;
    if (n > 0) {
      nextExpiryNanos = Math.min(nextExpiryNanos, saturatedAdd(now, CANCEL_SWEEP_INTERVAL_NS));
    }
    return n;
  }

  /** Fails cancelled and expired requests; moves DELAY-policy timeouts to the delayed ring. */
  private int sweep(long now) {
    int n = 0;
    long next = Long.MAX_VALUE;
    for (int l = 0; l < policy.queueLevels(); l++) {
      boolean delayOnTimeout = policy.level(l + 1).delayOnTimeout();
      for (int k = 0; k < 2; k++) {
        PendingRing ring = rings[2 * l + k];
        PendingRing delayed = rings[2 * l + 1];
        int keep = 0;
        int size = ring.size();
        for (int i = 0; i < size; i++) {
          InferRequest r = ring.get(i);
          long pd = ring.policyDeadline(i);
          if (r.isCancelled() || r.deadlineNanos() <= now || (pd <= now && !delayOnTimeout)) {
            failDead(r, pd, now, l);
            n++;
          } else if (pd <= now) { // DELAY: keep it, behind every on-time request of its level
            delayed.addLast(r, InferRequest.NO_DEADLINE);
            next = Math.min(next, r.deadlineNanos());
            n++;
          } else {
            ring.set(keep++, r, pd);
            next = Math.min(next, Math.min(pd, r.deadlineNanos()));
          }
        }
        ring.truncate(keep);
      }
    }
    if (pending > 0) {
      next = Math.min(next, saturatedAdd(now, CANCEL_SWEEP_INTERVAL_NS));
    }
    nextExpiryNanos = next;
    work += n;
    return n;
  }

  private ModelInstance dispatch(long now, ModelInstance self, boolean inlineHere, Executor compute) {
    nextWakeNanos = Long.MAX_VALUE;
    boolean closing = batcher.closing();
    if (closing && closingSinceRealNanos < 0) {
      closingSinceRealNanos = System.nanoTime();
    }
    if (closing && pending > 0 && System.nanoTime() - closingSinceRealNanos > batcher.shutdownTimeoutNanos()) {
      failAllPending(now);
      return null;
    }
    ModelInstance local = null;
    while (pending > 0) {
      ModelInstance instance = readyInstance(self);
      if (instance == null) {
        break;
      }
      int take = form(now, closing);
      if (take == 0) {
        break;
      }
      Batch batch = instance.take();
      batch.full = lastFormationFull;
      take(batch, take, now);
      if (batch.count == 0) {
        instance.untake(batch); // every candidate was dead; nothing to run
        continue;
      }
      batch.computeUnion();
      batch.sequence = sequence++;
      if (sequencer != null) {
        sequencer.register(batch);
      }
      instance.assigned = batch;
      work += batch.count;
      if (local == null && (instance == self || (self == null && inlineHere && batcher.cheap(batch.rows)))) {
        local = instance; // runs on this thread once the caller gives up the dispatch ownership
      } else {
        batcher.startOnCompute(instance, compute);
      }
      self = null; // only the first batch may continue on the calling compute thread
    }
    return local;
  }

  /** A ready instance: {@code preferred} when it is, else the next in round-robin order, else null. */
  private ModelInstance readyInstance(ModelInstance preferred) {
    if (preferred != null && preferred.ready()) {
      return preferred;
    }
    int n = instances.length;
    for (int i = 0; i < n; i++) {
      int k = (nextInstance + i) % n;
      if (instances[k].ready()) {
        nextInstance = (k + 1) % n;
        return instances[k];
      }
    }
    return null;
  }

  private static boolean dead(InferRequest r, long policyDeadline, boolean delayOnTimeout, long now) {
    return r.isCancelled() || r.deadlineNanos() <= now || (policyDeadline <= now && !delayOnTimeout);
  }

  /**
   * Decides how many entries, from the front of the priority-ordered pending requests (level 1 main,
   * level 1 delayed, level 2 main, ...), the next batch takes; 0 means wait (and sets the wake time).
   * Follows Triton: the batch grows in queue order while requests fit and have the same non-batch
   * shapes; it is sent at once when it cannot grow (full, or the next request does not fit or differs
   * in shape), else the largest preferred size reached is sent, else it waits until its oldest request
   * has waited the queue delay.
   */
  private int form(long now, boolean closing) {
    int maxRows = effectiveMaxRows;
    Tensor[] reference = null;
    int rows = 0;
    int taken = 0;
    int preferredTaken = 0;
    long oldest = Long.MAX_VALUE;
    boolean closed = false;
    outer:
    for (int s = 0; s < rings.length; s++) {
      PendingRing ring = rings[s];
      boolean delayOnTimeout = policy.level((s >> 1) + 1).delayOnTimeout();
      int size = ring.size();
      for (int i = 0; i < size; i++) {
        InferRequest r = ring.get(i);
        if (dead(r, ring.policyDeadline(i), delayOnTimeout, now)) {
          taken++; // taken only to be failed
          continue;
        }
        int n = r.batchSize();
        if (reference == null) {
          reference = r.inputs();
        } else if (!dynamic || rows + n > maxRows || !sameShapes(reference, r.inputs())) {
          closed = true;
          break outer;
        }
        rows += n;
        taken++;
        oldest = Math.min(oldest, r.enqueueNanos());
        if (isPreferred(rows)) {
          preferredTaken = taken;
        }
        if (!dynamic || rows >= maxRows) {
          closed = true;
          break outer;
        }
      }
    }
    lastFormationFull = closed && dynamic;
    boolean delayRunOut = now - oldest >= effectiveDelayNanos;
    if (rows == 0 || closed || closing || delayRunOut) {
      if (delayRunOut && !closed && adaptiveDelay && waitKey == oldest) {
        roundRows = roundRows == 0 ? rows : 0.75 * roundRows + 0.25 * rows;
      }
      sent(oldest, rows);
      return taken;
    }
    if (preferredTaken > 0) {
      lastFormationFull = true; // reached a size the model asked for
      sent(oldest, rows);
      return preferredTaken;
    }
    if (adaptiveDelay && skippingDelay && ++formationsSinceProbe < SKIP_PROBE_PERIOD) {
      return taken; // waiting has not gained a partner lately: send now (see sent())
    }
    formationsSinceProbe = 0;
    if (adaptiveDelay && roundRows >= MIN_ROUND_TO_SPLIT && rows >= roundRows / 2) {
      sent(oldest, rows); // half a round is here and an instance is ready: send it, the rest follows
      return taken;
    }
    if (waitKey != oldest) { // a new wait: remember what it started with
      waitKey = oldest;
      waitStartRows = rows;
    }
    nextWakeNanos = saturatedAdd(oldest, effectiveDelayNanos);
    return 0;
  }

  /**
   * Bookkeeping of the adaptive queue delay: whether the wait that ends with this batch (if it waited)
   * gained any partner. After {@link #FRUITLESS_WAITS_TO_SKIP} waits in a row that gained nothing, the
   * batcher stops waiting (requests that cannot have partners, such as a closed loop of one client, no
   * longer pay the delay) and waits again only once in {@link #SKIP_PROBE_PERIOD} formations, to notice
   * when partners come back.
   */
  private void sent(long oldest, int rows) {
    if (!adaptiveDelay || waitKey != oldest) {
      return;
    }
    waitKey = NO_WAIT;
    if (rows > waitStartRows) {
      fruitlessWaits = 0;
      skippingDelay = false;
    } else if (++fruitlessWaits >= FRUITLESS_WAITS_TO_SKIP) {
      skippingDelay = true;
      formationsSinceProbe = 0;
    }
  }

  private boolean isPreferred(int rows) {
    for (int p : preferred) {
      if (p == rows) {
        return true;
      }
    }
    return false;
  }

  /** Same presence of every input and the same dims after the batch dimension. */
  private boolean sameShapes(Tensor[] a, Tensor[] b) {
    for (int i = 0; i < a.length; i++) {
      Tensor x = a[i];
      Tensor y = b[i];
      if (x == null || y == null) {
        if (x != y) {
          return false;
        }
        continue;
      }
      long[] sx = x.shape();
      long[] sy = y.shape();
      if (sx.length != sy.length) {
        return false;
      }
      for (int d = 1; d < sx.length; d++) { // dim 0 is the batch
        if (sx[d] != sy[d]) {
          return false;
        }
      }
    }
    return true;
  }

  /** Moves the first {@code count} pending entries into the batch, failing the dead ones. */
  private void take(Batch batch, int count, long now) {
    int left = count;
    for (int s = 0; s < rings.length && left > 0; s++) {
      PendingRing ring = rings[s];
      int level = s >> 1;
      boolean delayOnTimeout = policy.level(level + 1).delayOnTimeout();
      int n = Math.min(left, ring.size());
      for (int i = 0; i < n; i++) {
        InferRequest r = ring.get(i);
        long pd = ring.policyDeadline(i);
        if (dead(r, pd, delayOnTimeout, now)) {
          failDead(r, pd, now, level);
        } else {
          batch.add(r);
          batcher.dequeued(level);
          pending--;
        }
      }
      ring.removeFirst(n);
      left -= n;
    }
  }

  private void failDead(InferRequest r, long policyDeadline, long now, int level) {
    InferenceException error;
    if (r.isCancelled()) {
      error = InferenceException.cancelled("request '%s' to model '%s' was cancelled before it ran", r.id(), r.modelName());
    } else if (r.deadlineNanos() <= now) {
      error = InferenceException.deadlineExceeded("request '%s' to model '%s' passed its deadline after %d us in the queue",
          r.id(), r.modelName(), (now - r.enqueueNanos()) / 1000);
    } else {
      error = InferenceException.deadlineExceeded("request '%s' to model '%s' timed out after %d us in the queue (queue policy)",
          r.id(), r.modelName(), (now - r.enqueueNanos()) / 1000);
    }
    batcher.dequeued(level);
    pending--;
    batcher.fail(r, error, now);
    work++;
  }

  private int failAllPending(long now) {
    int n = 0;
    for (int s = 0; s < rings.length; s++) {
      PendingRing ring = rings[s];
      int size = ring.size();
      for (int i = 0; i < size; i++) {
        InferRequest r = ring.get(i);
        batcher.dequeued(s >> 1);
        pending--;
        batcher.fail(r, InferenceException.unavailable("model '%s' version %d shut down before request '%s' ran",
            r.modelName(), r.modelVersion(), r.id()), now);
        work++;
        n++;
      }
      ring.removeFirst(size);
    }
    return n;
  }

  private static long saturatedAdd(long a, long b) {
    long sum = a + b;
    return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
  }
}
