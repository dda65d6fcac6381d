package io.quiver.lifecycle;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Timers;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads models when requests ask for them (lazy mode, and models evicted under the memory budget).
 * Requests for a model that is not resident wait in that model's bounded queue; the first one to
 * arrive starts the model's one load, the others join it; when the load ends each waiter is handed
 * an acquired version (or the failure), in arrival order. A waiter whose deadline passes first is
 * answered DEADLINE_EXCEEDED by a timer at once, not when the load ends.
 *
 * <p>Threading: {@link #park} runs on transport threads and never blocks (one map lookup, a short
 * monitor on the model's queue, a timer task for a finite deadline). Loads run on {@code
 * quiver-ondemand-N} threads (as many as the manager's load threads), which block in
 * {@link ModelManager#loadOnDemand} while the version loads on the manager's own pool; a slow load
 * holds up only its own model's waiters and those of models queued behind it for a loader thread.
 * Deadlines fire on one {@code quiver-ondemand-timer} thread.
 */
final class OnDemandLoader implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(OnDemandLoader.class);
  /** Retry hint given to a request refused because its model's queue is full. */
  private static final long FULL_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(500);

  private final ModelManager manager;
  private final int queueLimit;
  private final ConcurrentHashMap<String, Pending> pending = new ConcurrentHashMap<>();
  // Models whose waiters are being handed their versions: not to be evicted under them meanwhile.
  private final java.util.Set<String> handingOut = ConcurrentHashMap.newKeySet();
  private final ThreadPoolExecutor loaders;
  private final ScheduledThreadPoolExecutor timer;
  private final AtomicInteger waiting = new AtomicInteger();
  private volatile boolean closed;

  OnDemandLoader(ModelManager manager, int loaderThreads, int queueLimit) {
    this.manager = manager;
    this.queueLimit = queueLimit;
    AtomicInteger n = new AtomicInteger();
    // Unbounded queue: it holds at most one task per model (one Pending per model at a time).
    this.loaders = new ThreadPoolExecutor(loaderThreads, loaderThreads, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
        r -> daemon(r, "quiver-ondemand-" + n.incrementAndGet()));
    this.timer = Timers.startedNow("quiver-ondemand-timer");
    // Every thread started here, now, and kept: a Linux thread inherits the nice value and CPU policy
    // of the thread that starts it, and these would otherwise be started by the first request that
    // needs them (an event loop under SCHED_BATCH, a batch job's nice-19 reader), whose priority every
    // later load, and the threads a runtime starts during a load, would keep.
    this.loaders.prestartAllCoreThreads();
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /**
   * Whether requests are waiting for the model, or being handed it: from its on-demand load's start
   * until every waiter holds its version, the model is not chosen for eviction (it was just loaded
   * for them). Lock-free.
   */
  boolean hasWaiters(String model) {
    return pending.containsKey(model) || handingOut.contains(model);
  }

  /** Requests waiting for a model to load, all models together. */
  int waiting() {
    return waiting.get();
  }

  /** One model's load under way and the requests waiting for it. Guarded by its own monitor. */
  private static final class Pending {
    final String model;
    final long firstParkedNanos = System.nanoTime();
    final ArrayDeque<Waiter> waiters = new ArrayDeque<>();
    boolean finished;

    Pending(String model) {
      this.model = model;
    }
  }

  /** One parked request; answered exactly once (whoever wins {@link #claim}). */
  private static final class Waiter {
    final String version;
    final String requestId;
    final long deadlineNanos;
    final ResidentWaiter target;
    final AtomicBoolean answered = new AtomicBoolean();
    volatile ScheduledFuture<?> timeout;

    Waiter(String version, String requestId, long deadlineNanos, ResidentWaiter target) {
      this.version = version;
      this.requestId = requestId;
      this.deadlineNanos = deadlineNanos;
      this.target = target;
    }

    boolean claim() {
      if (!answered.compareAndSet(false, true)) {
        return false;
      }
      ScheduledFuture<?> t = timeout;
      if (t != null) {
        t.cancel(false);
      }
      return true;
    }
  }

  /**
   * Parks a request until {@code model} is resident. Starts the model's load unless one is under way.
   *
   * @throws InferenceException RESOURCE_EXHAUSTED (with a retry hint) when the model's queue is full;
   *     DEADLINE_EXCEEDED when the deadline has already passed; UNAVAILABLE after close
   */
  void park(String model, String version, String requestId, long deadlineNanos, ResidentWaiter target) {
    if (closed) {
      throw InferenceException.unavailable("model manager is shut down");
    }
    long now = System.nanoTime();
    if (deadlineNanos != InferRequest.NO_DEADLINE && deadlineNanos - now <= 0) {
      throw InferenceException.deadlineExceeded("the deadline passed before model '%s' could be loaded", model);
    }
    Waiter waiter = new Waiter(version, requestId, deadlineNanos, target);
    Pending joined;
    boolean started = false;
    while (true) {
      Pending p = pending.get(model);
      if (p == null) {
        Pending fresh = new Pending(model);
        p = pending.putIfAbsent(model, fresh);
        if (p == null) {
          p = fresh;
          started = true;
        }
      }
      synchronized (p) {
        if (p.finished) {
          started = false;
          continue; // its load just ended and it left the map; start or join the next one
        }
        if (p.waiters.size() >= queueLimit) {
          manager.listener().waitEnded(model, "rejected");
          throw InferenceException.resourceExhausted(FULL_RETRY_NANOS,
              "model '%s' is loading and %d requests are already waiting for it (the limit); retry shortly",
              model, queueLimit);
        }
        p.waiters.add(waiter);
        waiting.incrementAndGet();
      }
      joined = p;
      break;
    }
    if (deadlineNanos != InferRequest.NO_DEADLINE) {
      Pending p = joined;
      try {
        waiter.timeout = timer.schedule(() -> expire(p, waiter), deadlineNanos - now, TimeUnit.NANOSECONDS);
      } catch (RejectedExecutionException e) {
        // closing: close() answers every waiter
      }
      if (waiter.answered.get()) {
        ScheduledFuture<?> t = waiter.timeout;
        if (t != null) {
          t.cancel(false); // answered before the timeout was set
        }
      }
    }
    if (started) {
      Pending p = joined;
      try {
        loaders.execute(() -> load(p));
      } catch (RejectedExecutionException e) {
        finish(p, InferenceException.unavailable("model manager is shut down"));
      }
    }
  }

  private void expire(Pending p, Waiter waiter) {
    if (!waiter.claim()) {
      return;
    }
    synchronized (p) {
      if (p.waiters.remove(waiter)) {
        waiting.decrementAndGet();
      }
    }
    manager.listener().waitEnded(p.model, "timeout");
    answer(waiter, InferenceException.deadlineExceeded(
        "the deadline passed while model '%s' was loading on demand", p.model));
  }

  /** Loader thread: one load, then every waiter answered. */
  private void load(Pending p) {
    long t0 = System.nanoTime();
    InferenceException failure = null;
    boolean loaded = false;
    // The whole load yields to serving, not only the session set-up that ModelManager brackets on its load
    // thread: reading the repository entry and its config, choosing and closing the versions it evicts. That
    // part is little CPU, but at normal priority it holds a core for up to a scheduler slice when a serving
    // thread wakes there (docs/benchmarks/lifecycle.md, "Who delays a serving thread's wake-up"). Handing the
    // version to the waiting requests (finish, below) serves them, and runs at normal priority.
    try (LoadScheduling.Section lowered = manager.options().loadScheduling().enter()) {
      loaded = manager.loadOnDemand(p.model);
    } catch (InferenceException e) {
      failure = e;
    } catch (RuntimeException | Error e) {
      failure = InferenceException.internal("model '" + p.model + "': " + VersionLoader.reason(e), e);
    }
    long end = System.nanoTime();
    int waiters;
    synchronized (p) {
      waiters = p.waiters.size();
    }
    if (loaded || failure != null) {
      manager.listener().loadedOnDemand(p.model, failure == null, end - t0, end - p.firstParkedNanos, waiters);
    }
    if (failure != null) {
      log.warn("on-demand load of model '{}' failed after {} ms ({} request(s) waiting): {}", p.model,
          TimeUnit.NANOSECONDS.toMillis(end - t0), waiters, failure.getMessage());
    }
    finish(p, failure == null ? null : forRequests(p.model, failure));
  }

  /** Ends the model's wait: no one joins it from now on; each waiter is served or failed. */
  private void finish(Pending p, InferenceException failure) {
    List<Waiter> served;
    handingOut.add(p.model);
    try {
      synchronized (p) {
        p.finished = true;
        pending.remove(p.model, p);
        served = new ArrayList<>(p.waiters);
        waiting.addAndGet(-p.waiters.size());
        p.waiters.clear();
      }
      handOut(p, served, failure);
    } finally {
      handingOut.remove(p.model);
    }
  }

  private void handOut(Pending p, List<Waiter> served, InferenceException failure) {
    for (Waiter w : served) {
      if (!w.claim()) {
        continue; // its deadline fired first
      }
      if (w.target.isCancelled()) {
        manager.listener().waitEnded(p.model, "cancelled");
        answer(w, InferenceException.cancelled("the request was cancelled while model '%s' loaded", p.model));
        continue;
      }
      if (failure != null) {
        manager.listener().waitEnded(p.model, "failed");
        answer(w, failure);
        continue;
      }
      LoadedVersion version;
      try {
        version = manager.tryAcquire(p.model, w.version, w.requestId);
      } catch (InferenceException e) {
        manager.listener().waitEnded(p.model, "failed");
        answer(w, e);
        continue;
      }
      if (version == null) {
        // Evicted again between its load and this hand-out (the budget is tight): wait for the next load.
        try {
          park(p.model, w.version, w.requestId, w.deadlineNanos, w.target);
        } catch (InferenceException e) {
          manager.listener().waitEnded(p.model, e.code() == ErrorCode.RESOURCE_EXHAUSTED ? "rejected" : "failed");
          answer(w, e);
        }
        continue;
      }
      manager.listener().waitEnded(p.model, "served");
      try {
        w.target.resident(version);
      } catch (RuntimeException e) {
        log.warn("a request waiting for model '{}' failed when resumed: {}", p.model, e.toString());
      }
    }
  }

  private static void answer(Waiter w, InferenceException error) {
    try {
      w.target.failed(error);
    } catch (RuntimeException e) {
      log.warn("answering a waiting request failed: {}", e.toString());
    }
  }

  /** What a waiting request is told when its model's load failed. */
  private static InferenceException forRequests(String model, InferenceException e) {
    return switch (e.code()) {
      case NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED -> e;
      default -> new InferenceException(ErrorCode.UNAVAILABLE,
          "model '" + model + "' could not be loaded on demand: " + e.getMessage(), null, e.retryAfterNanos(), null);
    };
  }

  /** Fails every waiting request with UNAVAILABLE and stops the threads. Idempotent. */
  @Override
  public void close() {
    closed = true;
    for (Pending p : new ArrayList<>(pending.values())) {
      finish(p, InferenceException.unavailable("the server is shutting down; model '%s' was not loaded", p.model));
    }
    loaders.shutdownNow();
    timer.shutdownNow();
    try {
      loaders.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
