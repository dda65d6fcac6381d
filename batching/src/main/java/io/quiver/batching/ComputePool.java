package io.quiver.batching;

import java.lang.invoke.VarHandle;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.jctools.queues.MpmcUnboundedXaddArrayQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The threads that run batches which are too slow to run on a transport thread, shared by every model
 * version of a server: a loaded model costs no thread, idle or not (hundreds of loaded versions share
 * these few threads).
 *
 * <p>A task is one instance's turn at the model ({@link DynamicBatcher} submits at most one task per
 * instance at a time, and the task keeps taking that instance's next batches while there are any), so
 * the queue holds at most one entry per instance and {@link #execute} never blocks. A submitter wakes
 * one parked thread when one is parked; a thread that finds the queue empty idles by the
 * {@link IdleMode}: it parks at once unless the machine has a core that no busy thread needs.
 *
 * <p>Thread-safe. {@link #close()} lets queued tasks finish, then stops the threads.
 */
public final class ComputePool implements Executor, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ComputePool.class);

  /** How a pool thread waits for work. */
  public enum IdleMode {
    /** Park at once: the right choice when the pool's threads and the event loops fill the cores. */
    PARK,
    /**
     * Spin for up to {@link #SPIN_NS} before parking: saves a wake-up per batch, but only pays where a
     * core would otherwise be idle; spinning on a core that an event loop or another worker needs
     * steals the time it waits for.
     */
    SPIN_THEN_PARK;

    /**
     * Spinning only where a spare core exists: more usable cores than threads that may be busy at once
     * (the transport's event loops plus this pool's threads), with one core to spare.
     */
    public static IdleMode forMachine(int usableCores, int busyThreads) {
      return usableCores >= busyThreads + 1 ? SPIN_THEN_PARK : PARK;
    }
  }

  /** Longest spin of an idle pool thread in {@link IdleMode#SPIN_THEN_PARK}, in nanoseconds. */
  public static final long SPIN_NS = TimeUnit.MICROSECONDS.toNanos(50);
  /** Pool threads park at most this long without a wake-up (a safety net; every submit wakes one). */
  static final long MAX_PARK_NS = TimeUnit.MILLISECONDS.toNanos(100);

  private final MpmcUnboundedXaddArrayQueue<Runnable> tasks = new MpmcUnboundedXaddArrayQueue<>(256);
  private final Thread[] threads;
  private final IdleMode idleMode;
  /** Threads parked or about to park; submitters wake one of them. */
  private final AtomicInteger parked = new AtomicInteger();
  private final Thread[] parkedStack; // guarded by itself: who to wake; never more entries than threads
  private int parkedTop;
  private volatile boolean closing;

  /**
   * @param threads how many threads run batches (≥ 1)
   * @param idleMode how an idle thread waits; see {@link IdleMode#forMachine}
   */
  public ComputePool(int threads, IdleMode idleMode, String namePrefix) {
    if (threads < 1) {
      throw new IllegalArgumentException("compute threads must be >= 1; was " + threads);
    }
    this.idleMode = idleMode;
    this.threads = new Thread[threads];
    this.parkedStack = new Thread[threads];
    for (int i = 0; i < threads; i++) {
      Thread t = new Thread(this::runLoop, namePrefix + i);
      t.setDaemon(true);
      this.threads[i] = t;
    }
    for (Thread t : this.threads) {
      t.start();
    }
  }

  /** A pool sized for this machine: one thread per usable core, idling by {@link IdleMode#forMachine}. */
  public static ComputePool forMachine(int eventLoops) {
    int cores = Runtime.getRuntime().availableProcessors();
    return new ComputePool(cores, IdleMode.forMachine(cores, cores + eventLoops), "quiver-compute-");
  }

  public int threads() {
    return threads.length;
  }

  public IdleMode idleMode() {
    return idleMode;
  }

  /**
   * Queues a task and wakes a parked thread if there is one. Never blocks.
   *
   * @throws RejectedExecutionException after {@link #close()}
   */
  @Override
  public void execute(Runnable task) {
    if (closing) {
      throw new RejectedExecutionException("compute pool is closed");
    }
    tasks.offer(task);
    // Store-load fence between the offer and the read of `parked` (Dekker with runLoop's announce-then-
    // re-poll): either the parking thread's re-poll sees the task or this read sees it parked.
    VarHandle.fullFence();
    if (parked.get() > 0) {
      wakeOne();
    }
  }

  private void wakeOne() {
    Thread t = null;
    synchronized (parkedStack) {
      if (parkedTop > 0) {
        t = parkedStack[--parkedTop];
        parkedStack[parkedTop] = null;
      }
    }
    if (t != null) {
      LockSupport.unpark(t);
    }
  }

  private void runLoop() {
    Thread self = Thread.currentThread();
    while (true) {
      // relaxedPoll throughout: poll would spin on a slot whose producer (any dispatching thread, a nice-19
      // job thread among them) was preempted between claiming and filling it. Reading it as empty is safe:
      // that producer wakes a parked thread after its offer completes (execute's offer-then-read).
      Runnable task = tasks.relaxedPoll();
      if (task == null && idleMode == IdleMode.SPIN_THEN_PARK) {
        long spinUntil = System.nanoTime() + SPIN_NS;
        while ((task = tasks.relaxedPoll()) == null && System.nanoTime() < spinUntil && !closing) {
          Thread.onSpinWait();
        }
      }
      if (task == null) {
        if (closing) {
          return;
        }
        parked.incrementAndGet();
        synchronized (parkedStack) {
          parkedStack[parkedTop++] = self;
        }
        task = tasks.relaxedPoll(); // re-check after announcing: pairs with execute()'s offer-then-read
        if (task == null && !closing) {
          LockSupport.parkNanos(this, MAX_PARK_NS);
        }
        synchronized (parkedStack) {
          for (int i = 0; i < parkedTop; i++) { // still listed if nobody woke us: leave the stack
            if (parkedStack[i] == self) {
              parkedStack[i] = parkedStack[--parkedTop];
              parkedStack[parkedTop] = null;
              break;
            }
          }
        }
        parked.decrementAndGet();
        if (task == null) {
          continue;
        }
      }
      try {
        task.run();
      } catch (Throwable t) {
        log.error("a compute task failed outside the batcher's own error handling", t);
      }
    }
  }

  /** Stops accepting tasks, lets queued ones run, and waits for the threads to end. Idempotent. */
  @Override
  public void close() {
    closing = true;
    for (Thread t : threads) {
      LockSupport.unpark(t);
    }
    boolean interrupted = false;
    for (Thread t : threads) {
      while (t.isAlive()) {
        if (t == Thread.currentThread()) {
          break;
        }
        try {
          t.join();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    // Whatever was offered between the closing flag and the threads' exit still runs.
    Runnable task;
    while ((task = tasks.poll()) != null) {
      task.run();
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
