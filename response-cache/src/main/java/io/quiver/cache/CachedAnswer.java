package io.quiver.cache;

import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A cached answer: the output tensors of one request (names, datatypes, shapes, bytes), their data
 * in one heap array of their own. Immutable; the tensors are shared by every hit (each reader takes
 * its own buffer view, see {@link Tensor#data()}).
 *
 * <p>In Redis it is stored in a small binary form ({@link #encode}): magic {@code QRC1}, then per
 * output its datatype, name, shape and bytes, every length bounded and checked on the way back
 * ({@link #decode}), so a corrupt or foreign value is refused rather than trusted.
 */
final class CachedAnswer {
  private static final int MAGIC = 0x31435251; // "QRC1" little-endian
  /** Bookkeeping bytes charged per entry and per tensor on top of the data (objects, arrays, the key). */
  static final int ENTRY_OVERHEAD = 160;
  static final int TENSOR_OVERHEAD = 96;

  private final Tensor[] outputs;
  private final long dataBytes;

  private CachedAnswer(Tensor[] outputs, long dataBytes) {
    this.outputs = outputs;
    this.dataBytes = dataBytes;
  }

  /** The outputs, aligned with the request's requested outputs. Callers must not modify the array. */
  Tensor[] outputs() {
    return outputs;
  }

  /** What the entry costs in the local cache's byte bound: data plus bookkeeping. */
  long weight() {
    return ENTRY_OVERHEAD + (long) TENSOR_OVERHEAD * outputs.length + dataBytes;
  }

  long dataBytes() {
    return dataBytes;
  }

  /**
   * Copies the outputs (valid only during the answer callback) into one array of their own: one copy.
   * Returns null when their data exceeds {@code maxBytes} (not worth keeping).
   */
  static CachedAnswer copyOf(Tensor[] outputs, long maxBytes) {
    long total = 0;
    for (Tensor t : outputs) {
      total += t.byteSize();
    }
    if (total > maxBytes || total > Integer.MAX_VALUE - 64) {
      return null;
    }
    byte[] data = new byte[(int) total];
    ByteBuffer all = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    Tensor[] kept = new Tensor[outputs.length];
    int offset = 0;
    for (int i = 0; i < outputs.length; i++) {
      Tensor t = outputs[i];
      int n = t.copyTo(all, offset);
      kept[i] = new Tensor(t.name(), t.dataType(), t.shape().clone(),
          all.slice(offset, n).order(ByteOrder.LITTLE_ENDIAN));
      offset += n;
    }
    return new CachedAnswer(kept, total);
  }

  /** The Redis form of the answer. */
  byte[] encode() {
    int size = 5;
    byte[][] names = new byte[outputs.length][];
    byte[][] types = new byte[outputs.length][];
    for (int i = 0; i < outputs.length; i++) {
      names[i] = outputs[i].name().getBytes(StandardCharsets.UTF_8);
      types[i] = outputs[i].dataType().wireName().getBytes(StandardCharsets.US_ASCII);
      size += 1 + types[i].length + 2 + names[i].length + 1 + 8 * outputs[i].shape().length + 4 + outputs[i].byteSize();
    }
    ByteBuffer out = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    out.putInt(MAGIC).put((byte) outputs.length);
    for (int i = 0; i < outputs.length; i++) {
      Tensor t = outputs[i];
      out.put((byte) types[i].length).put(types[i]);
      out.putShort((short) names[i].length).put(names[i]);
      out.put((byte) t.shape().length);
      for (long dim : t.shape()) {
        out.putLong(dim);
      }
      out.putInt(t.byteSize());
      t.copyTo(out, out.position());
      out.position(out.position() + t.byteSize());
    }
    return out.array();
  }

  /**
   * Reads the Redis form back; the tensors are views into {@code value} (no copy).
   *
   * @throws IllegalArgumentException when the value is not a well-formed answer
   */
  static CachedAnswer decode(byte[] value) {
    ByteBuffer in = ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
    try {
      if (in.getInt() != MAGIC) {
        throw new IllegalArgumentException("not a Quiver cache entry");
      }
      int count = in.get() & 0xff;
      Tensor[] outputs = new Tensor[count];
      long total = 0;
      for (int i = 0; i < count; i++) {
        byte[] type = new byte[in.get() & 0xff];
        in.get(type);
        DataType dataType = DataType.fromWireName(new String(type, StandardCharsets.US_ASCII));
        if (dataType == null) {
          throw new IllegalArgumentException("unknown datatype in cache entry");
        }
        byte[] name = new byte[in.getShort() & 0xffff];
        in.get(name);
        int rank = in.get() & 0xff;
        if (rank > 64) {
          throw new IllegalArgumentException("cache entry rank " + rank);
        }
        long[] shape = new long[rank];
        for (int d = 0; d < rank; d++) {
          shape[d] = in.getLong();
          if (shape[d] < 0) {
            throw new IllegalArgumentException("negative dimension in cache entry");
          }
        }
        int length = in.getInt();
        if (length < 0 || length > in.remaining()) {
          throw new IllegalArgumentException("cache entry data length " + length + " past its end");
        }
        if (dataType.isFixedSize()) {
          long elements = Tensor.elementCount(shape);
          if (elements < 0 || elements == Long.MAX_VALUE || elements * dataType.byteSize() != length) {
            throw new IllegalArgumentException("cache entry shape does not match its data");
          }
        }
        outputs[i] = new Tensor(new String(name, StandardCharsets.UTF_8), dataType, shape,
            in.slice(in.position(), length).order(ByteOrder.LITTLE_ENDIAN));
        in.position(in.position() + length);
        total += length;
      }
      if (in.hasRemaining()) {
        throw new IllegalArgumentException("trailing bytes after the cache entry");
      }
      return new CachedAnswer(outputs, total);
    } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
      throw new IllegalArgumentException("truncated cache entry", e);
    }
  }
}
