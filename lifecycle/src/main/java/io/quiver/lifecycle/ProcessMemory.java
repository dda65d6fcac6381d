package io.quiver.lifecycle;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's resident set size and open file descriptors, read from Linux's {@code /proc/self}
 * (one small file read or directory listing per call; no caching). Elsewhere both answer -1.
 * Thread-safe; the only state is the page size, learned once.
 */
public final class ProcessMemory {
  private static final Path STATM = Path.of("/proc/self/statm");
  private static final Path SMAPS = Path.of("/proc/self/smaps");
  private static final Path FDS = Path.of("/proc/self/fd");
  /** Bytes per page as the kernel counts resident pages, or -1 when it could not be learned (not Linux). */
  private static final long PAGE_BYTES = pageBytes();

  private ProcessMemory() {}

  /**
   * Resident set size in bytes (what {@code VmRSS} in {@code /proc/self/status} says), or -1 when unknown.
   * Read from {@code /proc/self/statm}'s second field, which the kernel writes from the same counters
   * in one short line: every load reads it twice (its memory is measured), and the status file, with
   * some fifty lines to format and split, cost a load three times as much.
   */
  public static long residentBytes() {
    if (PAGE_BYTES <= 0) {
      return -1;
    }
    try {
      byte[] text = Files.readAllBytes(STATM); // "size resident shared text lib data dt\n", in pages
      int i = 0;
      while (i < text.length && text[i] != ' ') {
        i++; // past the total size
      }
      i++;
      long pages = 0;
      int digits = 0;
      for (; i < text.length && text[i] >= '0' && text[i] <= '9'; i++, digits++) {
        pages = pages * 10 + (text[i] - '0');
      }
      return digits == 0 || digits > 18 ? -1 : pages * PAGE_BYTES;
    } catch (IOException | RuntimeException e) {
      return -1;
    }
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

  /**
   * The base page size, from the first mapping's {@code KernelPageSize} in {@code /proc/self/smaps}
   * (4 kB on x86-64; 4, 16 or 64 kB on arm64, depending on the kernel). The kernel formats that file
   * one mapping at a time, so reading its first lines costs no more than a short file.
   */
  private static long pageBytes() {
    try (BufferedReader lines = Files.newBufferedReader(SMAPS, StandardCharsets.US_ASCII)) {
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        if (line.startsWith("KernelPageSize:")) {
          String[] parts = line.substring("KernelPageSize:".length()).trim().split("\\s+");
          return "kB".equals(parts[1]) ? Long.parseLong(parts[0]) * 1024 : -1;
        }
      }
    } catch (IOException | RuntimeException e) {
      return -1;
    }
    return -1;
  }
}
