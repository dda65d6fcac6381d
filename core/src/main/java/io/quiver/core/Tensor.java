package io.quiver.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named tensor: datatype, shape and its elements as little-endian bytes, exactly as the protocol's
 * raw contents carry them (BYTES: each element a 4-byte little-endian length then its bytes).
 *
 * <p>The buffer's readable bytes (position to limit) are the tensor's data. A Tensor does not copy
 * what it is given; whoever builds one hands over the buffer and must not change it afterwards (the
 * one exception: a scheduler's pooled batch tensors, whose contents are re-gathered for each batch
 * while nobody else holds them; see {@code ModelRunner}). Immutable and safe to share once built,
 * provided callers read the data through {@link #data()}, which returns an independent view.
 */
public final class Tensor {
  private final String name;
  private final DataType dataType;
  private final long[] shape;
  private final ByteBuffer data;

  public Tensor(String name, DataType dataType, long[] shape, ByteBuffer data) {
    this.name = name;
    this.dataType = dataType;
    this.shape = shape;
    this.data = data;
  }

  public String name() {
    return name;
  }

  public DataType dataType() {
    return dataType;
  }

  /** The shape; callers must not modify the returned array. */
  public long[] shape() {
    return shape;
  }

  /** An independent little-endian view of the data (position 0, limit = byte size). Allocates the view only. */
  public ByteBuffer data() {
    return data.slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Copies the data into {@code dst} at absolute index {@code dstIndex}, without moving either
   * buffer's position and without allocating a view.
   *
   * @return the number of bytes copied
   */
  public int copyTo(ByteBuffer dst, int dstIndex) {
    int n = data.remaining();
    dst.put(dstIndex, data, data.position(), n);
    return n;
  }

  /** Size of the data in bytes. */
  public int byteSize() {
    return data.remaining();
  }

  /** Number of elements the shape describes. */
  public long elementCount() {
    return elementCount(shape);
  }

  /** Product of the dimensions; saturates at Long.MAX_VALUE; -1 if any dimension is negative. */
  public static long elementCount(long[] shape) {
    long count = 1;
    for (long dim : shape) {
      if (dim < 0) {
        return -1;
      }
      if (dim != 0 && count > Long.MAX_VALUE / dim) {
        return Long.MAX_VALUE;
      }
      count *= dim;
    }
    return count;
  }

  /**
   * A tensor over part of this one's data, with another shape (a request's rows of a batch output):
   * one buffer view, no copy.
   *
   * @param from byte offset into this tensor's data
   */
  public Tensor view(long[] shape, int from, int length) {
    return new Tensor(name, dataType, shape, data.slice(data.position() + from, length).order(ByteOrder.LITTLE_ENDIAN));
  }

  /** Returns a tensor with the same data under another name. */
  public Tensor withName(String newName) {
    return new Tensor(newName, dataType, shape, data);
  }

  @Override
  public String toString() {
    return name + ":" + dataType.wireName() + Arrays.toString(shape) + "(" + byteSize() + " bytes)";
  }
}
