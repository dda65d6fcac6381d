package io.quiver.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Makes input {@link Tensor}s for every KServe v2 datatype, e.g. {@code Tensors.fp32(values, 1, 16)}.
 *
 * <p>The shape comes last; without one the tensor is one-dimensional ({@code [values.length]}). The
 * element count must match the shape, or {@link IllegalArgumentException} names both.
 *
 * <p>Costs: from Java arrays and typed buffers, one copy into a new little-endian byte array, which the
 * request then wraps (never copied again before the transport writes it). From a {@link ByteBuffer}
 * ({@link #of}), no copy at all: the buffer (direct or heap) is wrapped through
 * {@link UnsafeByteOperations}, so it must hold little-endian elements and must not change until every
 * call that sends it has completed. Unsigned types take the signed Java type of the same width (bit
 * patterns: {@code (byte) 200} is UINT8 200). Stateless and thread-safe.
 */
public final class Tensors {
  /** The most bytes one tensor may hold here: one protobuf message cannot exceed 2 GiB. */
  public static final long MAX_TENSOR_BYTES = Integer.MAX_VALUE - 64;

  private Tensors() {}

  // ------------------------------------------------------------------------------------------------
  // From arrays

  public static Tensor bool(boolean[] values, long... shape) {
    long[] dims = shape(DataType.BOOL, values.length, shape);
    byte[] bytes = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      bytes[i] = (byte) (values[i] ? 1 : 0);
    }
    return wrap(DataType.BOOL, dims, bytes);
  }

  public static Tensor int8(byte[] values, long... shape) {
    return wrap(DataType.INT8, shape(DataType.INT8, values.length, shape), values.clone());
  }

  /** UINT8 from bit patterns ({@code (byte) 255} is 255). */
  public static Tensor uint8(byte[] values, long... shape) {
    return wrap(DataType.UINT8, shape(DataType.UINT8, values.length, shape), values.clone());
  }

  public static Tensor int16(short[] values, long... shape) {
    return shorts(DataType.INT16, ShortBuffer.wrap(values), shape);
  }

  /** UINT16 from bit patterns. */
  public static Tensor uint16(short[] values, long... shape) {
    return shorts(DataType.UINT16, ShortBuffer.wrap(values), shape);
  }

  public static Tensor int32(int[] values, long... shape) {
    return ints(DataType.INT32, IntBuffer.wrap(values), shape);
  }

  /** UINT32 from bit patterns ({@code -1} is 4294967295). */
  public static Tensor uint32(int[] values, long... shape) {
    return ints(DataType.UINT32, IntBuffer.wrap(values), shape);
  }

  public static Tensor int64(long[] values, long... shape) {
    return longs(DataType.INT64, LongBuffer.wrap(values), shape);
  }

  /** UINT64 from bit patterns. */
  public static Tensor uint64(long[] values, long... shape) {
    return longs(DataType.UINT64, LongBuffer.wrap(values), shape);
  }

  /** FP16, each float rounded to the nearest half (ties to even; out of range becomes infinity). */
  public static Tensor fp16(float[] values, long... shape) {
    return halves(DataType.FP16, FloatBuffer.wrap(values), shape);
  }

  /** BF16, each float rounded to the nearest bfloat16 (ties to even). */
  public static Tensor bf16(float[] values, long... shape) {
    return halves(DataType.BF16, FloatBuffer.wrap(values), shape);
  }

  public static Tensor fp32(float[] values, long... shape) {
    return floats(FloatBuffer.wrap(values), shape);
  }

  public static Tensor fp64(double[] values, long... shape) {
    return doubles(DoubleBuffer.wrap(values), shape);
  }

  /** BYTES from raw elements. */
  public static Tensor bytes(byte[][] elements, long... shape) {
    return bytes(Arrays.asList(elements), shape);
  }

  /** BYTES from raw elements. */
  public static Tensor bytes(List<byte[]> elements, long... shape) {
    long[] dims = shape(DataType.BYTES, elements.size(), shape);
    long total = 0;
    for (byte[] element : elements) {
      total += 4L + element.length;
    }
    checkSize(total);
    ByteBuffer out = ByteBuffer.allocate((int) total).order(ByteOrder.LITTLE_ENDIAN);
    for (byte[] element : elements) {
      out.putInt(element.length).put(element);
    }
    return wrap(DataType.BYTES, dims, out.array());
  }

  /** BYTES from strings, each encoded as UTF-8. */
  public static Tensor strings(String[] values, long... shape) {
    return strings(Arrays.asList(values), shape);
  }

  /** BYTES from strings, each encoded as UTF-8. */
  public static Tensor strings(List<String> values, long... shape) {
    byte[][] encoded = new byte[values.size()][];
    for (int i = 0; i < encoded.length; i++) {
      encoded[i] = values.get(i).getBytes(StandardCharsets.UTF_8);
    }
    return bytes(Arrays.asList(encoded), shape);
  }

  // ------------------------------------------------------------------------------------------------
  // From typed buffers: the remaining elements (position and limit are left as they were)

  public static Tensor int16(ShortBuffer values, long... shape) {
    return shorts(DataType.INT16, values, shape);
  }

  public static Tensor uint16(ShortBuffer values, long... shape) {
    return shorts(DataType.UINT16, values, shape);
  }

  public static Tensor int32(IntBuffer values, long... shape) {
    return ints(DataType.INT32, values, shape);
  }

  public static Tensor uint32(IntBuffer values, long... shape) {
    return ints(DataType.UINT32, values, shape);
  }

  public static Tensor int64(LongBuffer values, long... shape) {
    return longs(DataType.INT64, values, shape);
  }

  public static Tensor uint64(LongBuffer values, long... shape) {
    return longs(DataType.UINT64, values, shape);
  }

  public static Tensor fp16(FloatBuffer values, long... shape) {
    return halves(DataType.FP16, values, shape);
  }

  public static Tensor bf16(FloatBuffer values, long... shape) {
    return halves(DataType.BF16, values, shape);
  }

  public static Tensor fp32(FloatBuffer values, long... shape) {
    return floats(values, shape);
  }

  public static Tensor fp64(DoubleBuffer values, long... shape) {
    return doubles(values, shape);
  }

  // ------------------------------------------------------------------------------------------------
  // From bytes, without a copy

  /**
   * A tensor over the remaining bytes of {@code littleEndian}, sent without a copy (a direct buffer is
   * read by the transport in place). For multi-byte datatypes the buffer's order must be little-endian,
   * the protocol's, so that a buffer filled with {@code putFloat} in the default big-endian order is
   * refused rather than sent scrambled. BYTES data must be framed (4-byte little-endian length, then the
   * bytes, per element). The buffer must not change until every call that sends it has completed.
   */
  public static Tensor of(DataType datatype, ByteBuffer littleEndian, long... shape) {
    if (datatype.byteSize() > 1 && littleEndian.order() != ByteOrder.LITTLE_ENDIAN) {
      throw new IllegalArgumentException("a " + datatype + " tensor needs little-endian bytes; the buffer's order is "
          + littleEndian.order() + ": fill it after .order(ByteOrder.LITTLE_ENDIAN)");
    }
    int bytes = littleEndian.remaining();
    long[] dims;
    if (datatype == DataType.BYTES) {
      dims = shape(datatype, countFramedElements(littleEndian), shape);
    } else {
      if (bytes % datatype.byteSize() != 0) {
        throw new IllegalArgumentException(bytes + " bytes is not a whole number of " + datatype + " elements ("
            + datatype.byteSize() + " bytes each)");
      }
      dims = shape(datatype, bytes / datatype.byteSize(), shape);
    }
    return new Tensor("", datatype, dims, UnsafeByteOperations.unsafeWrap(littleEndian.slice()));
  }

  /** A tensor over raw little-endian bytes the caller already holds as a ByteString (no copy). */
  public static Tensor of(DataType datatype, ByteString littleEndian, long... shape) {
    return of(datatype, littleEndian.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN), shape);
  }

  // ------------------------------------------------------------------------------------------------

  private static Tensor shorts(DataType type, ShortBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(type, n, shape);
    byte[] bytes = new byte[checkSize(2L * n)];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().put(values.duplicate());
    return wrap(type, dims, bytes);
  }

  private static Tensor ints(DataType type, IntBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(type, n, shape);
    byte[] bytes = new byte[checkSize(4L * n)];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().put(values.duplicate());
    return wrap(type, dims, bytes);
  }

  private static Tensor longs(DataType type, LongBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(type, n, shape);
    byte[] bytes = new byte[checkSize(8L * n)];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().put(values.duplicate());
    return wrap(type, dims, bytes);
  }

  private static Tensor floats(FloatBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(DataType.FP32, n, shape);
    byte[] bytes = new byte[checkSize(4L * n)];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(values.duplicate());
    return wrap(DataType.FP32, dims, bytes);
  }

  private static Tensor doubles(DoubleBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(DataType.FP64, n, shape);
    byte[] bytes = new byte[checkSize(8L * n)];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().put(values.duplicate());
    return wrap(DataType.FP64, dims, bytes);
  }

  private static Tensor halves(DataType type, FloatBuffer values, long[] shape) {
    int n = values.remaining();
    long[] dims = shape(type, n, shape);
    byte[] bytes = new byte[checkSize(2L * n)];
    ShortBuffer out = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    int start = values.position();
    for (int i = 0; i < n; i++) {
      float f = values.get(start + i);
      out.put(i, type == DataType.FP16 ? HalfFloats.floatToHalf(f) : HalfFloats.floatToBfloat16(f));
    }
    return wrap(type, dims, bytes);
  }

  /** Wraps an array this class owns (no copy). */
  private static Tensor wrap(DataType type, long[] shape, byte[] bytes) {
    return new Tensor("", type, shape, UnsafeByteOperations.unsafeWrap(bytes));
  }

  /** The shape to use for {@code count} elements: the given one, checked, or {@code [count]}. */
  static long[] shape(DataType type, long count, long[] shape) {
    if (shape == null || shape.length == 0) {
      return new long[] {count};
    }
    for (long dim : shape) {
      if (dim < 0) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative dimension; an input's"
            + " shape is concrete (-1 appears only in model metadata)");
      }
    }
    long expected = Tensor.elementCount(shape);
    if (expected != count) {
      throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs "
          + (expected == Long.MAX_VALUE ? "more than 2^63" : String.valueOf(expected)) + " " + type
          + " elements but " + count + " were given");
    }
    return shape.clone();
  }

  private static int checkSize(long bytes) {
    if (bytes > MAX_TENSOR_BYTES) {
      throw new IllegalArgumentException("a tensor of " + bytes + " bytes cannot fit in one protobuf message (2 GiB)");
    }
    return (int) bytes;
  }

  private static int countFramedElements(ByteBuffer littleEndian) {
    ByteBuffer in = littleEndian.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int count = 0;
    while (in.hasRemaining()) {
      if (in.remaining() < 4) {
        throw new IllegalArgumentException("BYTES data ends inside a length prefix after " + count + " elements");
      }
      long length = Integer.toUnsignedLong(in.getInt());
      if (length > in.remaining()) {
        throw new IllegalArgumentException("BYTES element " + count + " claims " + length + " bytes but only "
            + in.remaining() + " remain");
      }
      in.position(in.position() + (int) length);
      count++;
    }
    return count;
  }
}
