package io.quiver.runtime.tensorflow;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.Pointer;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.buffer.ByteDataBuffer;
import org.tensorflow.ndarray.buffer.DataStorageVisitor;

/**
 * Direct {@link ByteBuffer} views over a TensorFlow tensor's own memory, so that tensor bytes move
 * with one {@code ByteBuffer.put} (a memcpy) instead of TensorFlow Java's element-by-element
 * fallback between NIO and native buffers.
 *
 * <p>TensorFlow Java exposes a tensor's native address only through
 * {@link DataStorageVisitor#visit(long, long, long)}; JavaCPP (already loaded by TensorFlow Java)
 * turns an address into a direct buffer. The view owns nothing: it is valid only while the tensor is
 * open, and callers never let it escape.
 */
final class NativeMemory {
  private NativeMemory() {}

  /** A little-endian view of the tensor's bytes (the tensor stays the owner); an empty buffer for 0 bytes. */
  static ByteBuffer view(Tensor tensor) {
    long size = tensor.numBytes();
    if (size == 0) {
      return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
    }
    if (size > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("tensor of " + size + " bytes exceeds a ByteBuffer's 2 GiB limit");
    }
    ByteDataBuffer data = tensor.asRawTensor().data();
    long address = data.accept(new DataStorageVisitor<Long>() {
      @Override
      public Long visit(long address, long length, long scale) {
        return address;
      }

      @Override
      public Long fallback() {
        return 0L;
      }
    });
    if (address == 0L) {
      throw new IllegalStateException("TensorFlow tensor memory is not native (unexpected for TensorFlow Java 1.1)");
    }
    return new View(address, size).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A JavaCPP pointer over memory it does not own: no deallocator is registered. */
  private static final class View extends Pointer {
    View(long address, long size) {
      this.address = address;
      this.capacity = size;
      this.limit = size;
    }

    @Override
    public int sizeof() {
      return 1;
    }
  }
}
