package io.quiver.core.runtime;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Native buffers whose memory goes back when their owner is done with them, not when the garbage collector next finds
 * them: a model file read for a runtime (possibly megabytes, once per load) or a shared-memory mapping. Thread-safe;
 * freeing a buffer is the caller's last use of it and of every view of it.
 */
public final class DirectBuffers {
  /**
   * The largest single {@code read()} a file read makes. A thread inside a system call keeps its core until it
   * returns (the kernels we run on do not preempt there), so a load reading a model file in one call holds back any
   * serving thread woken on its core for as long as the call takes; in pieces of this size it gives way between
   * them.
   */
  public static final int READ_CHUNK_BYTES = 64 * 1024;

  private static final Logger LOG = LoggerFactory.getLogger(DirectBuffers.class);
  private static final Object UNSAFE;
  private static final Method INVOKE_CLEANER;

  static {
    Object unsafe = null;
    Method clean = null;
    try {
      Class<?> type = Class.forName("sun.misc.Unsafe");
      Field field = type.getDeclaredField("theUnsafe");
      field.setAccessible(true);
      unsafe = field.get(null);
      clean = type.getMethod("invokeCleaner", ByteBuffer.class);
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.warn("cannot free native buffers eagerly ({}); they are freed by the garbage collector", e.toString());
    }
    UNSAFE = unsafe;
    INVOKE_CLEANER = clean;
  }

  private DirectBuffers() {}

  /**
   * Reads a whole file into a new direct buffer (position 0, limit its size), {@link #READ_CHUNK_BYTES} per system
   * call. The caller {@link #free frees} it.
   *
   * @throws IOException the file cannot be read, it is larger than {@code maxBytes}, it changed size while read, or the
   *     JVM's direct memory is used up
   */
  public static ByteBuffer readFile(Path file, long maxBytes) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size > maxBytes || size > Integer.MAX_VALUE) {
        throw new IOException(file + " holds " + size + " bytes, more than the " + maxBytes + " read into memory");
      }
      ByteBuffer buffer;
      try {
        buffer = ByteBuffer.allocateDirect((int) size);
      } catch (OutOfMemoryError e) { // the JVM's limit on direct memory, not the heap: recoverable here
        throw new IOException("no direct memory left for the " + size + " bytes of " + file, e);
      }
      try {
        while (buffer.hasRemaining()) {
          ByteBuffer piece = buffer.slice();
          piece.limit(Math.min(piece.remaining(), READ_CHUNK_BYTES));
          int read = channel.read(piece);
          if (read < 0) {
            throw new IOException(file + " ended after " + buffer.position() + " of " + size + " bytes");
          }
          buffer.position(buffer.position() + read);
        }
        if (channel.size() != size) {
          throw new IOException(file + " changed size while it was read (" + size + " -> " + channel.size() + ")");
        }
        return buffer.flip();
      } catch (IOException | RuntimeException e) {
        free(buffer);
        throw e;
      }
    }
  }

  /**
   * Frees a direct buffer (allocated or mapped) now. The buffer, and every slice or duplicate of it, must not be used
   * afterwards. Where the JDK does not allow it, the memory goes when the buffer is collected.
   */
  public static void free(ByteBuffer buffer) {
    if (INVOKE_CLEANER == null || buffer == null || !buffer.isDirect()) {
      return;
    }
    try {
      INVOKE_CLEANER.invoke(UNSAFE, buffer);
    } catch (ReflectiveOperationException | RuntimeException e) {
      LOG.warn("freeing a native buffer failed ({}); the garbage collector frees it", e.toString());
    }
  }
}
