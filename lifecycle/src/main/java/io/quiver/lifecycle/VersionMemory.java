package io.quiver.lifecycle;

/**
 * What one loaded model version costs in memory, measured once when it loaded.
 *
 * @param bytes the cost the memory budget counts: the runtime's report when it gives one, else the
 *     resident-set growth, and never less than the files' size
 * @param fileBytes the size of the version's files (the floor: a runtime holds at least its weights)
 * @param residentGrowthBytes how much the process's resident set grew while the version's instances
 *     opened and warmed up, less the JVM heap's and buffers' growth meanwhile; -1 when it could not be
 *     attributed (another load ran at the same time, it was the runtime's first load in this process
 *     and so included the runtime's own start, or the platform has no {@code /proc/self/status})
 * @param reportedBytes what the runtime says its instances hold ({@link
 *     io.quiver.core.spi.ModelRunner#memoryBytes()} summed); -1 when it does not say
 */
public record VersionMemory(long bytes, long fileBytes, long residentGrowthBytes, long reportedBytes) {
  /** The cost of a version whose only known figure is its files' size. */
  public static VersionMemory ofFiles(long fileBytes) {
    return new VersionMemory(fileBytes, fileBytes, -1, -1);
  }

  /**
   * The three figures combined: a runtime that reports its instances' memory knows it exactly (the
   * resident growth also catches whatever else the process did meanwhile), so its report counts when
   * there is one; otherwise the resident growth; never less than the files' size.
   */
  public static VersionMemory of(long fileBytes, long residentGrowthBytes, long reportedBytes) {
    long measured = reportedBytes >= 0 ? reportedBytes : residentGrowthBytes;
    return new VersionMemory(Math.max(fileBytes, measured), fileBytes, residentGrowthBytes, reportedBytes);
  }

  /** Which figure set {@link #bytes}: "runtime", "resident" or "files". */
  public String source() {
    if (reportedBytes >= 0 && reportedBytes == bytes && reportedBytes > fileBytes) {
      return "runtime";
    }
    if (residentGrowthBytes >= 0 && residentGrowthBytes == bytes && residentGrowthBytes > fileBytes) {
      return "resident";
    }
    return "files";
  }

  /** Bytes in binary units for logs and reasons, e.g. "12.5 MiB". */
  public static String human(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    double v = bytes;
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    long tenths = Math.round(v * 10); // as "%.1f" rounds, without a Formatter: every load logs four of these
    return tenths / 10 + "." + tenths % 10 + " " + units[u];
  }
}
