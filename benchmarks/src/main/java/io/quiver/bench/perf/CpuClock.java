package io.quiver.bench.perf;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * CPU time of a process: another local process through {@code /proc/<pid>/stat} (user + system
 * time of all its threads, in clock ticks), or this JVM through the platform MXBean. Thread-safe.
 */
public final class CpuClock {
  /** Linux's USER_HZ on every mainstream architecture; used when {@code getconf CLK_TCK} cannot run. */
  static final long DEFAULT_CLOCK_TICKS_PER_SECOND = 100;

  private static volatile long ticksPerSecond;

  private CpuClock() {}

  /** CPU time (user + system) of a local process in nanoseconds, or -1 when it cannot be read. */
  public static long processCpuNanos(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.US_ASCII);
      return parseStatTicks(stat) * (1_000_000_000L / clockTicksPerSecond());
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  /**
   * utime + stime (fields 14 and 15) of a {@code /proc/<pid>/stat} line, in clock ticks. The command
   * name (field 2) is in parentheses and may hold spaces and parentheses, so fields are counted
   * from the last ')'.
   */
  public static long parseStatTicks(String stat) {
    int close = stat.lastIndexOf(')');
    if (close < 0) {
      throw new IllegalArgumentException("not a /proc/<pid>/stat line: " + stat);
    }
    String[] fields = stat.substring(close + 2).trim().split("\\s+");
    // fields[0] is field 3 (state), so field n is fields[n - 3].
    return Long.parseLong(fields[14 - 3]) + Long.parseLong(fields[15 - 3]);
  }

  /** CPU time of this JVM in nanoseconds, or -1 when the platform does not say. */
  public static long selfCpuNanos() {
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getProcessCpuTime();
    }
    return -1;
  }

  static long clockTicksPerSecond() {
    long ticks = ticksPerSecond;
    if (ticks == 0) {
      ticks = DEFAULT_CLOCK_TICKS_PER_SECOND;
      try {
        Process p = new ProcessBuilder("getconf", "CLK_TCK").redirectErrorStream(true).start();
        try (InputStream in = p.getInputStream()) {
          String out = new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim();
          if (p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0) {
            ticks = Long.parseLong(out);
          }
        }
      } catch (IOException | NumberFormatException e) {
        // keep the default
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      ticksPerSecond = ticks;
    }
    return ticks;
  }
}
