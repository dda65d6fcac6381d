package io.quiver.server.jobs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lowers the CPU priority of the calling thread (Linux: its nice value, through {@code renice} on the
 * thread's id read from {@code /proc/thread-self}), so a batch job's own work (parsing records,
 * encoding results, writing files) gets the CPU that online work leaves idle: the kernel runs a
 * nice-0 event loop or runner thread first whenever both want the same core. Elsewhere, or when
 * {@code renice} is missing, it does nothing and says so once. Stateless; any thread, for itself.
 */
final class ThreadPriority {
  private static final Logger log = LoggerFactory.getLogger(ThreadPriority.class);
  private static volatile boolean warned;

  private ThreadPriority() {}

  /** Gives the calling thread nice value {@code nice} (0 = no change). Blocks for a few ms. */
  static void lowerCurrentThread(int nice) {
    if (nice <= 0) {
      return;
    }
    try {
      Path self = Files.readSymbolicLink(Path.of("/proc/thread-self")); // "<pid>/task/<tid>"
      String tid = self.getFileName().toString();
      Process renice = new ProcessBuilder("renice", "-n", Integer.toString(nice), "-p", tid)
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      if (!renice.waitFor(5, TimeUnit.SECONDS) || renice.exitValue() != 0) {
        renice.destroyForcibly();
        warnOnce("renice exited with an error");
      }
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      warnOnce(e.toString());
    }
  }

  private static void warnOnce(String why) {
    if (!warned) {
      warned = true;
      log.warn("batch jobs: cannot lower the CPU priority of job threads ({}); they compete with online work for CPU", why);
    }
  }
}
