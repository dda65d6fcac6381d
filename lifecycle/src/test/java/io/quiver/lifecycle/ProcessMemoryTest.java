package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.quiver.core.runtime.DirectBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcessMemoryTest {

  /** The status file's VmRSS in bytes: the figure {@link ProcessMemory#residentBytes()} must agree with. */
  private static long statusResidentBytes() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
      }
    }
    throw new AssertionError("no VmRSS line in /proc/self/status");
  }

  @Test
  void residentBytes_agreesWithTheStatusFile_andSeesMemoryBeingTouched() throws IOException {
    assumeTrue(Files.isReadable(Path.of("/proc/self/statm")), "Linux only");
    long before = statusResidentBytes();
    long read = ProcessMemory.residentBytes();
    long after = statusResidentBytes();
    // The same kernel counters, read between two readings of the other file: a wrong page size or
    // field would be off by a factor, not by the little this thread allocated in between.
    assertThat(read).isBetween(Math.min(before, after) - (4L << 20), Math.max(before, after) + (4L << 20));

    // A direct buffer this large is a fresh mapping, which the JVM zeroes: every page becomes resident.
    ByteBuffer touched = ByteBuffer.allocateDirect(64 << 20);
    try {
      long grown = ProcessMemory.residentBytes();
      assertThat(grown - read).as("64 MiB of fresh native memory touched").isGreaterThan(48L << 20);
    } finally {
      DirectBuffers.free(touched);
    }
  }

  @Test
  void openFileDescriptors_countsAFileWhileItIsOpen(@TempDir Path dir) throws IOException {
    assumeTrue(Files.isDirectory(Path.of("/proc/self/fd")), "Linux only");
    Path file = Files.writeString(dir.resolve("f"), "x");
    int before = ProcessMemory.openFileDescriptors();
    try (FileChannel a = FileChannel.open(file); FileChannel b = FileChannel.open(file)) {
      assertThat(ProcessMemory.openFileDescriptors()).isEqualTo(before + 2);
    }
    assertThat(ProcessMemory.openFileDescriptors()).isEqualTo(before);
  }
}
