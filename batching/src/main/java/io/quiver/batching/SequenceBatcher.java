package io.quiver.batching;

import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.SequenceBatchingSpec;
import io.quiver.core.SequenceControl;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.TransportExecutor;
import io.quiver.proto.inference.ModelConfig;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.jctools.queues.MpscArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler of a model version with Triton's {@code sequence_batching}: requests carry a sequence
 * (correlation) id; the first request of a sequence (START) gets the sequence a slot on one instance,
 * every later request of it runs on that slot, in order, one at a time; the batcher sets the model's
 * control inputs (START, END, READY, CORRID) and carries its implicit state (state outputs fed back as
 * state inputs); END or {@code max_sequence_idle_microseconds} without a request frees the slot for the
 * next sequence of the backlog.
 *
 * <h2>Strategies</h2>
 * <ul>
 *   <li><b>direct</b>: an instance has {@code max(1, max_batch_size)} slots and a sequence's requests
 *       always use the batch row of its slot. A batch spans the rows up to the highest slot with a ready
 *       request; rows in between without one are sent with READY false and zero inputs. With
 *       {@code max_queue_delay_microseconds} and {@code minimum_slot_utilization}, a batch waits for more
 *       slots to be ready until the delay of its oldest request runs out.</li>
 *   <li><b>oldest</b>: an instance has {@code max_candidate_sequences} slots; a batch takes the next request
 *       of up to {@code max_batch_size} ready sequences, oldest first, and is sent when full, at a
 *       {@code preferred_batch_size}, or when the queue delay of its oldest request runs out.</li>
 * </ul>
 *
 * <h2>Who does the work</h2>
 * The threading of {@link DynamicBatcher}: no thread of its own. {@link #submit} (any transport thread)
 * checks the request, counts it and offers it to one JCTools MPSC queue, then schedules a dispatch round on
 * its transport thread ({@link TransportRounds}: no wake-up). Dispatch is a duty taken under one CAS
 * (a thread that finds it taken leaves a note): the owner takes back finished batches, moves new requests
 * to their sequences, releases idle sequences and forms batches for ready instances. A batch whose measured
 * cost is under the inline bound runs on the transport thread that formed it, else on the shared
 * {@link ComputePool}, whose thread keeps taking that instance's next batches. Answers go back as one task
 * per transport thread per batch. Timers (queue delay, idle sequences, deadlines) run on the transport
 * thread that armed them or on the factory's timer thread, and only while sequences are alive.
 *
 * <h2>Memory ordering</h2>
 * As in {@link DynamicBatcher}: a request is published by the MPSC offer and acquired by the owner's poll;
 * the ownership CAS orders one owner's cycle before the next; an instance and its batch are published to a
 * compute thread by the pool's queue and back to the owner through the finished-batch MPSC queue; a
 * sequence's state arrays are written only by the thread running its batch, between those two hand-offs.
 *
 * <p>Thread-safe. Build with {@link #builder()} or through {@link DynamicBatcherFactory} (which picks it
 * when a config has {@code sequence_batching}).
 */
public final class SequenceBatcher implements InferenceScheduler {
  private static final Logger log = LoggerFactory.getLogger(SequenceBatcher.class);
  /** Requests moved from the submission queue per cycle. */
  static final int DRAIN_LIMIT = 1024;

  private final String modelName;
  private final long version;
  private final ModelSignature signature;
  private final SequenceBatchingSpec spec;
  private final Layout layout;
  private final NanoClock clock;
  private final Executor compute;
  private final ScheduledExecutorService fallbackTimer;
  private final long shutdownTimeoutNanos;
  private final long inlineMaxNanos;
  private final boolean manualDispatch;
  private final int queueBound;
  private final int maxRows;
  private final InferenceStats stats;
  private final MpscArrayQueue<InferRequest> incoming;
  private final MpscArrayQueue<SequenceBatch> finished;
  private final AtomicInteger queued = new AtomicInteger();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger rejected = new AtomicInteger();
  private final SequenceInstance[] instances;
  private final BatchCostModel cost = new BatchCostModel();
  private final TransportRounds rounds = new TransportRounds(this::runRound, () -> dispatchHere(null));
  private final AtomicBoolean dispatching = new AtomicBoolean();
  private volatile boolean dispatchAgain;
  private volatile boolean closing;
  private final AtomicInteger closeOnce = new AtomicInteger();
  private volatile boolean closed;

  // ---- the dispatch owner's ----
  private final Map<Object, Sequence> sequences = new HashMap<>();
  private final ArrayDeque<Sequence> backlog = new ArrayDeque<>();
  private long armedTimerNanos = Long.MAX_VALUE;
  private long nextWakeNanos = Long.MAX_VALUE;
  private long closingSinceRealNanos = -1;
  private int nextInstance;
  private int work;
  private final int[] candidateSlots;
  private final long[] candidateTimes;

  private SequenceBatcher(Builder b) {
    this.modelName = b.modelName;
    this.version = b.version;
    this.signature = b.signature;
    this.spec = Objects.requireNonNull(SequenceBatchingSpec.of(b.config), "config has no sequence_batching");
    this.layout = new Layout(signature, spec);
    this.clock = b.clock;
    this.compute = b.compute;
    this.fallbackTimer = b.timer;
    this.shutdownTimeoutNanos = b.shutdownTimeoutNanos;
    this.manualDispatch = b.manualDispatch;
    BatchingPolicy policy = BatchingPolicy.from(b.config); // queue bound and inline parameters
    this.queueBound = policy.level(1).maxQueueSize();
    long inline = policy.inlineMaxNanos() >= 0 ? policy.inlineMaxNanos() : b.inlineMaxNanos;
    this.inlineMaxNanos = Math.max(0, inline);
    this.maxRows = Math.max(1, signature.maxBatchSize());
    int slots = spec.strategy() == SequenceBatchingSpec.Strategy.DIRECT ? maxRows : spec.maxCandidateSequences();
    this.stats = new InferenceStats(maxRows);
    this.incoming = new MpscArrayQueue<>(Math.max(2, queueBound));
    List<ModelRunner> runners = b.runners;
    this.instances = new SequenceInstance[runners.size()];
    for (int i = 0; i < instances.length; i++) {
      instances[i] = new SequenceInstance(this, runners.get(i), i, slots, maxRows);
    }
    this.finished = new MpscArrayQueue<>(Math.max(2, 2 * instances.length));
    this.candidateSlots = new int[slots];
    this.candidateTimes = new long[slots];
  }

  public static Builder builder() {
    return new Builder();
  }

  // ---- submit ----

  /**
   * {@inheritDoc}
   *
   * <p>Checks what can be checked without the sequence table (a sequence id, batch size 1, the id's type
   * against the CORRID control), counts the request and queues it; whether its sequence is known is
   * decided by the dispatch owner, which answers an unknown sequence with INVALID_ARGUMENT. Cost: a few
   * atomics, one MPSC offer, one dispatch round scheduled on the caller's transport thread.
   */
  @Override
  public void submit(InferRequest request) {
    SequenceControl sequence = request.sequence();
    if (sequence == null) {
      throw InferenceException.invalidField("parameters[sequence_id]", "model '%s' uses sequence batching: each request"
          + " needs a sequence_id parameter (a non-zero number or a non-empty string), with sequence_start true on the"
          + " first request of a sequence and sequence_end true on the last", modelName);
    }
    if (request.batchSize() != 1) {
      throw InferenceException.invalidField("inputs", "inference request to model '%s' must specify batch-size 1 due to"
          + " requirements of sequence batcher; was %d", modelName, request.batchSize());
    }
    SequenceBatchingSpec.Control corrid = spec.control(SequenceBatchingSpec.ControlKind.CORRID);
    if (corrid != null && (corrid.dataType() == DataType.BYTES) != sequence.isString()) {
      throw InferenceException.invalidField("parameters[sequence_id]", "model '%s' takes %s sequence ids (its CORRID"
          + " control '%s' is %s); sequence_id was %s", modelName, corrid.dataType() == DataType.BYTES ? "string" : "numeric",
          corrid.inputName(), corrid.dataType().wireName(), sequence.isString() ? "a string" : "a number");
    }
    inFlight.incrementAndGet(); // before reading `closing`: close() waits for in-flight to reach 0
    if (closing) {
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.unavailable("model '%s' version %d is shutting down", modelName, version);
    }
    if (queued.incrementAndGet() > queueBound) {
      queued.decrementAndGet();
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.resourceExhausted(DynamicBatcher.MIN_RETRY_AFTER_NS,
          "model '%s' version %d: sequence queue is full (%d requests)", modelName, version, queueBound);
    }
    request.setEnqueueNanos(clock.nanoTime());
    if (!incoming.offer(request)) { // cannot happen: the counter admits at most the queue's capacity
      queued.decrementAndGet();
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.resourceExhausted(DynamicBatcher.MIN_RETRY_AFTER_NS, "model '%s': queue full", modelName);
    }
    kick(request.transport());
  }

  @Override
  public int queuedRequests() {
    return queued.get();
  }

  @Override
  public int inFlightRequests() {
    return inFlight.get();
  }

  /** Requests refused by {@link #submit} for a full queue or shutdown. */
  public int rejectedRequests() {
    return rejected.get();
  }

  @Override
  public InferenceStats stats() {
    return stats;
  }

  public SequenceBatchingSpec spec() {
    return spec;
  }

  // ---- dispatch ----

  private void kick(TransportExecutor transport) {
    if (manualDispatch) {
      return;
    }
    if (transport != null && transport.inTransportThread()) {
      rounds.schedule(transport);
    } else {
      dispatchHere(null);
    }
  }

  /** Takes the dispatch ownership (or leaves a note) and runs cycles; returns an instance to run here, or null. */
  private SequenceInstance dispatchOnce(TransportExecutor here, SequenceInstance self, boolean inlineOk) {
    SequenceInstance local = null;
    for (;;) {
      if (!dispatching.compareAndSet(false, true)) {
        dispatchAgain = true; // the owner re-runs a cycle before it lets go ...
        if (dispatching.get()) {
          return local; // ... and it is still there to see the note
        }
        continue;
      }
      try {
        dispatchAgain = false;
        long now = clock.nanoTime();
        if (armedTimerNanos <= now) {
          armedTimerNanos = Long.MAX_VALUE;
        }
        SequenceInstance picked = cycle(now, local == null ? self : null, inlineOk && local == null && here != null);
        if (picked != null) {
          local = picked;
        }
        if (!manualDispatch) {
          armTimer(here, now);
        }
      } finally {
        dispatching.set(false);
      }
      if (!dispatchAgain) {
        return local;
      }
    }
  }

  private void dispatchHere(TransportExecutor here) {
    SequenceInstance local = dispatchOnce(here, null, false);
    if (local != null) {
      startOnCompute(local);
    }
  }

  private void runRound(TransportExecutor here) {
    SequenceInstance local = dispatchOnce(here, null, inlineMaxNanos > 0);
    if (local != null) {
      runBatch(local);
      if (queued.get() > 0) {
        rounds.schedule(here); // requests of this thread's other connections first, then more batches
      }
    }
  }

  void runOnComputeThread(SequenceInstance instance) {
    SequenceInstance next = instance;
    for (int run = 0; next != null; run++) {
      runBatch(next);
      if (manualDispatch) {
        return;
      }
      if (run + 1 >= DynamicBatcher.MAX_CONSECUTIVE_BATCHES) {
        dispatchHere(null);
        return;
      }
      next = dispatchOnce(null, next, false);
    }
  }

  private void startOnCompute(SequenceInstance instance) {
    try {
      compute.execute(instance);
    } catch (RejectedExecutionException e) {
      runBatch(instance); // the pool is closing: run it here rather than lose the requests
    }
  }

  private boolean cheap(int rows) {
    return inlineMaxNanos > 0 && cost.samples() >= DynamicBatcher.INLINE_MIN_SAMPLES
        && cost.predictNanos(rows) <= inlineMaxNanos;
  }

  /** One dispatch cycle (owner only). */
  private SequenceInstance cycle(long now, SequenceInstance self, boolean inlineHere) {
    work = 0;
    reclaim(now);
    drain(now);
    reap(now);
    SequenceInstance local = dispatch(now, self, inlineHere);
    return local;
  }

  /** Owner: takes back finished batches: their sequences may run again; ended ones are released. */
  private void reclaim(long now) {
    SequenceBatch b;
    while ((b = finished.poll()) != null) { // acquire: sees what the completing thread wrote
      if (b.failure == null) {
        cost.add(b.rows, b.inputNanos + b.inferNanos + b.outputNanos);
      }
      for (int r = 0; r < b.rows; r++) {
        Sequence sequence = b.sequences[r];
        if (b.requests[r] == null || sequence == null) {
          continue;
        }
        sequence.inFlight = false;
        sequence.lastActivityNanos = now;
        if (sequence.ended && sequence.pending.isEmpty()) {
          release(sequence, now); // its END request ran (or failed)
        }
      }
      b.reclaimed = true;
      work++;
    }
  }

  /** Owner: moves newly submitted requests to their sequences; unknown sequences fail here. */
  private void drain(long now) {
    for (int i = 0; i < DRAIN_LIMIT; i++) {
      // relaxedPoll: never spin on a slot a preempted producer claimed but has not filled (it kicks a
      // dispatch once its offer completes); the same reason as BatchFormer.drain.
      InferRequest r = incoming.relaxedPoll();
      if (r == null) {
        return;
      }
      work++;
      SequenceControl control = r.sequence();
      Sequence sequence = sequences.get(control.key());
      if (sequence == null) {
        if (!control.start()) {
          fail(r, InferenceException.invalidField("parameters[sequence_start]", "inference request for sequence %s to"
              + " model '%s' must specify the START flag (sequence_start) on the first request of the sequence (the sequence is unknown:"
              + " never started, already ended, or released after %d ms idle)", control.describe(), modelName,
              TimeUnit.NANOSECONDS.toMillis(spec.maxSequenceIdleNanos())), now);
          continue;
        }
        sequence = new Sequence(control, layout.states(), now);
        sequences.put(sequence.key, sequence);
        place(sequence);
      } else if (control.start()) {
        log.warn("model '{}': sequence {} was started again before it ended; the previous sequence ends early"
            + " (its state is reset when the new START runs)", modelName, control.describe());
      }
      sequence.pending.addLast(r);
      sequence.lastActivityNanos = now;
      if (control.end()) {
        sequence.ended = true; // a later request with this id starts a new sequence, or is unknown
        sequences.remove(sequence.key);
      }
    }
  }

  /** Owner: gives a new sequence a free slot (lowest slot index first, spread over instances), else the backlog. */
  private void place(Sequence sequence) {
    int n = instances.length;
    int slots = instances[0].slots.length;
    for (int s = 0; s < slots; s++) {
      for (int k = 0; k < n; k++) {
        SequenceInstance instance = instances[(nextInstance + k) % n];
        if (instance.slots[s] == null) {
          assign(sequence, instance, s);
          nextInstance = (instance.index + 1) % n;
          return;
        }
      }
    }
    backlog.addLast(sequence);
  }

  private static void assign(Sequence sequence, SequenceInstance instance, int slot) {
    instance.slots[slot] = sequence;
    sequence.instance = instance;
    sequence.slot = slot;
  }

  /** Owner: frees a sequence's slot (or backlog place) and gives the slot to the oldest backlogged sequence. */
  private void release(Sequence sequence, long now) {
    if (sequence.released) {
      return;
    }
    sequence.released = true;
    if (sequences.get(sequence.key) == sequence) {
      sequences.remove(sequence.key);
    }
    SequenceInstance instance = sequence.instance;
    if (instance == null) {
      backlog.remove(sequence);
      return;
    }
    instance.slots[sequence.slot] = null;
    int slot = sequence.slot;
    sequence.instance = null;
    sequence.slot = -1;
    Sequence next = backlog.pollFirst();
    if (next != null) {
      assign(next, instance, slot);
      next.lastActivityNanos = now;
    }
  }

  /**
   * Owner: releases sequences idle for longer than max_sequence_idle_microseconds (nothing queued, nothing
   * running), fails requests past their deadline, and cancels sequences whose next request was cancelled.
   */
  private void reap(long now) {
    long idle = spec.maxSequenceIdleNanos();
    for (SequenceInstance instance : instances) {
      for (Sequence sequence : instance.slots) {
        if (sequence == null || sequence.inFlight) {
          continue;
        }
        if (sequence.pending.isEmpty()) {
          if (now - sequence.lastActivityNanos >= idle) {
            log.info("model '{}': sequence {} idle for {} ms (max_sequence_idle_microseconds): released", modelName,
                sequence.id.describe(), TimeUnit.NANOSECONDS.toMillis(now - sequence.lastActivityNanos));
            release(sequence, now);
            work++;
          }
        } else {
          head(sequence, now);
        }
      }
    }
    if (!backlog.isEmpty()) {
      List<Sequence> dead = null; // allocated only when a backlogged request died
      for (Sequence sequence : backlog) {
        InferRequest first = sequence.pending.peekFirst();
        if (first != null && (first.isCancelled() || first.deadlineNanos() <= now)) {
          if (dead == null) {
            dead = new java.util.ArrayList<>();
          }
          dead.add(sequence);
        }
      }
      if (dead != null) {
        for (Sequence sequence : dead) {
          head(sequence, now);
        }
      }
    }
  }

  /**
   * Owner: the sequence's next live request, or null. A cancelled request cancels the whole sequence (as
   * in Triton: its queued requests fail and its slot is freed); a request past its deadline fails alone.
   */
  private InferRequest head(Sequence sequence, long now) {
    InferRequest head;
    while ((head = sequence.pending.peekFirst()) != null) {
      if (head.isCancelled()) {
        cancel(sequence, head, now);
        return null;
      }
      if (head.deadlineNanos() > now) {
        return head;
      }
      sequence.pending.pollFirst();
      fail(head, InferenceException.deadlineExceeded("request '%s' of sequence %s to model '%s' passed its deadline"
          + " after %d us in the queue", head.id(), sequence.id.describe(), modelName,
          (now - head.enqueueNanos()) / 1000), now);
      if (sequence.ended && sequence.pending.isEmpty() && !sequence.inFlight) {
        release(sequence, now);
        return null;
      }
    }
    return null;
  }

  private void cancel(Sequence sequence, InferRequest cancelled, long now) {
    InferRequest r;
    while ((r = sequence.pending.pollFirst()) != null) {
      fail(r, InferenceException.cancelled("request '%s' of sequence %s to model '%s' was cancelled%s", r.id(),
          sequence.id.describe(), modelName, r == cancelled ? " before it ran" : " with its sequence (request '"
              + cancelled.id() + "' was cancelled)"), now);
    }
    sequence.ended = true;
    if (sequences.get(sequence.key) == sequence) {
      sequences.remove(sequence.key);
    }
    if (!sequence.inFlight) {
      release(sequence, now);
    }
  }

  private SequenceInstance dispatch(long now, SequenceInstance self, boolean inlineHere) {
    nextWakeNanos = Long.MAX_VALUE;
    boolean closingNow = closing;
    if (closingNow && closingSinceRealNanos < 0) {
      closingSinceRealNanos = System.nanoTime();
    }
    if (closingNow && queued.get() > 0 && System.nanoTime() - closingSinceRealNanos > shutdownTimeoutNanos) {
      failAllPending(now);
      return null;
    }
    SequenceInstance local = null;
    int n = instances.length;
    for (int k = -1; k < n; k++) {
      SequenceInstance instance = k < 0 ? self : instances[k];
      if (instance == null || (k >= 0 && instance == self) || !instance.ready()) {
        continue;
      }
      if (!instance.nextBatchObject().reclaimed) {
        reclaim(now); // it was delivered (the instance is ready): its finished entry is in the queue
        if (!instance.nextBatchObject().reclaimed) {
          continue;
        }
      }
      SequenceBatch batch = spec.strategy() == SequenceBatchingSpec.Strategy.DIRECT
          ? formDirect(instance, now, closingNow) : formOldest(instance, now, closingNow);
      if (batch == null) {
        continue;
      }
      batch.computeUnion(layout.stateOutputs);
      instance.assigned = batch;
      work += batch.count;
      if (local == null && (instance == self || (self == null && inlineHere && cheap(batch.rows)))) {
        local = instance;
      } else {
        startOnCompute(instance);
      }
    }
    return local;
  }

  /** Direct: rows are slots; up to the highest slot with a ready request, the others not ready. */
  private SequenceBatch formDirect(SequenceInstance instance, long now, boolean closingNow) {
    Sequence[] slots = instance.slots;
    int ready = 0;
    int highest = -1;
    long oldest = Long.MAX_VALUE;
    for (int s = 0; s < slots.length; s++) {
      Sequence sequence = slots[s];
      if (sequence == null || sequence.inFlight) {
        continue;
      }
      InferRequest head = head(sequence, now);
      if (head != null) {
        ready++;
        highest = s;
        oldest = Math.min(oldest, head.enqueueNanos());
      }
    }
    if (ready == 0) {
      return null;
    }
    long delay = spec.maxQueueDelayNanos();
    if (!closingNow && delay > 0 && spec.minimumSlotUtilization() > 0 && now - oldest < delay
        && (float) ready / slots.length < spec.minimumSlotUtilization()) {
      nextWakeNanos = Math.min(nextWakeNanos, oldest + delay);
      return null;
    }
    SequenceBatch batch = instance.take();
    Tensor[] reference = null;
    int last = -1;
    for (int s = 0; s <= highest; s++) {
      Sequence sequence = slots[s];
      InferRequest head = sequence == null || sequence.inFlight ? null : sequence.pending.peekFirst();
      if (head != null && (reference == null || sameShapes(reference, head.inputs()))) {
        reference = reference == null ? head.inputs() : reference;
        last = s;
      }
    }
    for (int s = 0; s <= last; s++) {
      Sequence sequence = slots[s];
      InferRequest head = sequence == null || sequence.inFlight ? null : sequence.pending.peekFirst();
      if (head != null && sameShapes(reference, head.inputs())) {
        placeInBatch(batch, s, sequence);
      } else {
        batch.set(s, null, null); // a slot without a ready request: READY false
      }
    }
    return batch;
  }

  /** Oldest: the next request of up to max_batch_size ready sequences, oldest first. */
  private SequenceBatch formOldest(SequenceInstance instance, long now, boolean closingNow) {
    Sequence[] slots = instance.slots;
    int candidates = 0;
    for (int s = 0; s < slots.length; s++) {
      Sequence sequence = slots[s];
      if (sequence == null || sequence.inFlight) {
        continue;
      }
      InferRequest head = head(sequence, now);
      if (head == null) {
        continue;
      }
      // insertion sort by age: a handful of candidates per instance
      int at = candidates++;
      long t = head.enqueueNanos();
      while (at > 0 && candidateTimes[at - 1] > t) {
        candidateTimes[at] = candidateTimes[at - 1];
        candidateSlots[at] = candidateSlots[at - 1];
        at--;
      }
      candidateTimes[at] = t;
      candidateSlots[at] = s;
    }
    if (candidates == 0) {
      return null;
    }
    Tensor[] reference = slots[candidateSlots[0]].pending.peekFirst().inputs();
    int take = 0;
    boolean full = false;
    for (int c = 0; c < candidates; c++) {
      if (take == maxRows) {
        full = true;
        break;
      }
      Sequence sequence = slots[candidateSlots[c]];
      if (sameShapes(reference, sequence.pending.peekFirst().inputs())) {
        candidateSlots[take++] = candidateSlots[c];
      } else {
        full = true; // a request of other shapes waits for the next batch: this one cannot grow
      }
    }
    full |= take == maxRows;
    long oldest = candidateTimes[0];
    long delay = spec.maxQueueDelayNanos();
    if (!closingNow && !full && delay > 0 && now - oldest < delay && !preferred(take)) {
      nextWakeNanos = Math.min(nextWakeNanos, oldest + delay);
      return null;
    }
    SequenceBatch batch = instance.take();
    for (int row = 0; row < take; row++) {
      placeInBatch(batch, row, slots[candidateSlots[row]]);
    }
    return batch;
  }

  private void placeInBatch(SequenceBatch batch, int row, Sequence sequence) {
    InferRequest request = sequence.pending.pollFirst();
    sequence.inFlight = true;
    queued.decrementAndGet();
    batch.set(row, request, sequence);
  }

  private boolean preferred(int rows) {
    for (int p : spec.preferredBatchSizes()) {
      if (p == rows) {
        return true;
      }
    }
    return false;
  }

  private static boolean sameShapes(Tensor[] a, Tensor[] b) {
    for (int i = 0; i < a.length; i++) {
      Tensor x = a[i];
      Tensor y = b[i];
      if (x == null || y == null) {
        if (x != y) {
          return false;
        }
        continue;
      }
      if (!java.util.Arrays.equals(x.shape(), y.shape())) {
        return false;
      }
    }
    return true;
  }

  /** Owner: arms one timer for the next queue delay, idle release or deadline, unless an earlier one is armed. */
  private void armTimer(TransportExecutor here, long now) {
    long due = nextTimerNanos(now);
    if (due == Long.MAX_VALUE || due >= armedTimerNanos) {
      return;
    }
    armedTimerNanos = due;
    long delay = Math.max(1, due - now);
    try {
      if (here != null) {
        here.schedule(new TimerTask(here), delay);
      } else {
        fallbackTimer.schedule(new TimerTask(null), delay, TimeUnit.NANOSECONDS);
      }
    } catch (RejectedExecutionException e) {
      armedTimerNanos = Long.MAX_VALUE; // shutting down: close() drives what is left
    }
  }

  /** Owner: the earliest time a cycle has something to do without a new event. */
  private long nextTimerNanos(long now) {
    long due = nextWakeNanos;
    long idle = spec.maxSequenceIdleNanos();
    for (SequenceInstance instance : instances) {
      for (Sequence sequence : instance.slots) {
        if (sequence == null || sequence.inFlight) {
          continue;
        }
        InferRequest head = sequence.pending.peekFirst();
        due = Math.min(due, head == null ? saturatedAdd(sequence.lastActivityNanos, idle) : head.deadlineNanos());
      }
    }
    for (Sequence sequence : backlog) {
      InferRequest head = sequence.pending.peekFirst();
      if (head != null) {
        due = Math.min(due, head.deadlineNanos());
      }
    }
    return due;
  }

  private static long saturatedAdd(long a, long b) {
    long sum = a + b;
    return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
  }

  // ---- running and completing ----

  private void runBatch(SequenceInstance instance) {
    SequenceBatch batch = instance.assigned;
    instance.assigned = null;
    instance.execute(batch);
    instance.runFinished();
    completeBatch(batch);
  }

  /** The running thread: records outcomes, hands the batch back to the owner, delivers the answers. */
  private void completeBatch(SequenceBatch batch) {
    long now = clock.nanoTime();
    InferenceException failure = batch.failure;
    for (int r = 0; r < batch.rows; r++) {
      InferRequest request = batch.requests[r];
      if (request == null) {
        continue;
      }
      long total = now - request.enqueueNanos();
      if (failure != null) {
        stats.recordFailure(total);
      } else {
        long waited = batch.computeStartNanos - request.enqueueNanos();
        stats.recordSuccess(total, waited, batch.inputNanos, batch.inferNanos, batch.outputNanos);
        request.recordTimings(waited, batch.inputNanos, batch.inferNanos, batch.outputNanos, batch.rows);
      }
    }
    finished.offer(batch); // never full: two batch objects per instance
    int local = 0;
    for (int r = 0; r < batch.rows; r++) {
      InferRequest request = batch.requests[r];
      if (request == null) {
        continue;
      }
      TransportExecutor t = request.transport();
      if (t == null || t.inTransportThread()) {
        local++;
      } else {
        batch.deliveryFor(t, this).add(r);
      }
    }
    int groups = batch.deliveryCount;
    batch.pendingDeliveries.set(groups + 1); // +1: the local part, released last
    for (int g = 0; g < groups; g++) {
      SequenceBatch.Delivery d = batch.deliveries[g];
      try {
        d.transport.execute(d);
      } catch (RejectedExecutionException e) {
        deliverGroup(d);
      }
    }
    if (local > 0) {
      for (int r = 0; r < batch.rows; r++) {
        InferRequest request = batch.requests[r];
        if (request != null && (request.transport() == null || request.transport().inTransportThread())) {
          deliver(batch, r);
        }
      }
      inFlight.addAndGet(-local);
    }
    deliveryDone(batch, null, false); // the running thread dispatches next anyway
  }

  void deliverGroup(SequenceBatch.Delivery d) {
    SequenceBatch batch = d.batch;
    for (int k = 0; k < d.count; k++) {
      deliver(batch, d.rows[k]);
    }
    inFlight.addAndGet(-d.count);
    deliveryDone(batch, d.transport, true);
  }

  private void deliver(SequenceBatch batch, int row) {
    InferRequest r = batch.requests[row];
    try {
      if (batch.failure != null) {
        r.callback().onFailure(r, batch.failure);
      } else {
        r.callback().onSuccess(r, batch.outputs[row]);
      }
    } catch (Throwable t) {
      log.warn("callback of request '{}' to model '{}' threw", r.id(), modelName, t);
    }
  }

  private void deliveryDone(SequenceBatch batch, TransportExecutor here, boolean mayKick) {
    if (batch.pendingDeliveries.decrementAndGet() != 0) {
      return;
    }
    batch.instance.released(batch);
    if (mayKick && queued.get() > 0) {
      kick(here);
    }
  }

  /** Owner: answers a request that will not run, on its transport thread when it has one. */
  private void fail(InferRequest r, InferenceException error, long now) {
    queued.decrementAndGet();
    stats.recordFailure(now - r.enqueueNanos());
    TransportExecutor t = r.transport();
    if (t != null && !t.inTransportThread()) {
      try {
        t.execute(() -> failNow(r, error)); // allocates; only for requests that fail before running
        return;
      } catch (RejectedExecutionException e) {
        // transport gone: answer here
      }
    }
    failNow(r, error);
  }

  private void failNow(InferRequest r, InferenceException error) {
    try {
      r.callback().onFailure(r, error);
    } catch (Throwable t) {
      log.warn("callback of request '{}' to model '{}' threw", r.id(), modelName, t);
    }
    inFlight.decrementAndGet();
  }

  private void failAllPending(long now) {
    InferRequest r;
    while ((r = incoming.poll()) != null) {
      fail(r, shutDown(r), now);
    }
    for (SequenceInstance instance : instances) {
      for (Sequence sequence : instance.slots) {
        if (sequence != null) {
          while ((r = sequence.pending.pollFirst()) != null) {
            fail(r, shutDown(r), now);
          }
        }
      }
    }
    for (Sequence sequence : backlog) {
      while ((r = sequence.pending.pollFirst()) != null) {
        fail(r, shutDown(r), now);
      }
    }
  }

  private InferenceException shutDown(InferRequest r) {
    return InferenceException.unavailable("model '%s' version %d shut down before request '%s' ran", modelName, version,
        r.id());
  }

  // ---- lifecycle ----

  /**
   * {@inheritDoc}
   *
   * <p>Queued requests still run (without waiting for queue delays); those still queued after the shutdown
   * timeout fail with UNAVAILABLE. Waits until every accepted request has been answered.
   */
  @Override
  public void close() {
    if (!closeOnce.compareAndSet(0, 1)) {
      while (!closed) {
        LockSupport.parkNanos(100_000L);
      }
      return;
    }
    closing = true;
    long giveUpAt = System.nanoTime() + shutdownTimeoutNanos + DynamicBatcher.CLOSE_DELIVERY_GRACE_NS;
    try {
      while (true) {
        if (manualDispatch) {
          doWork();
        } else {
          dispatchHere(null);
        }
        if (inFlight.get() == 0 && queued.get() == 0) {
          break;
        }
        if (System.nanoTime() - giveUpAt > 0) {
          log.warn("model '{}' version {}: {} requests still unanswered at close; giving up on them", modelName, version,
              inFlight.get());
          break;
        }
        LockSupport.parkNanos(50_000L);
      }
    } finally {
      closed = true;
    }
  }

  // ---- for the instances and tests ----

  String modelName() {
    return modelName;
  }

  long version() {
    return version;
  }

  ModelSignature signature() {
    return signature;
  }

  Layout layout() {
    return layout;
  }

  NanoClock clock() {
    return clock;
  }

  /**
   * Tests (manual dispatch): dispatch cycles on this thread until one does nothing, running every batch
   * formed here (the compute executor of a manual batcher runs tasks in place); returns the work done.
   */
  int doWork() {
    int total = 0;
    for (int round = 0; round < 1000; round++) {
      SequenceInstance local = dispatchOnce(null, null, false);
      if (local != null) {
        runBatch(local);
      }
      if (work == 0 && local == null) {
        break;
      }
      total += work;
    }
    return total;
  }

  /** Tests: live sequences holding slots (not counting the backlog). */
  int activeSequences() {
    int n = 0;
    for (SequenceInstance instance : instances) {
      for (Sequence s : instance.slots) {
        n += s == null ? 0 : 1;
      }
    }
    return n;
  }

  /** Tests: sequences waiting for a slot. */
  int backlogSequences() {
    return backlog.size();
  }

  /** A queue-delay, idle or deadline timer: one dispatch on the thread it fires on. */
  private final class TimerTask implements Runnable {
    private final TransportExecutor transport;

    TimerTask(TransportExecutor transport) {
      this.transport = transport;
    }

    @Override
    public void run() {
      if (transport != null) {
        runRound(transport);
      } else {
        dispatchHere(null);
      }
    }
  }

  /** Where the sequence batcher's tensors are in the signature. Immutable. */
  static final class Layout {
    private final SequenceBatchingSpec.Control[] controlByInput;
    private final int[] stateByInput;
    private final SequenceBatchingSpec.State[] states;
    private final int[] stateOutputIndex;
    final int[] stateOutputs;

    Layout(ModelSignature signature, SequenceBatchingSpec spec) {
      int inputs = signature.inputs().size();
      controlByInput = new SequenceBatchingSpec.Control[inputs];
      stateByInput = new int[inputs];
      java.util.Arrays.fill(stateByInput, -1);
      states = spec.states().toArray(new SequenceBatchingSpec.State[0]);
      stateOutputIndex = new int[states.length];
      for (SequenceBatchingSpec.Control control : spec.controls()) {
        controlByInput[signature.inputIndex(control.inputName())] = control;
      }
      for (int k = 0; k < states.length; k++) {
        stateByInput[signature.inputIndex(states[k].inputName())] = k;
        stateOutputIndex[k] = signature.outputIndex(states[k].outputName());
        if (signature.outputs().get(stateOutputIndex[k]).role() != TensorSpec.Role.SEQUENCE_STATE) {
          throw new IllegalStateException("state output " + states[k].outputName() + " is not a state tensor");
        }
      }
      stateOutputs = stateOutputIndex.clone();
    }

    SequenceBatchingSpec.Control controlOf(int input) {
      return controlByInput[input];
    }

    int stateOfInput(int input) {
      return stateByInput[input];
    }

    int states() {
      return states.length;
    }

    SequenceBatchingSpec.State state(int k) {
      return states[k];
    }

    int stateOutput(int k) {
      return stateOutputIndex[k];
    }
  }

  /**
   * Assembles a {@link SequenceBatcher}: the model and config (with sequence_batching), its runners, where
   * batches run and where timers of requests without a transport run. Not thread-safe.
   */
  public static final class Builder {
    String modelName;
    long version;
    ModelConfig config;
    ModelSignature signature;
    List<ModelRunner> runners;
    NanoClock clock = NanoClock.SYSTEM;
    Executor compute;
    ScheduledExecutorService timer;
    long inlineMaxNanos = DynamicBatcherBuilder.DEFAULT_INLINE_MAX_NS;
    long shutdownTimeoutNanos = DynamicBatcherBuilder.DEFAULT_SHUTDOWN_TIMEOUT_NS;
    boolean manualDispatch;

    Builder() {}

    public Builder model(String modelName, long version, ModelConfig config, ModelSignature signature) {
      this.modelName = Objects.requireNonNull(modelName);
      this.version = version;
      this.config = Objects.requireNonNull(config);
      this.signature = Objects.requireNonNull(signature);
      return this;
    }

    public Builder runners(List<ModelRunner> runners) {
      this.runners = List.copyOf(runners);
      return this;
    }

    public Builder clock(NanoClock clock) {
      this.clock = Objects.requireNonNull(clock);
      return this;
    }

    public Builder compute(Executor compute) {
      this.compute = Objects.requireNonNull(compute);
      return this;
    }

    public Builder timer(ScheduledExecutorService timer) {
      this.timer = Objects.requireNonNull(timer);
      return this;
    }

    public Builder inlineMaxNanos(long nanos) {
      this.inlineMaxNanos = Math.max(0, nanos);
      return this;
    }

    public Builder shutdownTimeoutNanos(long nanos) {
      this.shutdownTimeoutNanos = Math.max(0, nanos);
      return this;
    }

    /** Tests: dispatch only from {@link SequenceBatcher#doWork()}; no timers, no compute hand-off. */
    Builder manualDispatch() {
      this.manualDispatch = true;
      return this;
    }

    public SequenceBatcher build() {
      if (modelName == null || runners == null || runners.isEmpty()) {
        throw new IllegalStateException("a sequence batcher needs a model and at least one runner");
      }
      if (compute == null || (!manualDispatch && timer == null)) {
        throw new IllegalStateException("a sequence batcher needs a compute executor and a timer");
      }
      return new SequenceBatcher(this);
    }
  }
}
