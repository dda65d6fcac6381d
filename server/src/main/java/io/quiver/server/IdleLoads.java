package io.quiver.server;

import com.sun.jna.LastErrorException;
import io.quiver.core.Timers;
import io.quiver.lifecycle.LoadScheduling;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
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
 * <p>The JIT's compiler threads follow the loads: from the moment a section opens until {@link
 * #JIT_LINGER_MILLIS} after the last one closes, they too run under {@code SCHED_IDLE}. A load runs code the serving path never does (config parsing, the
 * repository, the runtime's session API), and the compilations that code sets off, during the load and
 * shortly after, are otherwise the largest part of the CPU a churning model tail takes from serving: a
 * compiler thread at normal priority keeps its core until its scheduler slice ends when a serving thread
 * wakes there (docs/benchmarks/lifecycle.md, "Who delays a serving thread's wake-up"). Outside loads the
 * JIT runs at the JVM's own priority. A compiler thread is not held back by a total bound as a load is (it
 * may stay lowered through a long churn) but by starving: one that, over {@link #JIT_WINDOW_MILLIS}, spent
 * {@link #STARVED_SHARE} of the time waiting for a core and got at most {@link #STARVED_RUN_SHARE} of it on
 * one (a saturated machine leaves no gaps) runs at the normal policy for the next window, then is lowered
 * and judged again.
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
public final class IdleLoads implements LoadScheduling {
  private static final Logger log = LoggerFactory.getLogger(IdleLoads.class);
  private static final Path TASKS = Path.of("/proc/self/task");
  /** How long the JIT's compiler threads stay lowered after the last load section closes (the compilations a load set off). */
  static final long JIT_LINGER_MILLIS = 2000;
  /**
   * A lowered compiler thread starves when, over {@link #JIT_WINDOW_MILLIS}, it spent at least this share of
   * the time waiting for a core and ran at most {@link #STARVED_RUN_SHARE} of it. Unlike a load, whose yield
   * is bounded in total ({@code maxWait}), the JIT may stay lowered through a long churn: under SCHED_IDLE it
   * waits whenever every core is busy with normal threads, but on a machine that is not saturated it also
   * runs in the gaps they leave, which a saturated one does not.
   */
  static final double STARVED_SHARE = 0.8;
  /** See {@link #STARVED_SHARE}. */
  static final double STARVED_RUN_SHARE = 0.05;
  /** The window over which a lowered compiler thread is judged, and for which a starving one is raised. */
  static final long JIT_WINDOW_MILLIS = 1000;

  private final long maxWaitNanos;
  private final long checkPeriodNanos;
  private final long jitLingerNanos;
  private final long jitWindowNanos = TimeUnit.MILLISECONDS.toNanos(JIT_WINDOW_MILLIS);
  /** Ids of the threads inside a lowered section: the sweep leaves them alone. */
  private final Set<Integer> inSection = ConcurrentHashMap.newKeySet();
  /** The section this thread has open, if any: a section entered inside it is nested and changes nothing. */
  private final ThreadLocal<Lowered> openOnThisThread = new ThreadLocal<>();
  private final ScheduledThreadPoolExecutor timer;

  // The JIT's compiler threads while loads run; all guarded by jitLock (jitLowered is also read without it).
  private final Object jitLock = new Object();
  private int openSections;
  private volatile boolean jitLowered;
  /** The compiler threads of this period, by thread id. */
  private final Map<Integer, CompilerThread> compilerThreads = new HashMap<>();
  /** Threads met this period that are not compiler threads. */
  private final Set<Integer> notCompilers = new HashSet<>();
  private ScheduledFuture<?> jitCheck;
  private ScheduledFuture<?> jitRaise;

  private IdleLoads(long maxWaitMillis, long jitLingerMillis) {
    this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(maxWaitMillis);
    this.checkPeriodNanos = Math.max(TimeUnit.MILLISECONDS.toNanos(1), maxWaitNanos / 2);
    this.jitLingerNanos = TimeUnit.MILLISECONDS.toNanos(jitLingerMillis);
    // Started now, from the thread that builds the server (normal policy), not later by a lowered load.
    this.timer = Timers.startedNow("quiver-load-priority");
  }

  /**
   * Loads that yield for at most {@code maxWaitMillis} of run-queue wait each, or {@link LoadScheduling#NORMAL}
   * where that cannot be done safely (see the class comment; the reason is logged once at INFO).
   */
  public static LoadScheduling create(long maxWaitMillis) {
    return create(maxWaitMillis, JIT_LINGER_MILLIS);
  }

  /** As {@link #create(long)}, with the compiler threads' linger after the last section given (tests). */
  static LoadScheduling create(long maxWaitMillis, long jitLingerMillis) {
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
    return new IdleLoads(maxWaitMillis, jitLingerMillis);
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
    if (openOnThisThread.get() != null) {
      return Section.NONE; // nested: the outer section already lowers this thread, and its close raises it
    }
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
    openOnThisThread.set(section);
    sectionOpened(); // before anything that may close the section: close() counts it out again
    try {
      section.check = timer.scheduleWithFixedDelay(section::check, checkPeriodNanos, checkPeriodNanos, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) { // closed: nothing bounds the wait, so do not yield
      section.close();
      return Section.NONE;
    }
    return section;
  }

  /** A section opened: the compiler threads go under SCHED_IDLE, if they are not already, and stay there. */
  private void sectionOpened() {
    synchronized (jitLock) {
      openSections++;
      if (jitRaise != null) {
        jitRaise.cancel(false);
        jitRaise = null;
      }
      if (jitLowered) {
        return;
      }
      try {
        // A quarter window apart: each check lists the process's threads, and a thread is judged over a whole window.
        jitCheck = timer.scheduleWithFixedDelay(this::checkCompilerThreads, 0, jitWindowNanos / 4, TimeUnit.NANOSECONDS);
        jitLowered = true; // the first check, at once, lowers them
      } catch (RejectedExecutionException e) {
        // closed: the JIT keeps its priority
      }
    }
  }

  /** A section closed: after the last, the compiler threads are raised once the linger has passed without a new one. */
  private void sectionClosed() {
    synchronized (jitLock) {
      openSections--;
      if (openSections > 0 || !jitLowered) {
        return;
      }
      try {
        jitRaise = timer.schedule(() -> {
          synchronized (jitLock) {
            if (openSections == 0) {
              raiseCompilerThreadsLocked();
            }
          }
        }, jitLingerNanos, TimeUnit.NANOSECONDS);
      } catch (RejectedExecutionException e) {
        raiseCompilerThreadsLocked();
      }
    }
  }

  /**
   * Timer thread, while the compiler threads are lowered: lowers any it has not met yet (the JVM starts
   * more as its compile queue grows), raises for one window each one that is starving (see the class
   * comment), and lowers again those whose window has passed.
   */
  private void checkCompilerThreads() {
    synchronized (jitLock) {
      if (!jitLowered) {
        return;
      }
      long now = System.nanoTime();
      for (CompilerThread t : compilerThreads.values()) {
        t.check(now);
      }
      try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
        for (Path task : tasks) {
          int tid = taskId(task);
          if (tid < 0 || compilerThreads.containsKey(tid) || notCompilers.contains(tid)) {
            continue;
          }
          if (!isCompilerThread(tid)) {
            notCompilers.add(tid);
            continue;
          }
          try {
            CpuSharing.LibC.INSTANCE.sched_setscheduler(tid, CpuSharing.SCHED_IDLE, new int[] {0});
            compilerThreads.put(tid, new CompilerThread(tid, now));
          } catch (LastErrorException e) {
            notCompilers.add(tid); // it ended meanwhile
          }
        }
      } catch (IOException | RuntimeException e) {
        log.debug("could not list the process's threads for the JIT's compiler threads: {}", e.toString());
      }
    }
  }

  /** One lowered compiler thread and what it was last seen doing. Guarded by jitLock. */
  private final class CompilerThread {
    private final int tid;
    private long[] lastStat; // schedstat at the last reading (time on a core, run-queue wait), null if unreadable
    private long lastNanos;
    private boolean raised; // at the normal policy for having starved, until raisedUntilNanos
    private long raisedUntilNanos;

    CompilerThread(int tid, long now) {
      this.tid = tid;
      this.lastStat = schedStat(tid);
      this.lastNanos = now;
    }

    /** Lowers it again once its window at the normal policy is over; otherwise judges it once a window has passed. */
    void check(long now) {
      if (raised) {
        if (now - raisedUntilNanos >= 0) {
          setPolicy(tid, CpuSharing.SCHED_IDLE);
          raised = false;
          lastStat = schedStat(tid);
          lastNanos = now;
        }
        return;
      }
      long window = now - lastNanos;
      if (window < jitWindowNanos) {
        return;
      }
      long[] stat = schedStat(tid);
      if (stat != null && lastStat != null && stat[1] - lastStat[1] >= STARVED_SHARE * window
          && stat[0] - lastStat[0] <= STARVED_RUN_SHARE * window) {
        setPolicy(tid, CpuSharing.SCHED_OTHER);
        raised = true;
        raisedUntilNanos = now + jitWindowNanos;
        log.debug("JIT compiler thread {} ran {} ms and waited for a core {} ms of the last {} ms under SCHED_IDLE: at the"
                + " normal policy for the next {} ms", tid, TimeUnit.NANOSECONDS.toMillis(stat[0] - lastStat[0]),
            TimeUnit.NANOSECONDS.toMillis(stat[1] - lastStat[1]), TimeUnit.NANOSECONDS.toMillis(window),
            TimeUnit.NANOSECONDS.toMillis(jitWindowNanos));
      }
      lastStat = stat;
      lastNanos = now;
    }
  }

  /** Caller holds jitLock. Every compiler thread back to the normal policy; the period ends. */
  private void raiseCompilerThreadsLocked() {
    if (!jitLowered) {
      return;
    }
    jitLowered = false;
    if (jitCheck != null) {
      jitCheck.cancel(false);
      jitCheck = null;
    }
    jitRaise = null;
    // Every thread this period lowered is in the map (those raised for starving are at the normal policy already).
    // The name is read again because a thread that ended may have left its id to a new, unrelated thread.
    for (CompilerThread t : compilerThreads.values()) {
      if (!t.raised && isCompilerThread(t.tid)) {
        setPolicy(t.tid, CpuSharing.SCHED_OTHER);
      }
    }
    compilerThreads.clear();
    notCompilers.clear();
  }

  /** HotSpot's compiler threads, by the name the JVM gives them ("C1 CompilerThread0", "C2 ...", "JVMCI ..."). */
  private static boolean isCompilerThread(int tid) {
    try {
      return Files.readString(TASKS.resolve(Integer.toString(tid)).resolve("comm")).contains("CompilerThre");
    } catch (IOException e) {
      return false; // it ended
    }
  }

  private static int taskId(Path task) {
    try {
      return Integer.parseInt(task.getFileName().toString());
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** The thread's policy, or -1 once it has ended. */
  private static int policyOrMinusOne(int tid) {
    try {
      return CpuSharing.LibC.INSTANCE.sched_getscheduler(tid);
    } catch (LastErrorException e) {
      return -1;
    }
  }

  /** Whether the JIT's compiler threads are in a lowered period now (tests). */
  boolean compilerThreadsLowered() {
    return jitLowered;
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
      // The sweep lists every thread of the process, a system call or two each: it runs while this thread is still
      // lowered (and still watched for starvation), or it would hold a serving thread's core at normal priority.
      // This thread is still counted in, so the sweep leaves it alone.
      raiseInheritors();
      ScheduledFuture<?> c = check;
      if (c != null) {
        c.cancel(false);
      }
      synchronized (this) {
        closed = true;
      }
      setPolicy(0, CpuSharing.SCHED_OTHER);
      inSection.remove(tid);
      openOnThisThread.remove();
      sectionClosed();
    }
  }

  /** Raises every SCHED_IDLE thread of the process that is not a load inside its section (threads a runtime started during a load). */
  private void raiseInheritors() {
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
      for (Path task : tasks) {
        int tid = taskId(task);
        if (tid < 0 || inSection.contains(tid)) {
          continue;
        }
        if (policyOrMinusOne(tid) == CpuSharing.SCHED_IDLE
            && !(jitLowered && isCompilerThread(tid))) { // lowered on purpose until the linger ends
          setPolicy(tid, CpuSharing.SCHED_OTHER);
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

  /** The thread's time on a core and its time runnable but waiting for one (nanoseconds), or null where the kernel does not say. */
  private static long[] schedStat(int tid) {
    try {
      String[] fields = Files.readString(TASKS.resolve(Integer.toString(tid)).resolve("schedstat")).trim().split(" ");
      return fields.length >= 2 ? new long[] {Long.parseLong(fields[0]), Long.parseLong(fields[1])} : null;
    } catch (IOException | NumberFormatException e) {
      return null;
    }
  }

  /** Nanoseconds the thread has spent runnable but waiting for a core, or -1 where the kernel does not say. */
  static long runQueueWaitNanos(int tid) {
    long[] stat = schedStat(tid);
    return stat == null ? -1 : stat[1];
  }

  /** Raises the compiler threads if they are lowered, and stops the timer. Call after the last load. */
  @Override
  public void close() {
    synchronized (jitLock) {
      raiseCompilerThreadsLocked();
    }
    timer.shutdownNow();
  }
}
