package io.quiver.batching;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.SequenceBatchingSpec;
import io.quiver.core.SequenceControl;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One runner instance of a {@link SequenceBatcher}: the sequence slots it serves, its two
 * {@link SequenceBatch} objects, and its pooled input buffers. Like the dynamic batcher's
 * {@code ModelInstance} it has no thread: the dispatch owner assigns it a batch, and the batch runs on
 * the dispatching transport thread (when cheap) or as a {@link ComputePool} task ({@link #run}).
 *
 * <p>{@link #slots} and {@link #nextBatch} are the dispatch owner's. {@link #state} (CAS): {@link #BUSY}
 * while a batch is assigned or running; {@link #HELD} bits per batch object while that batch is
 * assigned, running or being delivered, so the runner's outputs (valid until its second following run)
 * are not overwritten before the transports wrote them. The execution methods run on the thread that
 * runs the batch, one batch at a time.
 */
final class SequenceInstance implements Runnable {
  static final int BUSY = 1;
  static final int HELD = 2; // HELD << batch slot

  private final SequenceBatcher batcher;
  private final ModelRunner runner;
  private final ModelSignature signature;
  private final SequenceBatcher.Layout layout;
  final int index;
  /** The sequence in each slot, or null (dispatch owner only). */
  final Sequence[] slots;
  private final int maxRows;
  private final SequenceBatch[] batches = new SequenceBatch[2];
  private final AtomicInteger state = new AtomicInteger();
  private int nextBatch;
  /** The batch to run next: written by the dispatch owner, read by the running thread. */
  SequenceBatch assigned;
  // The running thread's: pooled buffers and the batch tensors built over them.
  private final ByteBuffer[] pool;
  private final Tensor[] batchInputs;
  private final Tensor[][] cached;
  private final int[][] bytesBounds;

  SequenceInstance(SequenceBatcher batcher, ModelRunner runner, int index, int slots, int maxRows) {
    this.batcher = batcher;
    this.runner = runner;
    this.signature = batcher.signature();
    this.layout = batcher.layout();
    this.index = index;
    this.slots = new Sequence[slots];
    this.maxRows = maxRows;
    int inputs = signature.inputs().size();
    this.pool = new ByteBuffer[inputs];
    this.batchInputs = new Tensor[inputs];
    this.cached = new Tensor[inputs][maxRows + 1];
    this.bytesBounds = new int[signature.outputs().size()][maxRows + 1];
    for (int b = 0; b < 2; b++) {
      batches[b] = new SequenceBatch(this, b, maxRows, signature.outputs().size());
    }
  }

  /** Any thread: not running a batch (a cheap pre-check). */
  boolean maybeReady() {
    return (state.get() & BUSY) == 0;
  }

  /** Dispatch owner: can take a batch now. */
  boolean ready() {
    return (state.get() & (BUSY | (HELD << nextBatch))) == 0;
  }

  boolean quiescent() {
    return state.get() == 0;
  }

  /** Dispatch owner, when {@link #ready()}: marks the instance busy and returns its next batch object, cleared. */
  SequenceBatch take() {
    int b = nextBatch;
    int bits = BUSY | (HELD << b);
    int s;
    do {
      s = state.get();
    } while (!state.compareAndSet(s, s | bits));
    nextBatch = b ^ 1;
    SequenceBatch batch = batches[b];
    batch.clear();
    batch.reclaimed = false;
    return batch;
  }

  /** Dispatch owner: the previous batch object, which it may still have to read back (see SequenceBatcher#reclaim). */
  SequenceBatch nextBatchObject() {
    return batches[nextBatch];
  }

  void runFinished() {
    clearBits(BUSY);
  }

  void released(SequenceBatch batch) {
    clearBits(HELD << batch.slot);
  }

  private void clearBits(int bits) {
    int s;
    do {
      s = state.get();
    } while (!state.compareAndSet(s, s & ~bits));
  }

  /** As a compute-pool task: runs the assigned batch, then this instance's next ones. */
  @Override
  public void run() {
    batcher.runOnComputeThread(this);
  }

  /** Gathers, runs and scatters {@link #assigned}; leaves the timings or the failure in the batch. */
  void execute(SequenceBatch batch) {
    NanoClock clock = batcher.clock();
    long t0 = clock.nanoTime();
    batch.computeStartNanos = t0;
    try {
      Tensor[] inputs = gather(batch);
      long t1 = clock.nanoTime();
      Tensor[] outputs = runner.run(inputs, batch.union);
      long t2 = clock.nanoTime();
      scatter(batch, outputs);
      long t3 = clock.nanoTime();
      batch.inputNanos = t1 - t0;
      batch.inferNanos = t2 - t1;
      batch.outputNanos = t3 - t2;
      batcher.stats().recordExecution(batch.rows, batch.inputNanos, batch.inferNanos, batch.outputNanos,
          System.currentTimeMillis());
    } catch (InferenceException e) {
      batch.failure = e;
    } catch (Throwable t) {
      batch.failure = InferenceException.internal("model '" + batcher.modelName() + "' version " + batcher.version()
          + " instance " + index + " failed: " + t, t);
    } finally {
      Arrays.fill(batchInputs, null);
    }
  }

  // ---- gather ----

  private Tensor[] gather(SequenceBatch batch) {
    int rows = batch.rows;
    InferRequest reference = null;
    for (int r = 0; r < rows && reference == null; r++) {
      reference = batch.requests[r];
    }
    for (int i = 0; i < batchInputs.length; i++) {
      TensorSpec spec = signature.inputs().get(i);
      batchInputs[i] = switch (spec.role()) {
        case CLIENT -> clientInput(batch, i, reference.inputs()[i]);
        case SEQUENCE_CONTROL -> controlInput(batch, i, layout.controlOf(i));
        case SEQUENCE_STATE -> stateInput(batch, i, layout.stateOfInput(i));
      };
    }
    return batchInputs;
  }

  private Tensor clientInput(SequenceBatch batch, int i, Tensor head) {
    if (head == null) {
      return null; // an absent optional input: absent in every row (same presence is a batching rule)
    }
    int rows = batch.rows;
    long total;
    int nullRowBytes;
    if (head.dataType().isFixedSize()) {
      nullRowBytes = head.byteSize(); // requests have one row each: a row is the whole tensor
      total = (long) nullRowBytes * rows;
    } else {
      long perRow = Tensor.elementCount(head.shape()); // a not-ready row: that many empty elements
      nullRowBytes = (int) Math.min(Integer.MAX_VALUE, perRow * 4);
      total = 0;
      for (int r = 0; r < rows; r++) {
        total += batch.requests[r] != null ? batch.requests[r].inputs()[i].byteSize() : nullRowBytes;
      }
    }
    ByteBuffer buffer = buffer(i, total, head.name());
    int pos = 0;
    for (int r = 0; r < rows; r++) {
      InferRequest request = batch.requests[r];
      if (request != null) {
        pos += request.inputs()[i].copyTo(buffer, pos);
      } else {
        zero(buffer, pos, nullRowBytes); // BYTES: zero lengths, i.e. empty elements
        pos += nullRowBytes;
      }
    }
    long[] shape = rowsShape(head.shape(), rows);
    return tensor(i, head.name(), head.dataType(), shape, buffer, pos, head.dataType().isFixedSize() && fixedDims(i));
  }

  private Tensor controlInput(SequenceBatch batch, int i, SequenceBatchingSpec.Control control) {
    int rows = batch.rows;
    long[] shape = signature.batches() ? new long[] {rows, 1} : new long[] {1};
    if (control.kind() == SequenceBatchingSpec.ControlKind.CORRID && control.dataType() == DataType.BYTES) {
      long total = 0;
      for (int r = 0; r < rows; r++) {
        total += 4 + (batch.requests[r] == null ? 0 : utf8(batch.sequences[r].id).length);
      }
      ByteBuffer buffer = buffer(i, total, control.inputName());
      int pos = 0;
      for (int r = 0; r < rows; r++) {
        byte[] id = batch.requests[r] == null ? new byte[0] : utf8(batch.sequences[r].id);
        buffer.putInt(pos, id.length);
        buffer.put(pos + 4, id);
        pos += 4 + id.length;
      }
      return new Tensor(control.inputName(), DataType.BYTES, shape, buffer.slice(0, pos).order(ByteOrder.LITTLE_ENDIAN));
    }
    int size = control.dataType().byteSize();
    ByteBuffer buffer = buffer(i, (long) size * rows, control.inputName());
    for (int r = 0; r < rows; r++) {
      InferRequest request = batch.requests[r];
      int at = r * size;
      if (control.kind() == SequenceBatchingSpec.ControlKind.CORRID) {
        long id = request == null ? 0 : batch.sequences[r].id.numericId();
        if (size == 8) {
          buffer.putLong(at, id);
        } else {
          buffer.putInt(at, (int) id); // a 32-bit CORRID carries the low-order 32 bits, as in Triton
        }
        continue;
      }
      boolean value = request != null && switch (control.kind()) {
        case START -> request.sequence().start();
        case END -> request.sequence().end();
        default -> true; // READY: the row holds a request
      };
      buffer.put(at, value ? control.trueValue() : control.falseValue());
    }
    return tensor(i, control.inputName(), control.dataType(), shape, buffer, size * rows, true);
  }

  private Tensor stateInput(SequenceBatch batch, int i, int k) {
    SequenceBatchingSpec.State state = layout.state(k);
    int rows = batch.rows;
    int rowBytes = state.rowBytes();
    ByteBuffer buffer = buffer(i, (long) rowBytes * rows, state.inputName());
    for (int r = 0; r < rows; r++) {
      InferRequest request = batch.requests[r];
      Sequence sequence = batch.sequences[r];
      if (request != null && !request.sequence().start() && sequence.stateValid && sequence.state[k] != null) {
        buffer.put(r * rowBytes, sequence.state[k]);
      } else {
        zero(buffer, r * rowBytes, rowBytes); // the initial state (zero_data), or a not-ready row
      }
    }
    long[] shape = rowsShape(withBatchSlot(state.dims()), rows);
    return tensor(i, state.inputName(), state.dataType(), shape, buffer, rowBytes * rows, true);
  }

  private long[] withBatchSlot(long[] dims) {
    if (!signature.batches()) {
      return dims;
    }
    long[] shape = new long[dims.length + 1];
    System.arraycopy(dims, 0, shape, 1, dims.length);
    return shape;
  }

  private static byte[] utf8(SequenceControl id) {
    return id.isString() ? id.stringId().getBytes(StandardCharsets.UTF_8)
        : Long.toUnsignedString(id.numericId()).getBytes(StandardCharsets.UTF_8);
  }

  private boolean fixedDims(int i) {
    for (long d : signature.inputs().get(i).dims()) {
      if (d < 0) {
        return false;
      }
    }
    return true;
  }

  private long[] rowsShape(long[] requestShape, int rows) {
    if (!signature.batches()) {
      return requestShape;
    }
    long[] shape = requestShape.clone();
    shape[0] = rows;
    return shape;
  }

  /** The pooled buffer of input {@code i}, at least {@code bytes} long (grown geometrically, then kept). */
  private ByteBuffer buffer(int i, long bytes, String name) {
    if (bytes > Integer.MAX_VALUE - 8) {
      throw InferenceException.invalidArgument("batch input '%s' would be %d bytes; over 2 GiB", name, bytes);
    }
    ByteBuffer b = pool[i];
    if (b == null || b.capacity() < bytes) {
      long capacity = Math.max(bytes, b == null ? 64 : Math.min(Integer.MAX_VALUE - 8, 2L * b.capacity()));
      b = ByteBuffer.allocateDirect((int) capacity).order(ByteOrder.LITTLE_ENDIAN);
      pool[i] = b;
      Arrays.fill(cached[i], null); // built over the old buffer
    }
    return b;
  }

  /**
   * The batch tensor of input {@code i} over its pooled buffer: the same object for the same row count when
   * {@code reusable} (fixed shape), so a runner can reuse what it built over it.
   */
  private Tensor tensor(int i, String name, DataType type, long[] shape, ByteBuffer buffer, int length, boolean reusable) {
    int rows = signature.batches() ? (int) shape[0] : 1;
    if (reusable && rows <= maxRows) {
      Tensor t = cached[i][rows];
      if (t == null || t.byteSize() != length || !Arrays.equals(t.shape(), shape)) {
        t = new Tensor(name, type, shape, buffer.slice(0, length).order(ByteOrder.LITTLE_ENDIAN));
        cached[i][rows] = t;
      }
      return t;
    }
    return new Tensor(name, type, shape, buffer.slice(0, length).order(ByteOrder.LITTLE_ENDIAN));
  }

  private static void zero(ByteBuffer buffer, int from, int length) {
    int end = from + length;
    int p = from;
    for (; p + 8 <= end; p += 8) {
      buffer.putLong(p, 0L);
    }
    for (; p < end; p++) {
      buffer.put(p, (byte) 0);
    }
  }

  // ---- scatter ----

  /** Keeps each sequence's new state, then gives each request its outputs (row views, no copy). */
  private void scatter(SequenceBatch batch, Tensor[] outputs) {
    int[] union = batch.union;
    if (outputs == null || outputs.length != union.length) {
      throw InferenceException.internal("runner returned " + (outputs == null ? "null" : outputs.length + " outputs")
          + "; asked for " + union.length, null);
    }
    int rows = batch.rows;
    for (int k = 0; k < layout.states(); k++) {
      Tensor out = outputs[batch.unionPos[layout.stateOutput(k)]];
      int rowBytes = layout.state(k).rowBytes();
      if (out.byteSize() != (long) rowBytes * rows) {
        throw InferenceException.internal("model '" + batcher.modelName() + "': state output '" + out.name() + "' has "
            + out.byteSize() + " bytes; the config's state dims need " + rowBytes + " per sequence (" + rows + " rows)",
            null);
      }
      ByteBuffer data = out.data();
      for (int r = 0; r < rows; r++) {
        Sequence sequence = batch.sequences[r];
        if (batch.requests[r] == null) {
          continue;
        }
        byte[] kept = sequence.state[k];
        if (kept == null) {
          kept = new byte[rowBytes]; // once per sequence and state
          sequence.state[k] = kept;
        }
        data.get(r * rowBytes, kept);
      }
    }
    for (int r = 0; r < rows; r++) {
      if (batch.requests[r] != null) {
        batch.sequences[r].stateValid = true;
      }
    }
    if (!signature.batches()) {
      for (int r = 0; r < rows; r++) {
        InferRequest request = batch.requests[r];
        if (request != null) {
          int[] wanted = request.outputIndices();
          Tensor[] mine = new Tensor[wanted.length];
          for (int j = 0; j < wanted.length; j++) {
            mine[j] = outputs[batch.unionPos[wanted[j]]];
          }
          batch.outputs[r] = mine;
        }
      }
      return;
    }
    for (int u = 0; u < union.length; u++) {
      Tensor out = outputs[u];
      if (!signature.outputs().get(union[u]).clientFacing()) {
        continue;
      }
      long[] shape = out.shape();
      if (shape.length == 0 || shape[0] != rows) {
        throw InferenceException.internal("runner returned output '" + out.name() + "' with shape "
            + Arrays.toString(shape) + "; its first dimension must be the batch of " + rows, null);
      }
      if (out.dataType() == DataType.BYTES) {
        long perRow = out.elementCount() / rows;
        ByteBuffer data = out.data();
        int[] bounds = bytesBounds[u];
        bounds[0] = 0;
        for (int r = 0; r < rows; r++) {
          int start = bounds[r];
          bounds[r + 1] = start + BytesElements.offsetOf(data.slice(start, data.limit() - start), perRow);
        }
      } else if (out.byteSize() % rows != 0) {
        throw InferenceException.internal("runner returned output '" + out.name() + "' of " + out.byteSize()
            + " bytes, not a multiple of the batch of " + rows, null);
      }
    }
    for (int r = 0; r < rows; r++) {
      InferRequest request = batch.requests[r];
      if (request == null) {
        continue;
      }
      int[] wanted = request.outputIndices();
      Tensor[] mine = new Tensor[wanted.length];
      for (int j = 0; j < wanted.length; j++) {
        int u = batch.unionPos[wanted[j]];
        Tensor out = outputs[u];
        int from;
        int length;
        if (out.dataType() == DataType.BYTES) {
          from = bytesBounds[u][r];
          length = bytesBounds[u][r + 1] - from;
        } else {
          int rowBytes = out.byteSize() / rows;
          from = r * rowBytes;
          length = rowBytes;
        }
        long[] shape = out.shape().clone();
        shape[0] = 1;
        mine[j] = out.view(shape, from, length);
      }
      batch.outputs[r] = mine;
    }
  }
}
