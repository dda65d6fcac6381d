package io.quiver.server;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.util.Locale;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the event loops share a core with the threads that compute batches.
 *
 * <p>Under Linux's default policy an event loop woken by a socket preempts the compute thread on its core
 * at once. Under sustained overload of a slow model that is one preemption per handful of arriving calls,
 * most of them refused, each costing a context switch and the transport's per-wake-up work spread over
 * few calls. The {@code SCHED_BATCH} policy keeps the event loop's fair share of the core (the same
 * weight) but lets it run when the compute thread parks or its time slice ends, not on every wake-up: the
 * loop then finds milliseconds of arrivals and serves them in one pass. A core with nothing else runnable
 * still runs a woken loop at once, so an idle server, or one whose models run inline on the loops,
 * answers as before; on a machine with a spare core the woken loop is placed there. By default
 * ({@link EventLoopPolicy#AUTO}) the loops take it where they share cores with the compute threads
 * (measured in docs/benchmarks/cpu-sharing.md).
 *
 * <p>While background work runs (a batch job, docs/batch-jobs.md) the loops run under the default policy
 * instead ({@link LoopScheduling}): the job keeps the compute threads busy whenever online requests leave
 * them idle, so a loop that waited for a compute thread's slice would make every online request wait
 * for it twice, on arrival and on its answer (docs/benchmarks/batch-jobs.md).
 *
 * <p>Threads that an event loop starts inherit its policy (Linux copies it to a new thread): the server
 * starts its long-lived threads elsewhere. Only Linux has the policy; elsewhere, or where the call fails,
 * the loops keep the default one and {@link #applyToCurrentThread} says so. The static methods are
 * stateless and thread-safe.
 */
public final class CpuSharing {
  private static final Logger log = LoggerFactory.getLogger(CpuSharing.class);

  /** Which policy the event loops run under ({@code --event-loop-scheduling}). */
  public enum EventLoopPolicy {
    /** {@link #BATCH} when event loops and compute threads together outnumber the usable cores. */
    AUTO,
    /** {@code SCHED_BATCH}: a woken event loop waits for the compute thread's time slice or park. */
    BATCH,
    /** The default policy: a woken event loop preempts whatever runs on its core. */
    NORMAL;

    /** Parses a flag value (auto, batch, normal), naming the flag in the error. */
    public static EventLoopPolicy parse(String value) {
      try {
        return valueOf(value.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--event-loop-scheduling must be auto, batch or normal; was '" + value + "'");
      }
    }

    /** Whether event loops started with this setting run under {@code SCHED_BATCH} on this machine. */
    public boolean batch(int usableCores, int eventLoops, int computeThreads) {
      return this == BATCH || (this == AUTO && eventLoops + computeThreads > usableCores);
    }
  }

  /** Linux's scheduling policies (sched.h): the ones the server sets ({@link IdleLoads} uses the last). */
  static final int SCHED_OTHER = 0;
  static final int SCHED_BATCH = 3;
  static final int SCHED_IDLE = 5;
  /** setpriority(2)'s "which" for one process, here the calling thread (who = 0). */
  private static final int PRIO_PROCESS = 0;

  private CpuSharing() {}

  /** Whether this operating system has the policy (Linux). */
  public static boolean supported() {
    return Platform.isLinux();
  }

  /** A Netty thread factory whose threads switch themselves to {@code SCHED_BATCH} before running. */
  public static DefaultThreadFactory batchThreads(String poolName) {
    return new DefaultThreadFactory(poolName, true) {
      @Override
      protected Thread newThread(Runnable task, String name) {
        return super.newThread(() -> {
          applyToCurrentThread(true);
          task.run();
        }, name);
      }
    };
  }

  /**
   * Sets the calling thread's policy: {@code SCHED_BATCH} when {@code batch}, else the default. Returns
   * whether the policy is now the one asked for (false off Linux or when the kernel refused; logged once
   * per thread at WARN, since the server still works, only with more preemption).
   */
  public static boolean applyToCurrentThread(boolean batch) {
    if (!supported()) {
      return false;
    }
    try {
      // pid 0: the calling thread (Linux sets policies per thread); sched_priority must be 0 for both.
      LibC.INSTANCE.sched_setscheduler(0, batch ? SCHED_BATCH : SCHED_OTHER, new int[] {0});
      return true;
    } catch (LastErrorException | LinkageError e) { // refused, or JNA's native part would not load
      log.warn("could not set {} on thread {}: {}", batch ? "SCHED_BATCH" : "SCHED_OTHER",
          Thread.currentThread().getName(), e.toString());
      return false;
    }
  }

  /**
   * The data plane's event loops and the policy chosen for them at start, which background work
   * suspends: from the first running batch job until the last one ends, the loops run under the default
   * policy, so an online request wakes its loop at once even though the job keeps the compute threads
   * busy. Each change runs as a task on every loop (a thread sets its own policy), in the order the
   * changes were made. Thread-safe.
   */
  public static final class LoopScheduling {
    private final Iterable<? extends Executor> loops;
    private final boolean batch;
    private int background; // guarded by this

    /** @param batch whether the loops were started under {@code SCHED_BATCH} */
    public LoopScheduling(Iterable<? extends Executor> loops, boolean batch) {
      this.loops = loops;
      this.batch = batch;
    }

    /** Background work started: the loops preempt again while any runs. */
    public synchronized void backgroundWorkStarted() {
      if (background++ == 0 && batch) {
        applyToLoops(false);
      }
    }

    /** Background work ended: with none left, the loops return to the policy chosen at start. */
    public synchronized void backgroundWorkEnded() {
      if (background <= 0) {
        throw new IllegalStateException("backgroundWorkEnded without backgroundWorkStarted");
      }
      if (--background == 0 && batch) {
        applyToLoops(true);
      }
    }

    private void applyToLoops(boolean batchPolicy) {
      for (Executor loop : loops) {
        try {
          loop.execute(() -> applyToCurrentThread(batchPolicy));
        } catch (RejectedExecutionException e) {
          return; // shutting down: nothing left to schedule
        }
      }
    }
  }

  /**
   * Gives the calling thread nice value {@code nice} (Linux keeps it per thread, and setpriority(2) for
   * "this process" changes only the calling thread). For threads that must yield to everything else,
   * such as a batch job's. Returns whether it has it now (false off Linux, or when the kernel refused:
   * an unprivileged thread may raise its nice value, not lower it).
   */
  public static boolean niceCurrentThread(int nice) {
    if (!supported()) {
      return false;
    }
    try {
      LibC.INSTANCE.setpriority(PRIO_PROCESS, 0, nice);
      return true;
    } catch (LastErrorException | LinkageError e) {
      log.warn("could not set nice {} on thread {}: {}", nice, Thread.currentThread().getName(), e.toString());
      return false;
    }
  }

  /**
   * The C library's scheduling calls, through JNA (loaded on first use). {@code pid} is a thread id
   * (0 = the calling thread): Linux keeps policies per thread.
   */
  interface LibC extends Library {
    LibC INSTANCE = Native.load("c", LibC.class);

    int sched_setscheduler(int pid, int policy, int[] param) throws LastErrorException;

    int sched_getscheduler(int pid) throws LastErrorException;

    /** The calling thread's id (glibc 2.30 and later). */
    int gettid();

    int setpriority(int which, int who, int prio) throws LastErrorException;
  }
}
