package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import org.jctools.queues.MpscArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler of one model version: Triton's dynamic batcher on bounded lock-free queues.
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li><b>Producers</b> (any number of transport threads) call {@link #submit}: it validates, counts
 *       the request against its level's bound, stamps the enqueue time and offers it to that level's
 *       JCTools {@link MpscArrayQueue}. It never blocks: a full level fails at once.</li>
 *   <li><b>The agent</b> (one thread, {@link BatchingAgent}) alone consumes those queues, keeps the
 *       pending requests, applies timeouts, forms batches and hands each to an idle instance.</li>
 *   <li><b>Workers</b> (one thread per {@link ModelRunner}, {@link InstanceWorker}) gather, run,
 *       slice and complete one batch at a time.</li>
 * </ul>
 * Callbacks run on a worker thread (results, runner failures) or on the agent thread (timeouts,
 * cancellations, shutdown).
 *
 * <h2>Memory ordering</h2>
 * A request's fields, including the enqueue time, are written before the MPSC offer (a release);
 * the agent's poll acquires them. A batch is published to a worker by a volatile write and returns
 * to the agent through another MPSC queue. Admission counters are atomics; {@link #close()} and
 * {@link #submit} meet on two sequentially consistent accesses (the closing flag and the in-flight
 * count) so that no request is accepted after the agent's final drain.
 *
 * <p>Build one with {@link DynamicBatcherBuilder} or through {@link DynamicBatcherFactory}.
 */
public final class DynamicBatcher implements InferenceScheduler {
  private static final Logger log = LoggerFactory.getLogger(DynamicBatcher.class);

  /** Shortest retry hint sent with a queue-full rejection. */
  public static final long MIN_RETRY_AFTER_NS = TimeUnit.MILLISECONDS.toNanos(1);

  private final String modelName;
  private final long version;
  private final ModelSignature signature;
  private final BatchingPolicy policy;
  private final NanoClock clock;
  private final AgentIdleStrategy idleStrategy;
  private final long maxParkNanos;
  private final long idleParkNanos;
  private final long shutdownTimeoutNanos;
  private final InferenceStats stats;
  private final MpscArrayQueue<InferRequest>[] queues;
  private final AtomicIntegerArray queuedPerLevel;
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger rejected = new AtomicInteger();
  private final InstanceWorker[] workers;
  private final MpscArrayQueue<Batch> returned;
  private final CompletionSequencer sequencer;
  private final BatchingAgent agent;
  private final Thread agentThread; // null when built without one (tests drive doWork())
  private volatile boolean closing;
  private volatile boolean agentSleeping;
  /**
   * Whether a new request is worth waking the sleeping agent for: true only while an instance is idle.
   * While every instance is busy a request can only wait, so producers leave the agent asleep and the
   * worker that finishes wakes it (one wake-up per batch instead of one per request).
   */
  private volatile boolean wakeOnRequest = true;
  private volatile boolean wake;
  private final AtomicInteger closeOnce = new AtomicInteger();
  private volatile boolean closed;

  @SuppressWarnings({"unchecked", "rawtypes"}) // generic array of queues
  DynamicBatcher(DynamicBatcherBuilder b) {
    this.modelName = b.modelName;
    this.version = b.version;
    this.signature = b.signature;
    this.policy = b.policy;
    this.clock = b.clock;
    this.idleStrategy = b.idleStrategy;
    this.maxParkNanos = b.maxParkNanos;
    this.idleParkNanos = Math.max(b.maxParkNanos, b.idleParkNanos);
    this.shutdownTimeoutNanos = b.shutdownTimeoutNanos;
    this.stats = new InferenceStats(policy.maxBatchRows());
    int levels = policy.priorityLevels();
    this.queues = new MpscArrayQueue[levels];
    this.queuedPerLevel = new AtomicIntegerArray(levels);
    for (int l = 0; l < levels; l++) {
      // Capacity rounds up to a power of two; the exact bound is enforced by queuedPerLevel.
      queues[l] = new MpscArrayQueue<>(Math.max(2, policy.level(l + 1).maxQueueSize()));
    }
    List<ModelRunner> runners = b.runners;
    int maxRequests = policy.maxBatchRows(); // every request has >= 1 row
    // Two batch objects per instance: one running, one finished but waiting for its turn when
    // responses are ordered (or being completed while the next one runs).
    Batch[] batches = new Batch[2 * runners.size()];
    for (int i = 0; i < batches.length; i++) {
      batches[i] = new Batch(maxRequests, signature.outputs().size());
    }
    this.returned = new MpscArrayQueue<>(Math.max(2, batches.length));
    this.sequencer = policy.preserveOrdering() ? new CompletionSequencer(this, batches.length) : null;
    this.workers = new InstanceWorker[runners.size()];
    for (int i = 0; i < workers.length; i++) {
      workers[i] = new InstanceWorker(this, runners.get(i), i, maxRequests);
    }
    AdaptiveBatchController controller = policy.latencyTargetNanos() > 0 && policy.dynamicBatching()
        ? new AdaptiveBatchController(policy.latencyTargetNanos(), policy.maxBatchRows(), policy.maxQueueDelayNanos())
        : null;
    this.agent = new BatchingAgent(this, queues, workers, batches, returned, sequencer, controller);
    for (InstanceWorker w : workers) {
      w.start();
    }
    if (b.startAgentThread) {
      agentThread = new Thread(this::runAgent, "quiver-batcher-" + modelName + "-" + version);
      agentThread.setDaemon(true);
      agentThread.start();
    } else {
      agentThread = null;
    }
  }

  public static DynamicBatcherBuilder builder() {
    return new DynamicBatcherBuilder();
  }

  /**
   * {@inheritDoc}
   *
   * <p>Cost: a few atomic operations and one MPSC offer; no allocation unless it throws.
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
      throw InferenceException.resourceExhausted(retryAfterNanos(),
          "model '%s' version %d: queue for priority level %d is full (%d requests)", modelName, version, level + 1, bound);
    }
    request.setEnqueueNanos(clock.nanoTime());
    // Cannot fail: the counter above admits at most `bound` requests, the queue holds at least that many.
    if (!queues[level].offer(request)) {
      queuedPerLevel.decrementAndGet(level);
      inFlight.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.resourceExhausted(retryAfterNanos(), "model '%s': queue full", modelName);
    }
    if (agentSleeping && wakeOnRequest) { // volatile reads after the offer's release: pair with the agent's sleep protocol
      LockSupport.unpark(agentThread);
    }
  }

  private int levelOf(int priority) {
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
    double batchNanos = agent.averageBatchNanos();
    long queued = queuedRequests();
    double estimate = batchNanos * ((double) queued / policy.maxBatchRows() + 1) / workers.length;
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

  /** The batch-size cap the agent uses now (the config's, or the adaptive controller's). Racy read, for metrics. */
  public int effectiveMaxBatchSize() {
    return agent.effectiveMaxRows();
  }

  /** The queue delay the agent uses now, in nanoseconds. Racy read, for metrics. */
  public long effectiveQueueDelayNanos() {
    return agent.effectiveDelayNanos();
  }

  /**
   * {@inheritDoc}
   *
   * <p>Queued requests are still dispatched (without waiting for the queue delay); those still queued
   * after the builder's shutdown timeout fail with UNAVAILABLE. Waits for running batches to finish.
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
    boolean interrupted = false;
    if (agentThread != null) {
      LockSupport.unpark(agentThread);
      while (true) {
        try {
          agentThread.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } else {
      while (!agent.terminated()) {
        if (agent.doWork() == 0) {
          LockSupport.parkNanos(50_000L);
        }
      }
    }
    for (InstanceWorker w : workers) {
      w.stop();
    }
    for (InstanceWorker w : workers) {
      while (true) {
        try {
          w.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    closed = true;
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  private void runAgent() {
    try {
      while (true) {
        wake = false;
        int work = agent.doWork();
        if (agent.terminated()) {
          return;
        }
        if (work > 0) {
          idleStrategy.reset();
          continue;
        }
        // No idle instance: new requests cannot be dispatched before a worker finishes, and a finishing
        // worker always signals, so requests need not wake us (nor keep us awake) until then.
        boolean dispatchable = agent.hasIdleWorker();
        wakeOnRequest = dispatchable;
        agentSleeping = true; // volatile write, then re-check: a producer or worker either sees it or we see its signal
        if (wake || (dispatchable ? agent.hasSignals() : agent.hasReturnedBatches()) || closing) {
          agentSleeping = false;
          if (closing) {
            LockSupport.parkNanos(50_000L); // draining: wait for workers without spinning hard
          }
          continue;
        }
        long timer = agent.nanosUntilTimer();
        // With no timer pending every event that needs the agent unparks it, so it may sleep long;
        // with one, it wakes at least every maxParkNanos (the clock may be a test's manual clock).
        long park = timer == Long.MAX_VALUE ? idleParkNanos : Math.min(maxParkNanos, timer);
        idleStrategy.idle(0, Math.max(1, park));
        agentSleeping = false;
        wakeOnRequest = true;
      }
    } catch (Throwable t) {
      log.error("batching agent of model '{}' version {} died; failing requests from now on", modelName, version, t);
      closing = true;
    }
  }

  // ---- called by the agent and the workers ----

  /** Agent or worker: wake the agent if it sleeps. */
  void signalAgent() {
    wake = true;
    if (agentSleeping && agentThread != null) {
      LockSupport.unpark(agentThread);
    }
  }

  /** Agent: a request left its level's queue (dispatched or failed). */
  void dequeued(int level) {
    queuedPerLevel.decrementAndGet(level);
  }

  /** Worker: a batch has its outputs or its failure. */
  void finished(Batch batch) {
    if (sequencer != null) {
      sequencer.finished(batch);
    } else {
      completeBatch(batch);
    }
  }

  /** Worker: answers every request of the batch, then gives the batch object back to the agent. */
  void completeBatch(Batch batch) {
    long now = clock.nanoTime();
    InferenceException failure = batch.failure;
    for (int i = 0; i < batch.count; i++) {
      InferRequest r = batch.requests[i];
      long total = now - r.enqueueNanos();
      batch.latencies[i] = total;
      try {
        if (failure != null) {
          stats.recordFailure(total);
          r.callback().onFailure(r, failure);
        } else {
          // Triton's convention: every request of a batch is charged the batch's full compute times.
          long queued = batch.computeStartNanos - r.enqueueNanos();
          stats.recordSuccess(total, queued, batch.inputNanos, batch.inferNanos, batch.outputNanos);
          r.recordTimings(queued, batch.inputNanos, batch.inferNanos, batch.outputNanos);
          r.callback().onSuccess(r, batch.outputs[i]);
        }
      } catch (Throwable t) {
        log.warn("callback of request '{}' to model '{}' threw", r.id(), modelName, t);
      }
    }
    inFlight.addAndGet(-batch.count);
    returned.offer(batch); // release: the agent's poll sees the latencies written above; never full (pool-sized)
    signalAgent();
  }

  /** Agent: answers one request that will not run. */
  void fail(InferRequest r, InferenceException error, long now) {
    stats.recordFailure(now - r.enqueueNanos());
    try {
      r.callback().onFailure(r, error);
    } catch (Throwable t) {
      log.warn("callback of request '{}' to model '{}' threw", r.id(), modelName, t);
    }
    inFlight.decrementAndGet();
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

  /** Tests without an agent thread: one duty cycle on the calling thread. */
  int doWork() {
    return agent.doWork();
  }

  /** Batches handed to instances so far. Racy read, for tests and metrics. */
  long dispatchedBatches() {
    return agent.dispatchedBatches();
  }

  /** Tests without an agent thread: every instance idle and every batch object returned. */
  boolean quiescent() {
    return agent.quiescent();
  }
}
