package io.quiver.core;

import java.util.concurrent.ScheduledThreadPoolExecutor;

/** The server's single-thread timers. Stateless; the executors it returns are thread-safe. */
public final class Timers {
  private Timers() {}

  /**
   * A one-thread scheduler on a daemon thread named {@code name}, whose cancelled tasks leave its queue
   * at once, with its thread started now. Linux gives a new thread the nice value and CPU policy of the
   * thread that starts it, and a timer whose thread was started by its first user kept that user's: a
   * batch job's nice-19 reader was often first, and every online {@code max_queue_delay} flush then
   * waited for a nice-19 thread (tens of ms on a busy core; docs/benchmarks/batch-jobs.md). Started here,
   * the thread takes the policy of the thread building the component, at server start.
   */
  public static ScheduledThreadPoolExecutor startedNow(String name) {
    ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    });
    timer.setRemoveOnCancelPolicy(true);
    timer.prestartAllCoreThreads();
    return timer;
  }
}
