package io.quiver.server.jobs;

import io.quiver.server.CpuSharing;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lowers the CPU priority of the calling thread (Linux: its nice value, {@link CpuSharing#niceCurrentThread}),
 * so a batch job's own work (parsing records, encoding results, writing files) gets the CPU that online
 * work leaves idle: the kernel runs a nice-0 event loop or runner thread first whenever both want the
 * same core. A system call, not a child process: a {@code renice} process would make the JDK start its
 * process-reaper thread from a job thread, at the job's nice value, for every later child process.
 * Elsewhere it does nothing and says so once. Stateless; any thread, for itself.
 */
final class ThreadPriority {
  private static final Logger log = LoggerFactory.getLogger(ThreadPriority.class);
  private static volatile boolean warned;

  private ThreadPriority() {}

  /** Gives the calling thread nice value {@code nice} (0 = no change). */
  static void lowerCurrentThread(int nice) {
    if (nice <= 0) {
      return;
    }
    if (!CpuSharing.niceCurrentThread(nice) && !warned) {
      warned = true;
      log.warn("batch jobs: cannot lower the CPU priority of job threads; they compete with online work for CPU");
    }
  }
}
