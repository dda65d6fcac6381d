package io.quiver.server.jobs;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Up to {@code capacity} consecutive records of a job, the unit of output commit. Slots are filled by
 * whichever thread finishes each record (a runner thread, or the reader for records that failed to
 * decode); the thread whose completion brings {@link #remaining} to zero hands the chunk to the
 * committer. Each slot is written once, before that slot's decrement of {@link #remaining} (a
 * volatile read-modify-write), so the committer, which acts after the last decrement, sees every slot.
 */
final class Chunk {
  /**
   * A record's answer, held until its chunk commits: the outputs' bytes packed into one array, described
   * by a layout that records with the same outputs share. Two objects per record, not a tensor, a
   * buffer and an array per output: a running job keeps up to {@code CHUNKS_AHEAD + 1} chunks of these
   * alive through every young collection (measured beside 30k req/s of online traffic: 1-7 MB of
   * survivors per collection as tensors, 0.9-2.6 MB packed).
   */
  record Success(String version, String id, OutputLayout layout, byte[] data) {
    /** The outputs as tensors over {@link #data} (views, no copy); null entries where the model returned none. */
    Tensor[] outputs() {
      return layout.tensors(data);
    }
  }

  /**
   * The model, names, datatypes, shapes and byte sizes of one record's outputs, and where each output
   * starts in a packed array. Immutable, so any thread may share one.
   */
  static final class OutputLayout {
    final String model;
    private final String[] names;
    private final DataType[] types;
    private final long[][] shapes;
    private final int[] sizes; // -1 for an output the model did not return
    private final int bytes;

    private OutputLayout(String model, Tensor[] outputs) {
      this.model = model;
      int n = outputs.length;
      names = new String[n];
      types = new DataType[n];
      shapes = new long[n][];
      sizes = new int[n];
      int total = 0;
      for (int i = 0; i < n; i++) {
        Tensor t = outputs[i];
        if (t == null) {
          sizes[i] = -1;
          continue;
        }
        names[i] = t.name();
        types[i] = t.dataType();
        shapes[i] = t.shape().clone();
        sizes[i] = t.byteSize();
        total += sizes[i];
      }
      bytes = total;
    }

    /** The layout of {@code outputs}: {@code last} when it fits them, else a new one. */
    static OutputLayout of(OutputLayout last, String model, Tensor[] outputs) {
      return last != null && last.fits(model, outputs) ? last : new OutputLayout(model, outputs);
    }

    boolean fits(String model, Tensor[] outputs) {
      if (!this.model.equals(model) || outputs.length != sizes.length) {
        return false;
      }
      for (int i = 0; i < outputs.length; i++) {
        Tensor t = outputs[i];
        if (t == null ? sizes[i] != -1
            : sizes[i] != t.byteSize() || types[i] != t.dataType() || !names[i].equals(t.name())
                || !Arrays.equals(shapes[i], t.shape())) {
          return false;
        }
      }
      return true;
    }

    /** A copy of the outputs' bytes, one after another (they are lent only for the completion call). */
    byte[] pack(Tensor[] outputs) {
      byte[] data = new byte[bytes];
      ByteBuffer into = ByteBuffer.wrap(data);
      int at = 0;
      for (Tensor t : outputs) {
        if (t != null) {
          at += t.copyTo(into, at);
        }
      }
      return data;
    }

    Tensor[] tensors(byte[] data) {
      Tensor[] out = new Tensor[sizes.length];
      int at = 0;
      for (int i = 0; i < sizes.length; i++) {
        if (sizes[i] >= 0) {
          ByteBuffer view = ByteBuffer.wrap(data, at, sizes[i]).slice().order(ByteOrder.LITTLE_ENDIAN);
          out[i] = new Tensor(names[i], types[i], shapes[i], view);
          at += sizes[i];
        }
      }
      return out;
    }
  }

  /** A record that failed, with its position for the failures file. */
  record Failure(String id, long line, InferenceException error) {}

  final long index;
  final int capacity;
  final Object[] results;
  final AtomicInteger remaining;
  /** Records in the chunk: capacity, or fewer for the input's last chunk (set before it is sealed). */
  volatile int size;
  // Where the input continues after this chunk's last record (written by the reader before it submits
  // that record, so before the chunk can be complete).
  long endOffset;
  long endLine;

  Chunk(long index, int capacity) {
    this.index = index;
    this.capacity = capacity;
    this.results = new Object[capacity];
    this.remaining = new AtomicInteger(capacity);
    this.size = capacity;
  }

  /** Stores a slot's result; true when this completion finished the chunk. Any thread, once per slot. */
  boolean complete(int slot, Object result) {
    results[slot] = result;
    return remaining.decrementAndGet() == 0;
  }

  /**
   * The input ended after {@code records} records of this chunk (fewer than its capacity): true when
   * every one of them had already completed, so the caller hands the chunk on. Reader thread, once.
   */
  boolean seal(int records) {
    size = records;
    return remaining.addAndGet(records - capacity) == 0;
  }

  boolean isComplete() {
    return remaining.get() == 0;
  }
}
