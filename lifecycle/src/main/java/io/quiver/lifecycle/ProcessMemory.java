package io.quiver.lifecycle;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's resident set size and open file descriptors, read from Linux's {@code /proc/self}
 * (one small file read or directory listing per call; no caching). Elsewhere both answer -1.
 * Stateless and thread-safe.
 */
public final class ProcessMemory {
  private static final Path STATUS = Path.of("/proc/self/status");
  private static final Path FDS = Path.of("/proc/self/fd");

  private ProcessMemory() {}

  /** Resident set size in bytes ({@code VmRSS}), or -1 when unknown. */
  public static long residentBytes() {
    try {
      for (String line : Files.readAllLines(STATUS)) {
        if (line.startsWith("VmRSS:")) {
          String[] parts = line.substring(6).trim().split("\\s+");
          return Long.parseLong(parts[0]) * 1024; // the kernel writes kB
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }

  /** Open file descriptors of this process, or -1 when unknown. */
  public static int openFileDescriptors() {
    int n = 0;
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(FDS)) {
      for (Path ignored : fds) {
        n++;
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return n - 1; // the descriptor of the listing itself
  }
}
