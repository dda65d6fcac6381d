package io.quiver.server.monitoring;

import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;

/**
 * The monitored tensors of one request (inputs) or one response (outputs), copied out of the
 * transport's or runner's buffers on the request path so that the monitoring thread never reads a
 * buffer that may be reused once the request completes. Owned by whoever holds it (the queue, then
 * the monitoring thread); never shared.
 */
final class Sample {
  final boolean output;
  /** Per monitored tensor of the role (TensorLayout.position): little-endian bytes, or null when absent. */
  final byte[][] data;
  /** Elements in each entry of {@link #data}. */
  final int[] elements;
  /** Bytes in all entries, for the queue's byte budget. */
  final int bytes;
  /** Rows (batch entries) the sample holds. */
  final int rows;

  private Sample(boolean output, byte[][] data, int[] elements, int bytes, int rows) {
    this.output = output;
    this.data = data;
    this.elements = elements;
    this.bytes = bytes;
    this.rows = rows;
  }

  /**
   * Bytes {@link #copy} would take of a tensor of {@code rows} rows: all of it, or as many whole rows
   * as fit in {@code maxBytes}; -1 when not even one row fits or a BYTES tensor is over the limit
   * (BYTES are never cut).
   */
  static int bytesToCopy(Tensor tensor, int rows, int maxBytes) {
    int size = tensor.byteSize();
    if (size <= maxBytes) {
      return size;
    }
    DataType type = tensor.dataType();
    if (!type.isFixedSize()) {
      return -1;
    }
    int rowBytes = rows > 0 && size % rows == 0 ? size / rows : size;
    int fit = (maxBytes / rowBytes) * rowBytes;
    return fit == 0 ? -1 : fit;
  }

  /**
   * Copies the tensors (indexed by TensorLayout.position; null entries are absent) into a sample.
   * Allocates one array per tensor and the sample. Any thread.
   *
   * @param sizes bytes to copy per tensor as {@link #bytesToCopy} said (-1 or 0 for absent ones)
   */
  static Sample copy(boolean output, Tensor[] tensors, int[] sizes, int total, int rows) {
    byte[][] data = new byte[tensors.length][];
    int[] elements = new int[tensors.length];
    int keptRows = rows;
    for (int i = 0; i < tensors.length; i++) {
      Tensor t = tensors[i];
      if (t == null || sizes[i] <= 0) {
        continue;
      }
      byte[] copy = new byte[sizes[i]];
      ByteBuffer view = t.data(); // an independent view: the tensor's own position is untouched
      view.get(copy, 0, copy.length);
      data[i] = copy;
      if (copy.length == t.byteSize()) {
        elements[i] = (int) Math.min(Integer.MAX_VALUE, t.elementCount());
      } else {
        elements[i] = copy.length / t.dataType().byteSize();
        keptRows = Math.min(keptRows, (int) ((long) rows * copy.length / t.byteSize()));
      }
    }
    return new Sample(output, data, elements, total, keptRows);
  }
}
