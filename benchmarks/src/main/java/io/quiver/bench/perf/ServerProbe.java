package io.quiver.bench.perf;

import com.sun.tools.attach.VirtualMachine;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * Counters of a local server process beyond its CPU time, read at window edges:
 * <ul>
 *   <li><b>Context switches</b> (voluntary + involuntary) of its threads, from
 *       {@code /proc/<pid>/task/*}{@code /status}: every wake-up of a sleeping thread shows here.</li>
 *   <li><b>Bytes allocated</b> by all its live Java threads
 *       ({@code java.lang:type=Threading} attribute {@code TotalThreadAllocatedBytes}), over a JMX
 *       connection opened through the Attach API to the JVM's local management agent: the server
 *       needs no flag and no endpoint, so the same probe reads Quiver and the bare echo server.</li>
 * </ul>
 * Allocation of threads that ended between two readings is lost (the servers' working threads live as
 * long as the process). Not thread-safe: one probe per load generator, read from its main thread.
 */
public final class ServerProbe implements AutoCloseable {
  private final long pid;
  /** Per thread id, its switches at the last reading: threads come and go (JIT, GC, native pools). */
  private final java.util.Map<String, Long> lastSwitches = new java.util.HashMap<>();
  private long switchesSoFar;
  private JMXConnector jmx;
  private MBeanServerConnection mbeans;
  private boolean jmxFailed;

  public ServerProbe(long pid) {
    this.pid = pid;
  }

  /**
   * Context switches of the process's threads since this probe's first reading, or -1 when /proc cannot
   * be read. Monotonic: each thread contributes what it did between two readings, so a thread that
   * ends (a JIT or GC worker) does not take its past switches out of the total.
   */
  public long contextSwitches() {
    java.util.Map<String, Long> now = new java.util.HashMap<>();
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : tasks) {
        try {
          now.put(task.getFileName().toString(), switchesOf(Files.readString(task.resolve("status"), StandardCharsets.US_ASCII)));
        } catch (IOException e) {
          // the thread ended meanwhile
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    for (java.util.Map.Entry<String, Long> e : now.entrySet()) {
      Long before = lastSwitches.get(e.getKey());
      switchesSoFar += before == null ? (lastSwitches.isEmpty() ? 0 : e.getValue()) : Math.max(0, e.getValue() - before);
    }
    lastSwitches.clear();
    lastSwitches.putAll(now);
    return switchesSoFar;
  }

  /** voluntary_ctxt_switches + nonvoluntary_ctxt_switches of one {@code /proc/.../status} text. */
  static long switchesOf(String status) {
    long n = 0;
    for (String line : status.split("\n")) {
      if (line.startsWith("voluntary_ctxt_switches:") || line.startsWith("nonvoluntary_ctxt_switches:")) {
        n += Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
      }
    }
    return n;
  }

  /** Bytes allocated by the process's live Java threads so far, or -1 when the JVM cannot be reached. */
  public long allocatedBytes() {
    if (jmxFailed) {
      return -1;
    }
    try {
      if (mbeans == null) {
        VirtualMachine vm = VirtualMachine.attach(Long.toString(pid));
        try {
          String address = vm.startLocalManagementAgent();
          jmx = JMXConnectorFactory.connect(new JMXServiceURL(address));
          mbeans = jmx.getMBeanServerConnection();
        } finally {
          vm.detach();
        }
      }
      Object bytes = mbeans.getAttribute(new ObjectName("java.lang:type=Threading"), "TotalThreadAllocatedBytes");
      return ((Number) bytes).longValue();
    } catch (Exception e) {
      jmxFailed = true; // not a JVM, another user's, or attach disabled: report unknown from now on
      return -1;
    }
  }

  @Override
  public void close() {
    if (jmx != null) {
      try {
        jmx.close();
      } catch (IOException e) {
        // the server may be gone already
      }
    }
  }
}
