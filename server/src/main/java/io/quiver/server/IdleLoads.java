package io.quiver.server;

import com.sun.jna.LastErrorException;
import io.quiver.core.Timers;
import io.quiver.lifecycle.LoadScheduling;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Model loads that give the CPU to serving threads first ({@code --model-load-yield-ms}).
 *
 * <p>While a load runs its runtime's session set-up and warm-up, its thread is under Linux's
 * {@code SCHED_IDLE}: it runs only on a core no other thread of the machine wants, and a serving thread
 * that wakes on its core takes the core at once. On a machine that is not saturated the load still runs
 * at full speed in the gaps; what it no longer does is hold a core that a request needs (measured in
 * docs/benchmarks/lifecycle.md). On a saturated machine a load would wait indefinitely, so each load's
 * time spent runnable but not running (the kernel's run-queue wait, {@code /proc/self/task/TID/schedstat})
 * is bounded: past {@code maxWait}, the load thread is raised to the normal policy for the rest of the
 * load, and a cold start pays at most about {@code 1.5 × maxWait} more than it would have.
 *
 * <p>A thread inherits its creator's policy, so threads a runtime starts during a load (an ONNX Runtime
 * session's intra-op pool, a GPU provider's threads) would keep {@code SCHED_IDLE} for good: when a
 * section closes, every thread of the process under {@code SCHED_IDLE} that is not a load thread inside a
 * section is raised to the normal policy. The server sets {@code SCHED_IDLE} nowhere else.
 *
 * <p>Leaving {@code SCHED_IDLE} needs {@code CAP_SYS_NICE} or an {@code RLIMIT_NICE} of at least 20
 * (sched(7)); a container's default has neither. {@link #create} probes that once on a throwaway thread
 * and, where the way back is closed, returns {@link LoadScheduling#NORMAL}: loads that could not be raised
 * again would starve under saturation, and so would the threads they start. The same where the process
 * already runs under {@code SCHED_IDLE} (the operator chose it for every thread), off Linux, or with
 * {@code maxWait} 0.
 *
 * <p>Thread-safe. {@link #close()} stops the timer thread that watches the lowered loads.
 */
public final class IdleLoads implements LoadScheduling, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(IdleLoads.class);
  private static final Path TASKS = Path.of("/proc/self/task");

  private final long maxWaitNanos;
  private final long checkPeriodNanos;
  /** Ids of the threads inside a lowered section: the sweep leaves them alone. */
  private final Set<Integer> inSection = ConcurrentHashMap.newKeySet();
  private final ScheduledThreadPoolExecutor timer;

  private IdleLoads(long maxWaitMillis) {
    this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMillis);
    this.checkPeriodNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(1), maxWaitNanos / 2);
    // Started now, from the thread that builds the server (normal policy), not later by a lowered load.
    this.timer = Timers.startedNow("quiver-load-priority");
  }

  /**
   * Loads that yield for at most {@code maxWaitMillis} of run-queue wait each, or {@link LoadScheduling#NORMAL}
   * where that cannot be done safely (see the class comment; the reason is logged once at INFO).
   */
  public static LoadScheduling create(long maxWaitMillis) {
    if (maxWaitMillis < 0) {
      throw new IllegalArgumentException("--model-load-yield-ms must be >= 0; was " + maxWaitMillis);
    }
    if (maxWaitMillis == 0) {
      return NORMAL;
    }
    String refused = probe();
    if (refused != null) {
      log.info("model loads run at normal priority: {}", refused);
      return NORMAL;
    }
    return new IdleLoads(maxWaitMillis);
  }

  /** Null when a thread of this process can enter SCHED_IDLE and leave it again; else why not. */
  private static String probe() {
    if (!CpuSharing.supported()) {
      return "SCHED_IDLE is Linux's";
    }
    try {
      if (CpuSharing.LibC.INSTANCE.sched_getscheduler(0) == CpuSharing.SCHED_IDLE) {
        return "the process already runs under SCHED_IDLE";
      }
      CpuSharing.LibC.INSTANCE.gettid();
    } catch (LastErrorException | LinkageError e) {
      return "the scheduling calls are not available (" + e + ")";
    }
    AtomicReference<String> refused = new AtomicReference<>();
    Thread probe = new Thread(() -> {
      try {
        CpuSharing.LibC.INSTANCE.sched_setscheduler(0, CpuSharing.SCHED_IDLE, new int[] {0});
      } catch (LastErrorException | LinkageError e) {
        refused.set("SCHED_IDLE refused (" + e + ")");
        return;
      }
      try {
        CpuSharing.LibC.INSTANCE.sched_setscheduler(0, CpuSharing.SCHED_OTHER, new int[] {0});
      } catch (LastErrorException | LinkageError e) {
        refused.set("a thread could not leave SCHED_IDLE again (" + e
            + "): that needs CAP_SYS_NICE or RLIMIT_NICE >= 20, and a lowered load would starve under saturation");
      }
    }, "quiver-load-priority-probe");
    probe.setDaemon(true);
    probe.start();
    try {
      probe.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted while probing";
    }
    return refused.get();
  }

  /** The bound on each load's run-queue wait under SCHED_IDLE, in milliseconds. */
  public long maxWaitMillis() {
    return TimeUnit.NANOSECONDS.toMillis(maxWaitNanos);
  }

  @Override
  public Section enter() {
    int tid = CpuSharing.LibC.INSTANCE.gettid(); // bound: the probe called it
    // Counted in first: another load's sweep must not raise this thread once it is lowered.
    inSection.add(tid);
    try {
      CpuSharing.LibC.INSTANCE.sched_setscheduler(0, CpuSharing.SCHED_IDLE, new int[] {0});
    } catch (LastErrorException | LinkageError e) {
      log.debug("load on {} stays at its priority: {}", Thread.currentThread().getName(), e.toString());
      inSection.remove(tid);
      return Section.NONE;
    }
    Lowered section = new Lowered(tid, runQueueWaitNanos(tid), System.nanoTime());
    try {
      section.check = timer.scheduleWithFixedDelay(section::check, checkPeriodNanos, checkPeriodNanos, TimeUnit.NANOSECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) { // closed: nothing bounds the wait, so do not yield
      section.close();
      return Section.NONE;
    }
    return section;
  }

  /** One load thread under SCHED_IDLE. {@code raised} and {@code closed} are guarded by {@code this}. */
  private final class Lowered implements Section {
    private final int tid;
    private final long waitAtStart;
    private final long startNanos;
    private volatile ScheduledFuture<?> check;
    private boolean raised;
    private boolean closed;

    Lowered(int tid, long waitAtStart, long startNanos) {
      this.tid = tid;
      this.waitAtStart = waitAtStart;
      this.startNanos = startNanos;
    }

    /** Timer thread: raises the load once it has waited its bound for a core (wall time where schedstat is missing). */
    void check() {
      long wait = runQueueWaitNanos(tid);
      long waited = wait >= 0 && waitAtStart >= 0 ? wait - waitAtStart : System.nanoTime() - startNanos;
      if (waited < maxWaitNanos) {
        return;
      }
      synchronized (this) {
        if (closed || raised) {
          return;
        }
        raised = true;
        setPolicy(tid, CpuSharing.SCHED_OTHER);
      }
      log.debug("load thread {} waited {} ms for a core under SCHED_IDLE: raised to the normal policy", tid,
          TimeUnit.NANOSECONDS.toMillis(waited));
      ScheduledFuture<?> c = check;
      if (c != null) {
        c.cancel(false);
      }
    }

    @Override
    public void close() {
      ScheduledFuture<?> c = check;
      if (c != null) {
        c.cancel(false);
      }
      synchronized (this) {
        closed = true;
      }
      setPolicy(0, CpuSharing.SCHED_OTHER);
      inSection.remove(tid);
      raiseInheritors();
    }
  }

  /** Raises every SCHED_IDLE thread of the process that is not a load inside its section (threads a runtime started during a load). */
  private void raiseInheritors() {
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
      for (Path task : tasks) {
        int tid;
        try {
          tid = Integer.parseInt(task.getFileName().toString());
        } catch (NumberFormatException e) {
          continue;
        }
        if (inSection.contains(tid)) {
          continue;
        }
        try {
          if (CpuSharing.LibC.INSTANCE.sched_getscheduler(tid) == CpuSharing.SCHED_IDLE) {
            setPolicy(tid, CpuSharing.SCHED_OTHER);
          }
        } catch (LastErrorException e) {
          // the thread ended meanwhile
        }
      }
    } catch (IOException | RuntimeException e) {
      log.warn("could not check the process's threads for an inherited SCHED_IDLE: {}", e.toString());
    }
  }

  private static void setPolicy(int tid, int policy) {
    try {
      CpuSharing.LibC.INSTANCE.sched_setscheduler(tid, policy, new int[] {0});
    } catch (LastErrorException e) {
      // ESRCH: the thread ended; EPERM cannot happen after the probe
      log.debug("could not set policy {} on thread {}: {}", policy, tid, e.toString());
    }
  }

  /** Nanoseconds the thread has spent runnable but waiting for a core, or -1 where the kernel does not say. */
  static long runQueueWaitNanos(int tid) {
    try {
      String line = Files.readString(TASKS.resolve(Integer.toString(tid)).resolve("schedstat"));
      String[] fields = line.trim().split(" ");
      return fields.length >= 2 ? Long.parseLong(fields[1]) : -1;
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
