package io.quiver.client;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A tensor as the protocol carries it: a datatype, a shape and its elements as little-endian bytes
 * (BYTES: each element a 4-byte little-endian length, then its bytes). Inputs are made by {@link Tensors};
 * outputs come from {@link InferResult#output(String)} and carry their name.
 *
 * <p>Immutable and thread-safe, with one caveat: a tensor made from a caller's {@link ByteBuffer}
 * ({@link Tensors#of}) shares that buffer, so the buffer must not change until the calls that send it
 * have completed.
 *
 * <p>Reading: {@code toFloatArray()} and the other {@code to...Array()} methods copy the elements out;
 * {@code as...Buffer()} return read-only little-endian views without a copy. Each reads one datatype
 * family and throws {@link IllegalStateException} naming both datatypes when asked for another: no
 * silent conversion between kinds. Unsigned types read into the signed Java type of the same width (read
 * them back with {@code Byte.toUnsignedInt}, {@code Integer.toUnsignedLong}...). FP16 and BF16 read as
 * {@code float} (exactly: both are subsets of FP32).
 */
public final class Tensor {
  private final String name;
  private final DataType datatype;
  private final long[] shape;
  private final ByteString data;

  Tensor(String name, DataType datatype, long[] shape, ByteString data) {
    this.name = name;
    this.datatype = datatype;
    this.shape = shape;
    this.data = data;
  }

  /** The same tensor under another name (the data is shared). */
  Tensor named(String newName) {
    return new Tensor(newName, datatype, shape, data);
  }

  /** The output's name for tensors from a result; "" for tensors made by {@link Tensors}. */
  public String name() {
    return name;
  }

  public DataType datatype() {
    return datatype;
  }

  /** A copy of the shape. */
  public long[] shape() {
    return shape.clone();
  }

  /** Shape without a copy, for this package. */
  long[] shapeArray() {
    return shape;
  }

  /** The product of the dimensions (1 for a scalar). */
  public long elementCount() {
    return elementCount(shape);
  }

  /** The raw little-endian bytes as they travel (no copy). */
  public ByteString rawBytes() {
    return data;
  }

  /** A read-only little-endian view of the raw bytes (no copy when the bytes are contiguous, as they are here). */
  public ByteBuffer asByteBuffer() {
    return data.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  // ------------------------------------------------------------------------------------------------
  // Typed reads

  /** BOOL elements (any non-zero byte is true). */
  public boolean[] toBooleanArray() {
    require("toBooleanArray()", DataType.BOOL);
    boolean[] out = new boolean[data.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = data.byteAt(i) != 0;
    }
    return out;
  }

  /** INT8 or UINT8 elements. */
  public byte[] toByteArray() {
    require("toByteArray()", DataType.INT8, DataType.UINT8);
    return data.toByteArray();
  }

  /** INT16 or UINT16 elements. */
  public short[] toShortArray() {
    ShortBuffer view = asShortBuffer();
    short[] out = new short[view.remaining()];
    view.get(out);
    return out;
  }

  /** INT32 or UINT32 elements. */
  public int[] toIntArray() {
    IntBuffer view = asIntBuffer();
    int[] out = new int[view.remaining()];
    view.get(out);
    return out;
  }

  /** INT64 or UINT64 elements. */
  public long[] toLongArray() {
    LongBuffer view = asLongBuffer();
    long[] out = new long[view.remaining()];
    view.get(out);
    return out;
  }

  /** FP32 elements, or FP16 / BF16 elements widened to float (exact). */
  public float[] toFloatArray() {
    require("toFloatArray()", DataType.FP32, DataType.FP16, DataType.BF16);
    if (datatype == DataType.FP32) {
      FloatBuffer view = asByteBuffer().asFloatBuffer();
      float[] out = new float[view.remaining()];
      view.get(out);
      return out;
    }
    ShortBuffer bits = asByteBuffer().asShortBuffer();
    float[] out = new float[bits.remaining()];
    for (int i = 0; i < out.length; i++) {
      short b = bits.get(i);
      out[i] = datatype == DataType.FP16 ? HalfFloats.halfToFloat(b) : HalfFloats.bfloat16ToFloat(b);
    }
    return out;
  }

  /** FP64 elements. */
  public double[] toDoubleArray() {
    DoubleBuffer view = asDoubleBuffer();
    double[] out = new double[view.remaining()];
    view.get(out);
    return out;
  }

  /** BYTES elements, each decoded as UTF-8 (malformed sequences become U+FFFD). */
  public String[] toStringArray() {
    List<byte[]> elements = toByteArrays();
    String[] out = new String[elements.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = new String(elements.get(i), StandardCharsets.UTF_8);
    }
    return out;
  }

  /** BYTES elements, each as its own array. */
  public List<byte[]> toByteArrays() {
    require("toByteArrays()", DataType.BYTES);
    ByteBuffer in = asByteBuffer();
    List<byte[]> out = new ArrayList<>();
    while (in.hasRemaining()) {
      if (in.remaining() < 4) {
        throw new IllegalStateException(describe() + " has a truncated BYTES length prefix");
      }
      int length = in.getInt();
      if (length < 0 || length > in.remaining()) {
        throw new IllegalStateException(describe() + " has a BYTES element of " + Integer.toUnsignedLong(length)
            + " bytes but only " + in.remaining() + " bytes follow");
      }
      byte[] element = new byte[length];
      in.get(element);
      out.add(element);
    }
    return out;
  }

  /** INT16 or UINT16 elements, read-only, no copy. */
  public ShortBuffer asShortBuffer() {
    require("asShortBuffer()/toShortArray()", DataType.INT16, DataType.UINT16);
    return asByteBuffer().asShortBuffer();
  }

  /** INT32 or UINT32 elements, read-only, no copy. */
  public IntBuffer asIntBuffer() {
    require("asIntBuffer()/toIntArray()", DataType.INT32, DataType.UINT32);
    return asByteBuffer().asIntBuffer();
  }

  /** INT64 or UINT64 elements, read-only, no copy. */
  public LongBuffer asLongBuffer() {
    require("asLongBuffer()/toLongArray()", DataType.INT64, DataType.UINT64);
    return asByteBuffer().asLongBuffer();
  }

  /** FP32 elements, read-only, no copy (FP16/BF16 have no float view: use {@link #toFloatArray()}). */
  public FloatBuffer asFloatBuffer() {
    require("asFloatBuffer()", DataType.FP32);
    return asByteBuffer().asFloatBuffer();
  }

  /** FP64 elements, read-only, no copy. */
  public DoubleBuffer asDoubleBuffer() {
    require("asDoubleBuffer()/toDoubleArray()", DataType.FP64);
    return asByteBuffer().asDoubleBuffer();
  }

  private void require(String method, DataType... accepted) {
    for (DataType type : accepted) {
      if (type == datatype) {
        return;
      }
    }
    StringBuilder names = new StringBuilder();
    for (int i = 0; i < accepted.length; i++) {
      names.append(i == 0 ? "" : i == accepted.length - 1 ? " or " : ", ").append(accepted[i]);
    }
    throw new IllegalStateException(describe() + " is " + datatype + "; " + method + " reads " + names);
  }

  private String describe() {
    return name.isEmpty() ? "the tensor" : "output '" + name + "'";
  }

  @Override
  public String toString() {
    return (name.isEmpty() ? "" : name + " ") + datatype + Arrays.toString(shape) + " (" + data.size() + " bytes)";
  }

  static long elementCount(long[] shape) {
    long count = 1;
    for (long dim : shape) {
      if (dim < 0) {
        return -1;
      }
      count = Math.multiplyHigh(count, dim) != 0 || count * dim < 0 ? Long.MAX_VALUE : count * dim;
    }
    return count;
  }
}
