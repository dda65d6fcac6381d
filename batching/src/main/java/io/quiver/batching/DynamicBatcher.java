package io.quiver.batching;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.TransportExecutor;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import org.jctools.queues.MpscArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler of one model version: Triton's dynamic batcher on bounded lock-free queues, with no
 * thread of its own.
 *
 * <h2>Who does the work</h2>
 * There is no batching agent between a request's arrival and its execution, and an idle model costs no
 * thread and no wake-up:
 * <ul>
 *   <li><b>Producers</b> (transport threads) call {@link #submit}: it validates, counts the request
 *       against its level's bound, stamps the enqueue time and offers it to that level's JCTools
 *       {@link MpscArrayQueue}. It never blocks: a full level fails at once. When an instance is idle,
 *       a producer on a transport thread schedules one <i>dispatch round</i> on that thread
 *       ({@link TransportExecutor#execute} from the thread itself: no wake-up), which runs after the
 *       requests it is reading now, so one read's requests form one batch. A background producer (a
 *       batch job's low-priority thread) hands its dispatch to the fallback timer thread instead of
 *       taking the ownership itself.</li>
 *   <li><b>Dispatch</b> is a duty, not a thread: whoever has a reason (a dispatch round, a compute
 *       thread that finished a batch, a queue-delay timer, the delivery that frees an instance's batch
 *       slot) takes the dispatch ownership (one CAS; a thread that finds it taken leaves a note that the
 *       owner re-checks before letting go) and runs one {@link BatchFormer} cycle: move queued requests
 *       into pending rings, fail dead ones, form batches for ready instances.</li>
 *   <li><b>Execution</b>: a batch whose measured cost (the {@link BatchCostModel}) is under the inline
 *       bound runs on the transport thread that formed it; otherwise its {@link ModelInstance} goes to
 *       the shared {@link ComputePool}, whose thread runs it and then keeps taking that instance's next
 *       batches while there are any (bounded, so other models get their turn).</li>
 *   <li><b>Answers</b> go back as one {@link Batch.Delivery} task per transport thread per batch, so
 *       the transport flushes each connection once per batch; requests without a transport are answered
 *       on the finishing thread.</li>
 *   <li><b>Timers</b> (queue delay, deadlines) run on the transport thread that armed them, or on a
 *       shared fallback scheduler; only while requests wait.</li>
 * </ul>
 *
 * <h2>Memory ordering</h2>
 * A request's fields, including the enqueue time, are written before the MPSC offer (a release); the
 * dispatch owner's poll acquires them. The ownership CAS orders one owner's cycle before the next. An
 * instance and its batch are published to a compute thread by the pool's queue; a batch's answers to
 * a transport thread by its executor's queue; finished batches return to the owner through an MPSC
 * queue. A producer and a finishing instance meet Dekker-style on the request queue and the instance
 * state (both atomics): either the producer sees the instance not busy and kicks a dispatch, or the
 * instance's next dispatch sees the request. {@link #close()} and {@link #submit} meet on the closing
 * flag and the in-flight count.
 *
 * <p>Build one with {@link DynamicBatcherBuilder} or through {@link DynamicBatcherFactory}.
 */
public final class DynamicBatcher implements InferenceScheduler {
  private static final Logger log = LoggerFactory.getLogger(DynamicBatcher.class);

  /** Shortest retry hint sent with a queue-full rejection. */
  public static final long MIN_RETRY_AFTER_NS = TimeUnit.MILLISECONDS.toNanos(1);
  /**
   * Batches a compute thread runs for one instance in a row before it hands the instance back to the
   * pool's queue, so that other models' queued instances get a turn.
   */
  static final int MAX_CONSECUTIVE_BATCHES = 16;
  /** Batches measured before the cost model may send one inline: the first runs are measured on the pool. */
  static final int INLINE_MIN_SAMPLES = 8;
  /** How long close() waits for answers still being delivered, beyond the shutdown timeout. */
  static final long CLOSE_DELIVERY_GRACE_NS = TimeUnit.SECONDS.toNanos(5);

  private final String modelName;
  private final long version;
  private final ModelSignature signature;
  private final BatchingPolicy policy;
  private final NanoClock clock;
  private final long shutdownTimeoutNanos;
  private final long inlineMaxNanos;
  private final Executor compute;
  private final boolean manualDispatch; // tests: only doWork() dispatches; no timers, no continuation
  private final ScheduledExecutorService fallbackTimer;
  private final InferenceStats stats;
  private final MpscArrayQueue<InferRequest>[] queues;
  private final AtomicIntegerArray queuedPerLevel;
  /** Per level, the refusal's message: made once, since under overload a full queue refuses thousands a second. */
  private final String[] queueFullMessages;
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger rejected = new AtomicInteger();
  private final ModelInstance[] instances;
  private final MpscArrayQueue<Batch> finishedBatches;
  private final CompletionSequencer sequencer;
  private final BatchCostModel cost = new BatchCostModel();
  private final BatchFormer former;

  private final AtomicBoolean dispatching = new AtomicBoolean();
  private volatile boolean dispatchAgain;
  private final AtomicBoolean backgroundKickQueued = new AtomicBoolean(); // kickFromBackground: one queued at most
  /** Dispatch rounds on the transport threads requests come from (one queued per thread at most). */
  private final TransportRounds rounds = new TransportRounds(this::runRound, () -> dispatchHere(null));
  private long armedTimerNanos = Long.MAX_VALUE; // dispatch owner only: the earliest timer armed
  private volatile boolean closing;
  private final AtomicInteger closeOnce = new AtomicInteger();
  private volatile boolean closed;

  @SuppressWarnings({"unchecked", "rawtypes"}) // generic array of queues
  DynamicBatcher(DynamicBatcherBuilder b) {
    this.modelName = b.modelName;
    this.version = b.version;
    this.signature = b.signature;
    this.policy = b.policy;
    this.clock = b.clock;
    this.shutdownTimeoutNanos = b.shutdownTimeoutNanos;
    long inline = policy.inlineMaxNanos() >= 0 ? policy.inlineMaxNanos() : b.inlineMaxNanos;
    this.inlineMaxNanos = Math.max(0, inline);
    this.manualDispatch = b.manualDispatch;
    this.compute = b.compute;
    this.fallbackTimer = b.timer;
    this.stats = new InferenceStats(policy.maxBatchRows());
    int levels = policy.queueLevels(); // the configured levels, then the background level
    this.queues = new MpscArrayQueue[levels];
    this.queuedPerLevel = new AtomicIntegerArray(levels);
    this.queueFullMessages = new String[levels];
    for (int l = 0; l < levels; l++) {
      queueFullMessages[l] = String.format(java.util.Locale.ROOT,
          "model '%s' version %d: queue for priority level %d is full (%d requests)", modelName, version, l + 1,
          policy.level(l + 1).maxQueueSize());
      // Capacity rounds up to a power of two; the exact bound is enforced by queuedPerLevel.
      queues[l] = new MpscArrayQueue<>(Math.max(2, policy.level(l + 1).maxQueueSize()));
    }
    List<ModelRunner> runners = b.runners;
    int maxRequests = policy.maxBatchRows(); // every request has >= 1 row
    this.instances = new ModelInstance[runners.size()];
    for (int i = 0; i < instances.length; i++) {
      instances[i] = new ModelInstance(this, runners.get(i), i, maxRequests);
    }
    // Two batch objects per instance: one running, one finished but still being delivered (or waiting
    // for its turn when responses are ordered).
    this.finishedBatches = new MpscArrayQueue<>(Math.max(2, 2 * instances.length));
    this.sequencer = policy.preserveOrdering() ? new CompletionSequencer(this, 2 * instances.length) : null;
    AdaptiveBatchController controller = policy.latencyTargetNanos() > 0 && policy.dynamicBatching()
        ? new AdaptiveBatchController(policy.latencyTargetNanos(), policy.maxBatchRows(), policy.maxQueueDelayNanos(), cost)
        : null;
    this.former = new BatchFormer(this, queues, instances, finishedBatches, sequencer, controller, cost);
  }

  public static DynamicBatcherBuilder builder() {
    return new DynamicBatcherBuilder();
  }

  /**
   * {@inheritDoc}
   *
   * <p>Cost: a few atomic operations and one MPSC offer; when an instance is idle, one dispatch round
   * scheduled on the caller's transport thread (no wake-up). No allocation unless it throws.
   */
  @Override
  public void submit(InferRequest request) {
    int rows = request.batchSize();
    if (rows < 1 || (policy.maxBatchSize() > 0 && rows > policy.maxBatchSize())) {
      throw InferenceException.invalidField("inputs", "model '%s': batch size %d is outside [1, max_batch_size=%d]",
          modelName, rows, policy.maxBatchSize());
    }
    int level = levelOf(request.priority());
    inFlight.incrementAndGet(); // before reading `closing`: close() sets closing, then waits for in-flight to reach 0
    if (closing) {
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.unavailable("model '%s' version %d is shutting down", modelName, version);
    }
    int bound = policy.level(level + 1).maxQueueSize();
    if (queuedPerLevel.incrementAndGet(level) > bound) {
      queuedPerLevel.decrementAndGet(level);
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, queueFullMessages[level], null, retryAfterNanos(), null);
    }
    request.setEnqueueNanos(clock.nanoTime());
    // Cannot fail: the counter above admits at most `bound` requests, the queue holds at least that many.
    if (!queues[level].offer(request)) {
      queuedPerLevel.decrementAndGet(level);
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.resourceExhausted(retryAfterNanos(), "model '%s': queue full", modelName);
    }
    // After the offer: if every instance is busy, the one that finishes dispatches (it reads the queue
    // after clearing its busy bit); if one is idle, nobody else will, so kick a dispatch. The fence keeps
    // the read of the busy bits after the element's store (Dekker with the finisher's clear-then-drain):
    // the drain uses relaxedPoll, which does not wait for a claimed slot's store, so without it a store
    // still in this core's buffer could be missed by the finisher while this read saw it busy.
    VarHandle.fullFence();
    if (anyInstanceMaybeReady()) {
      if (request.priority() == InferRequest.BACKGROUND_PRIORITY && request.transport() == null) {
        kickFromBackground();
      } else {
        kick(request.transport());
      }
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>Reads the level's count (one atomic read per level) and the measured batch time; the wait estimate
   * is the time to work off the requests queued at this level and above, in full batches, spread over
   * the instances.
   */
  @Override
  public long admit(int priority) {
    if (closing) {
      rejected.incrementAndGet();
      throw InferenceException.unavailable("model '%s' version %d is shutting down", modelName, version);
    }
    if (priority == UNKNOWN_PRIORITY) {
      if (policy.priorityLevels() > 1) {
        return 0; // which level is not known yet: submit decides
      }
      priority = 0;
    }
    int level = levelOf(priority);
    int bound = policy.level(level + 1).maxQueueSize();
    int queued = queuedPerLevel.get(level);
    if (queued >= bound) {
      rejected.incrementAndGet();
      throw new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, queueFullMessages[level], null, retryAfterNanos(), null);
    }
    int ahead = queued;
    for (int l = 0; l < level; l++) {
      ahead += queuedPerLevel.get(l); // higher levels go first
    }
    return expectedWaitNanos(ahead);
  }

  /** The time to work off {@code queued} requests in full batches over the instances; 0 before any batch ran. */
  private long expectedWaitNanos(int queued) {
    double batchNanos = former.averageBatchNanos();
    return (long) (batchNanos * Math.ceil((double) queued / policy.maxBatchRows()) / instances.length);
  }

  private boolean anyInstanceMaybeReady() {
    for (ModelInstance instance : instances) {
      if (instance.maybeReady()) {
        return true;
      }
    }
    return false;
  }

  private int levelOf(int priority) {
    if (priority == InferRequest.BACKGROUND_PRIORITY) {
      // Background work (batch jobs) has its own lowest level in every batcher, whatever the config says.
      return policy.backgroundLevel() - 1;
    }
    if (priority == 0 || !policy.honoursPriority()) {
      return policy.defaultPriorityLevel() - 1;
    }
    if (priority < 0 || priority > policy.priorityLevels()) {
      throw InferenceException.invalidField("parameters[priority]",
          "model '%s': priority %d is outside [1, priority_levels=%d] (0 means the default level %d)",
          modelName, priority, policy.priorityLevels(), policy.defaultPriorityLevel());
    }
    return priority - 1;
  }

  private long retryAfterNanos() {
    // Roughly the time to work off the queue ahead, spread over the instances.
    double batchNanos = former.averageBatchNanos();
    long queued = queuedRequests();
    double estimate = batchNanos * ((double) queued / policy.maxBatchRows() + 1) / instances.length;
    return Math.max(MIN_RETRY_AFTER_NS, (long) estimate);
  }

  @Override
  public int queuedRequests() {
    int n = 0;
    for (int l = 0; l < queuedPerLevel.length(); l++) {
      n += queuedPerLevel.get(l);
    }
    return n;
  }

  @Override
  public int inFlightRequests() {
    return inFlight.get();
  }

  /** Requests refused by {@link #submit} for a full queue or shutdown (not for invalid input). */
  public int rejectedRequests() {
    return rejected.get();
  }

  @Override
  public InferenceStats stats() {
    return stats;
  }

  public BatchingPolicy policy() {
    return policy;
  }

  /** The batch-size cap in use now (the config's, or the adaptive controller's). Racy read, for metrics. */
  public int effectiveMaxBatchSize() {
    return former.effectiveMaxRows();
  }

  /** The queue delay in use now, in nanoseconds. Racy read, for metrics. */
  public long effectiveQueueDelayNanos() {
    return former.effectiveDelayNanos();
  }

  /** The longest predicted batch cost that may run on a transport thread, in nanoseconds (0: never). */
  public long inlineMaxNanos() {
    return inlineMaxNanos;
  }

  // ---- dispatch ----

  /** Some thread should run a dispatch cycle: a round on the caller's transport thread, else right here. */
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

  /**
   * A background producer (a batch job's reader, which runs at a lower CPU priority) does not take the
   * dispatch ownership itself: preempted while it held it, every online request's note would wait for
   * it to run again, tens of milliseconds on a core kept busy by compute. It queues one dispatch on the
   * fallback timer thread instead (at most one queued; the flag is cleared before that dispatch reads the
   * queues, so a request offered meanwhile is either seen by it or queues another).
   */
  private void kickFromBackground() {
    if (manualDispatch || fallbackTimer == null) {
      kick(null);
      return;
    }
    if (!backgroundKickQueued.compareAndSet(false, true)) {
      return;
    }
    try {
      fallbackTimer.execute(() -> {
        backgroundKickQueued.set(false);
        dispatchHere(null);
      });
    } catch (RejectedExecutionException e) { // the timer is shutting down: dispatch here after all
      backgroundKickQueued.set(false);
      dispatchHere(null);
    }
  }

  /**
   * Takes the dispatch ownership (or leaves a note for the owner) and runs cycles until nothing is
   * left for it. Returns the instance whose assigned batch the caller must now run on its own thread
   * (never more than one), or null.
   */
  private ModelInstance dispatchOnce(TransportExecutor here, ModelInstance self, boolean inlineOk) {
    ModelInstance local = null;
    for (;;) {
      if (!dispatching.compareAndSet(false, true)) {
        dispatchAgain = true; // the owner re-runs a cycle before it lets go ...
        if (dispatching.get()) {
          return local; // ... and it is still there to see the note
        }
        continue; // it let go meanwhile: take over
      }
      try {
        dispatchAgain = false;
        long now = clock.nanoTime();
        if (armedTimerNanos <= now) {
          armedTimerNanos = Long.MAX_VALUE; // that timer has fired or will find nothing; re-armed below if needed
        }
        ModelInstance picked = former.cycle(now, local == null ? self : null, inlineOk && local == null && here != null,
            compute);
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

  /** Dispatch on a thread that may not run batches inline (producers without a transport, timers, close). */
  private void dispatchHere(TransportExecutor here) {
    ModelInstance local = dispatchOnce(here, null, false);
    if (local != null) { // cannot happen without inline or self; keep the instance moving anyway
      startOnCompute(local, compute);
    }
  }

  /** A dispatch round on a transport thread: may run one cheap batch here, then reschedules if more waits. */
  private void runRound(TransportExecutor here) {
    ModelInstance local = dispatchOnce(here, null, inlineMaxNanos > 0);
    if (local != null) {
      runBatch(local);
      // New requests may have queued while it ran (from other transport threads): one more round,
      // after this thread's other work (fair to its connections).
      if (hasQueuedWork()) {
        rounds.schedule(here);
      }
    }
  }

  /** A compute-pool task: runs the instance's assigned batch, then its next ones while there are any. */
  void runOnComputeThread(ModelInstance instance) {
    ModelInstance next = instance;
    for (int run = 0; next != null; run++) {
      runBatch(next);
      if (manualDispatch) {
        return;
      }
      if (run + 1 >= MAX_CONSECUTIVE_BATCHES) {
        dispatchHere(null); // hands whatever is ready back to the pool's queue
        return;
      }
      next = dispatchOnce(null, next, false);
    }
  }

  /** Starts an assigned instance on the compute executor (the pool's queue publishes the batch). */
  void startOnCompute(ModelInstance instance, Executor executor) {
    try {
      executor.execute(instance);
    } catch (RejectedExecutionException e) {
      // The pool is closing (server shutdown): run it here rather than lose the requests.
      runBatch(instance);
    }
  }

  /** True when a batch of {@code rows} is predicted to be cheap enough to run on a transport thread. */
  boolean cheap(int rows) {
    return inlineMaxNanos > 0 && cost.samples() >= INLINE_MIN_SAMPLES && cost.predictNanos(rows) <= inlineMaxNanos;
  }

  private boolean hasQueuedWork() {
    for (MpscArrayQueue<InferRequest> q : queues) {
      if (!q.isEmpty()) {
        return true;
      }
    }
    return false;
  }

  /** Dispatch owner: arms one timer for the former's next deadline or queue delay, unless an earlier one is armed. */
  private void armTimer(TransportExecutor here, long now) {
    long due = former.nextTimerNanos();
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

  // ---- running and completing ----

  /** Runs the instance's assigned batch on this thread and completes it. */
  private void runBatch(ModelInstance instance) {
    Batch batch = instance.assigned;
    instance.assigned = null;
    instance.execute(batch);
    instance.runFinished(); // the runner may take its next batch (the other slot) from now on
    if (sequencer != null) {
      sequencer.finished(batch);
    } else {
      completeBatch(batch, false);
    }
  }

  /**
   * Records every request's outcome, hands the batch to the dispatch owner's accounting, and delivers
   * the answers: directly for requests of this thread's transport (or none), else one task per
   * transport thread. Runs on the thread that ran the batch (or the sequencer's drainer).
   *
   * @param othersBatch the calling thread did not run this batch (the sequencer completes it in order):
   *     then nobody else dispatches for its instance once it is freed, so this call does
   */
  void completeBatch(Batch batch, boolean othersBatch) {
    long now = clock.nanoTime();
    InferenceException failure = batch.failure;
    for (int i = 0; i < batch.count; i++) {
      InferRequest r = batch.requests[i];
      long total = now - r.enqueueNanos();
      batch.latencies[i] = total;
      if (failure != null) {
        stats.recordFailure(total);
      } else {
        // Triton's convention: every request of a batch is charged the batch's full compute times.
        long queued = batch.computeStartNanos - r.enqueueNanos();
        stats.recordSuccess(total, queued, batch.inputNanos, batch.inferNanos, batch.outputNanos);
        r.recordTimings(queued, batch.inputNanos, batch.inferNanos, batch.outputNanos, batch.rows);
      }
    }
    // Before any delivery can free the batch: the owner reads its measurements before it reuses it.
    finishedBatches.offer(batch); // never full: at most two batches per instance exist
    int local = 0;
    for (int i = 0; i < batch.count; i++) {
      TransportExecutor t = batch.requests[i].transport();
      if (t == null || t.inTransportThread()) {
        local++;
      } else {
        batch.deliveryFor(t, this).add(i);
      }
    }
    int groups = batch.deliveryCount;
    batch.pendingDeliveries.set(groups + 1); // +1: the local part below, released last
    for (int g = 0; g < groups; g++) {
      Batch.Delivery d = batch.deliveries[g];
      try {
        d.transport.execute(d);
      } catch (RejectedExecutionException e) {
        deliverGroup(d); // the transport is gone (shutdown): answer here, nobody reads it anyway
      }
    }
    if (local > 0) {
      for (int i = 0; i < batch.count; i++) {
        TransportExecutor t = batch.requests[i].transport();
        if (t == null || t.inTransportThread()) {
          deliver(batch, i);
        }
      }
      inFlight.addAndGet(-local);
    }
    // The thread that ran the batch dispatches next anyway (continuation, or the round's reschedule).
    deliveryDone(batch, null, othersBatch);
  }

  /** A transport thread (or the completing thread): answers one delivery group. */
  void deliverGroup(Batch.Delivery d) {
    Batch batch = d.batch;
    for (int k = 0; k < d.memberCount; k++) {
      deliver(batch, d.members[k]);
    }
    inFlight.addAndGet(-d.memberCount);
    deliveryDone(batch, d.transport, true);
  }

  private void deliver(Batch batch, int i) {
    InferRequest r = batch.requests[i];
    try {
      if (batch.failure != null) {
        r.callback().onFailure(r, batch.failure);
      } else {
        r.callback().onSuccess(r, batch.outputs[i]);
      }
    } catch (Throwable t) {
      log.warn("callback of request '{}' to model '{}' threw", r.id(), modelName, t);
    }
  }

  /** The last part of a batch delivered frees its slot; the instance may then be ready again. */
  private void deliveryDone(Batch batch, TransportExecutor here, boolean mayKick) {
    if (batch.pendingDeliveries.decrementAndGet() != 0) {
      return;
    }
    ModelInstance instance = batch.instance;
    instance.released(batch);
    if (mayKick && instance.maybeReady() && hasPendingOrQueued()) {
      // This slot was what the instance waited for (its run finished earlier): dispatch for it.
      kick(here);
    }
  }

  private boolean hasPendingOrQueued() {
    return queuedRequests() > 0;
  }

  /** The dispatch owner: answers one request that will not run (on its transport thread when it has one). */
  void fail(InferRequest r, InferenceException error, long now) {
    stats.recordFailure(now - r.enqueueNanos());
    TransportExecutor t = r.transport();
    if (t != null && !t.inTransportThread()) {
      try {
        t.execute(() -> failNow(r, error)); // allocates; only for requests that fail in the queue
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

  // ---- lifecycle ----

  /**
   * {@inheritDoc}
   *
   * <p>Queued requests are still dispatched (without waiting for the queue delay); those still queued
   * after the builder's shutdown timeout fail with UNAVAILABLE. Waits until every accepted request has
   * been answered (running batches finish and deliver first).
   */
  @Override
  public void close() {
    if (!closeOnce.compareAndSet(0, 1)) {
      while (!closed) { // a second caller waits for the first to finish
        LockSupport.parkNanos(100_000L);
      }
      return;
    }
    closing = true;
    // Queued requests are dispatched (or failed after the shutdown timeout); what is running finishes
    // and is delivered. A transport thread that never runs its deliveries (stuck, or stopped without
    // rejecting tasks) must not hang shutdown: after the shutdown timeout plus a grace, give up.
    long giveUpAt = System.nanoTime() + shutdownTimeoutNanos + CLOSE_DELIVERY_GRACE_NS;
    try {
      while (true) {
        if (manualDispatch) {
          doWork();
        } else {
          dispatchHere(null);
        }
        if (inFlight.get() == 0 && queuedRequests() == 0) {
          break;
        }
        if (System.nanoTime() - giveUpAt > 0) {
          log.warn("model '{}' version {}: {} requests still unanswered at close (their transport threads did not run"
              + " the answers); giving up on them", modelName, version, inFlight.get());
          break;
        }
        LockSupport.parkNanos(50_000L); // running batches and deliveries finish on their own threads
      }
    } finally {
      closed = true;
    }
  }

  // ---- called by the former, the instances and the sequencer ----

  /** Dispatch owner: a request left its level's queue (dispatched or failed). */
  void dequeued(int level) {
    queuedPerLevel.decrementAndGet(level);
  }

  String modelName() {
    return modelName;
  }

  long version() {
    return version;
  }

  ModelSignature signature() {
    return signature;
  }

  NanoClock clock() {
    return clock;
  }

  boolean closing() {
    return closing;
  }

  long shutdownTimeoutNanos() {
    return shutdownTimeoutNanos;
  }

  /**
   * Tests ({@code manualDispatch}): one dispatch cycle on the calling thread; returns the amount of
   * work done (0 = nothing happened).
   */
  int doWork() {
    ModelInstance local = dispatchOnce(null, null, false);
    if (local != null) {
      startOnCompute(local, compute);
    }
    return former.lastWork();
  }

  /** Batches handed to instances so far. Racy read, for tests and metrics. */
  long dispatchedBatches() {
    return former.dispatchedBatches();
  }

  /** Tests: every instance idle and every batch delivered. */
  boolean quiescent() {
    for (ModelInstance instance : instances) {
      if (!instance.quiescent()) {
        return false;
      }
    }
    return true;
  }

  /** Tests and metrics: whether the adaptive queue delay is sending without waiting now. Racy read. */
  boolean skippingQueueDelay() {
    return former.skippingQueueDelay();
  }

  /** Tests: the round size the adaptive queue delay measured (0 before any full wait). Racy read. */
  double measuredRoundRows() {
    return former.roundRows();
  }

  /** A queue-delay or deadline timer: one dispatch cycle on the thread it fires on. */
  private final class TimerTask implements Runnable {
    private final TransportExecutor transport; // null: the fallback timer thread

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
}
