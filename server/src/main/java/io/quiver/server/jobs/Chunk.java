package io.quiver.server.jobs;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Up to {@code capacity} consecutive records of a job, the unit of output commit. Slots are filled by
 * whichever thread finishes each record (a runner thread, or the reader for records that failed to
 * decode); the thread whose completion brings {@link #remaining} to zero hands the chunk to the
 * committer. Each slot is written once, before that slot's decrement of {@link #remaining} (a
 * volatile read-modify-write), so the committer, which acts after the last decrement, sees every slot.
 */
final class Chunk {
  /**
   * A record that succeeded, held until its chunk commits. Records whose outputs match the chunk's
   * {@link Block} are one {@link Packed} shared by all of them (their bytes are in the block); any
   * other is a {@link Success} with an array of its own.
   */
  sealed interface Answer permits Packed, Success {
    String version();

    OutputLayout layout();

    /** The outputs of the record in {@code slot} as tensors over its bytes (views, no copy); null entries where the model returned none. */
    Tensor[] outputs(Chunk chunk, int slot);
  }

  /**
   * The answer of every record of a chunk whose outputs are in the chunk's block (slot i at i × the
   * layout's size) and that a model of {@code version} answered: one object for them all, not one each.
   */
  record Packed(String version, OutputLayout layout) implements Answer {
    @Override
    public Tensor[] outputs(Chunk chunk, int slot) {
      return layout.tensors(chunk.block.get().data, slot * layout.bytes);
    }
  }

  /** A record whose outputs did not fit the chunk's block (another layout, or no block): its own packed bytes. */
  record Success(String version, OutputLayout layout, byte[] data) implements Answer {
    @Override
    public Tensor[] outputs(Chunk chunk, int slot) {
      return layout.tensors(data, 0);
    }
  }

  /**
   * The outputs' bytes of a chunk's records that share one layout, slot i at i × the layout's size: a
   * young collection copies one array per chunk (none once it is old) instead of an array per record.
   */
  private record Block(OutputLayout layout, byte[] data) {}

  /**
   * The most a chunk's block may take; a chunk whose records' outputs would need more packs each record
   * into its own array (as large outputs are better held anyway: no slot is reserved before its record
   * completes).
   */
  static final int MAX_BLOCK_BYTES = 16 << 20;

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

    /** The outputs' bytes, one after another, in a new array (they are lent only for the completion call). */
    byte[] pack(Tensor[] outputs) {
      byte[] data = new byte[bytes];
      packInto(outputs, data, 0);
      return data;
    }

    /** Copies the outputs' bytes, one after another, into {@code data} from {@code at}. */
    void packInto(Tensor[] outputs, byte[] data, int at) {
      ByteBuffer into = ByteBuffer.wrap(data);
      for (Tensor t : outputs) {
        if (t != null) {
          at += t.copyTo(into, at);
        }
      }
    }

    /** The outputs packed in {@code data} from {@code at}, as tensors over it (views, no copy). */
    Tensor[] tensors(byte[] data, int at) {
      Tensor[] out = new Tensor[sizes.length];
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
  /** Per slot: an {@link Answer} or a {@link Failure}. */
  final Object[] results;
  /** Per slot, the id of a record that succeeded (a failure holds its own). */
  final String[] ids;
  final AtomicInteger remaining;
  // Set once, by the first success whose outputs fit MAX_BLOCK_BYTES for the whole chunk.
  private final AtomicReference<Block> block = new AtomicReference<>();
  // The Packed last handed out, offered to the next record (racy: a Packed is immutable, and a stale
  // one only costs a new one).
  private Packed lastPacked;
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
    this.ids = new String[capacity];
    this.remaining = new AtomicInteger(capacity);
    this.size = capacity;
  }

  /**
   * Stores a slot's success, copying the outputs (they are lent for the completion call only) into the
   * chunk's block when they have its layout; true when this completion finished the chunk. Any thread,
   * once per slot (instead of {@link #complete}).
   */
  boolean succeed(int slot, String id, String version, OutputLayout layout, Tensor[] outputs) {
    ids[slot] = id;
    Block b = blockFor(layout, outputs);
    Answer answer;
    if (b != null) {
      b.layout.packInto(outputs, b.data, slot * b.layout.bytes);
      answer = packed(version, b.layout);
    } else {
      answer = new Success(version, layout, layout.pack(outputs));
    }
    return complete(slot, answer);
  }

  /**
   * The chunk's block if {@code outputs} (of {@code layout}) have its layout, making the block from
   * {@code layout} if there is none yet; else null.
   */
  private Block blockFor(OutputLayout layout, Tensor[] outputs) {
    Block b = block.get();
    if (b == null) {
      long size = (long) capacity * layout.bytes;
      if (size > MAX_BLOCK_BYTES) {
        return null;
      }
      // Completions race for the first block; a loser's array is garbage once, per chunk.
      block.compareAndSet(null, new Block(layout, new byte[(int) size]));
      b = block.get();
    }
    return b.layout == layout || b.layout.fits(layout.model, outputs) ? b : null;
  }

  private Packed packed(String version, OutputLayout layout) {
    Packed p = lastPacked;
    if (p == null || p.layout != layout || !p.version.equals(version)) {
      p = new Packed(version, layout);
      lastPacked = p;
    }
    return p;
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
