package io.quiver.batching;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One runner instance of a model version and what it owns: its pooled direct input buffers and its two
 * {@link Batch} objects. It has no thread: the dispatch owner hands it a batch ({@link #take}) and
 * then either runs it on the dispatching thread (a cheap batch on a transport thread, or the next batch
 * of the compute thread that just finished this instance's previous one) or gives the instance to the
 * {@link ComputePool} as a task ({@link #run}).
 *
 * <p>State ({@link #state}, CAS): {@link #BUSY} while a batch is assigned and running, so the runner
 * never runs two batches at once; {@link #HELD} bits per batch slot while that batch is assigned, running
 * or being delivered, so a runner's output buffers (valid until its second following run, see
 * {@link ModelRunner#run}) are not reused before the transports wrote them. The instance can take a batch
 * when it is not busy and its next slot is not held. {@link #nextSlot} and {@link #assigned} are written
 * by the dispatch owner before the instance is published (by the pool's queue, or by running on the same
 * thread) and read by the thread that runs it.
 *
 * <p>Allocation per batch: none for fixed-shape inputs once each batch size has been seen (one Tensor
 * and one buffer view per other input), and per request one Tensor, one shape and one buffer view per
 * returned output (the response needs them).
 */
final class ModelInstance implements Runnable {
  static final int BUSY = 1;
  static final int HELD = 2; // HELD << slot

  private final DynamicBatcher batcher;
  private final ModelRunner runner;
  private final ModelSignature signature;
  final int index;
  private final ByteBuffer[] inputPool;
  private final Tensor[] batchInputs;
  private final int[][] bytesBounds; // per union position, element-offset bounds per request (BYTES outputs)
  private final int maxRows;
  /** Per input, the bytes of one row when its shape is fixed (all dims known, not BYTES), else 0. */
  private final long[] fixedRowBytes;
  /** Per fixed-shape input, the batch tensor per row count (built on first use over the pooled buffer). */
  private final Tensor[][] batchTensors;
  /** Per union position: the runner's output shape array last seen, and row shapes derived from it per row count. */
  private final long[][] shapeSource;
  private final long[][][] rowShapes;
  private final Batch[] slots = new Batch[2];
  private final AtomicInteger state = new AtomicInteger();
  private int nextSlot; // dispatch owner only
  /** The batch to run next: written by the dispatch owner, read by the thread that runs the instance. */
  Batch assigned;

  ModelInstance(DynamicBatcher batcher, ModelRunner runner, int index, int maxRequests) {
    this.batcher = batcher;
    this.runner = runner;
    this.signature = batcher.signature();
    this.index = index;
    int inputs = signature.inputs().size();
    this.inputPool = new ByteBuffer[inputs];
    this.batchInputs = new Tensor[inputs];
    this.bytesBounds = new int[signature.outputs().size()][maxRequests + 1];
    this.maxRows = maxRequests;
    this.fixedRowBytes = new long[inputs];
    this.batchTensors = new Tensor[inputs][];
    for (int i = 0; i < inputs; i++) {
      io.quiver.core.TensorSpec spec = signature.inputs().get(i);
      long bytes = spec.dataType().isFixedSize() ? spec.dataType().byteSize() : -1;
      for (long d : spec.dims()) {
        bytes = d > 0 && bytes > 0 ? bytes * d : -1;
      }
      // A model without a batch dimension has exactly one row of the full shape.
      fixedRowBytes[i] = Math.max(0, bytes);
      if (bytes > 0) {
        batchTensors[i] = new Tensor[maxRequests + 1];
      }
    }
    for (int s = 0; s < 2; s++) {
      slots[s] = new Batch(this, s, maxRequests, signature.outputs().size());
    }
    int outputs = signature.outputs().size();
    this.shapeSource = new long[outputs][];
    this.rowShapes = new long[outputs][maxRequests + 1][];
  }

  /** Any thread: not running a batch (it may still wait for a slot; a cheap pre-check for producers). */
  boolean maybeReady() {
    return (state.get() & BUSY) == 0;
  }

  /** Dispatch owner: can take a batch now. */
  boolean ready() {
    int s = state.get();
    return (s & (BUSY | (HELD << nextSlot))) == 0;
  }

  /** Tests: not busy and no batch held anywhere. */
  boolean quiescent() {
    return state.get() == 0;
  }

  /** Dispatch owner, when {@link #ready()}: marks the instance busy and returns its next batch, cleared. */
  Batch take() {
    int slot = nextSlot;
    int bits = BUSY | (HELD << slot);
    int s;
    do { // other threads only clear bits (finished runs, delivered batches), so this settles at once
      s = state.get();
    } while (!state.compareAndSet(s, s | bits));
    nextSlot = slot ^ 1;
    Batch b = slots[slot];
    b.clear();
    return b;
  }

  /** Dispatch owner: gives back a batch that ended up empty (every candidate was dead). */
  void untake(Batch b) {
    nextSlot = b.slot;
    clearBits(BUSY | (HELD << b.slot));
  }

  /** The running thread, once the runner no longer needs the batch's inputs: the instance may run again. */
  void runFinished() {
    clearBits(BUSY);
  }

  /** The thread that delivered the batch's last answer: its slot (and the runner's output buffers) may be reused. */
  void released(Batch b) {
    clearBits(HELD << b.slot);
  }

  private void clearBits(int bits) {
    int s;
    do {
      s = state.get();
    } while (!state.compareAndSet(s, s & ~bits));
  }

  /** As a {@link ComputePool} task: runs the assigned batch, then this instance's next ones while there are. */
  @Override
  public void run() {
    batcher.runOnComputeThread(this);
  }

  ModelRunner runner() {
    return runner;
  }

  /** Gathers, runs and scatters {@link #assigned}; leaves timings or the failure in the batch. */
  void execute(Batch batch) {
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
      for (int i = 0; i < batchInputs.length; i++) {
        batchInputs[i] = null;
      }
    }
  }

  /**
   * Copies each input's rows of every request, in batch order, into one pooled direct buffer. For an
   * input of fixed shape the batch tensor of a given row count is built once and passed again on later
   * batches of that size (same object, same buffer, new contents), so a runner can reuse what it built
   * over it (see {@link ModelRunner}).
   */
  private Tensor[] gather(Batch batch) {
    InferRequest[] requests = batch.requests;
    int count = batch.count;
    Tensor[] first = requests[0].inputs();
    for (int i = 0; i < first.length; i++) {
      Tensor head = first[i];
      if (head == null) {
        batchInputs[i] = null; // absent optional input: absent in every request of the batch
        continue;
      }
      long total = 0;
      for (int r = 0; r < count; r++) {
        total += requests[r].inputs()[i].byteSize();
      }
      if (total > Integer.MAX_VALUE - 8) {
        throw InferenceException.invalidArgument("batch input '%s' would be %d bytes; over 2 GiB", head.name(), total);
      }
      ByteBuffer pool = inputPool[i];
      if (pool == null || pool.capacity() < total) {
        // Sized for a full batch of a fixed-shape input at once; otherwise grown geometrically, so a model
        // settles on one buffer per input per instance.
        long full = fixedRowBytes[i] > 0 ? fixedRowBytes[i] * (long) maxRows : 0;
        long capacity = Math.max(Math.max(total, full), pool == null ? 0 : Math.min(Integer.MAX_VALUE - 8, 2L * pool.capacity()));
        pool = ByteBuffer.allocateDirect((int) capacity).order(ByteOrder.LITTLE_ENDIAN);
        inputPool[i] = pool;
        if (batchTensors[i] != null) {
          java.util.Arrays.fill(batchTensors[i], null); // built over the old buffer
        }
      }
      int pos = 0;
      for (int r = 0; r < count; r++) {
        pos += requests[r].inputs()[i].copyTo(pool, pos);
      }
      Tensor[] cache = batchTensors[i];
      int rows = batch.rows;
      if (cache != null && rows < cache.length && pos == fixedRowBytes[i] * rows) {
        Tensor t = cache[rows];
        if (t == null) {
          t = new Tensor(head.name(), head.dataType(), batchShape(head.shape(), rows),
              pool.slice(0, pos).order(ByteOrder.LITTLE_ENDIAN));
          cache[rows] = t;
        }
        batchInputs[i] = t;
      } else {
        batchInputs[i] = new Tensor(head.name(), head.dataType(), batchShape(head.shape(), rows),
            pool.slice(0, pos).order(ByteOrder.LITTLE_ENDIAN));
      }
    }
    return batchInputs;
  }

  private long[] batchShape(long[] requestShape, int rows) {
    if (!signature.batches()) {
      return requestShape;
    }
    long[] shape = requestShape.clone();
    shape[0] = rows;
    return shape;
  }

  /** Gives each request its requested outputs: whole tensors for a single request, row slices otherwise. */
  private void scatter(Batch batch, Tensor[] outputs) {
    int[] union = batch.union;
    if (outputs == null || outputs.length != union.length) {
      throw InferenceException.internal("runner returned " + (outputs == null ? "null" : outputs.length + " outputs")
          + "; asked for " + union.length, null);
    }
    InferRequest[] requests = batch.requests;
    int count = batch.count;
    if (count == 1) {
      int[] wanted = requests[0].outputIndices();
      Tensor[] mine = new Tensor[wanted.length];
      for (int j = 0; j < wanted.length; j++) {
        mine[j] = outputs[batch.unionPos[wanted[j]]];
      }
      batch.outputs[0] = mine;
      return;
    }
    int rows = batch.rows;
    for (int u = 0; u < union.length; u++) {
      Tensor out = outputs[u];
      long[] shape = out.shape();
      if (shape.length == 0 || shape[0] != rows) {
        throw InferenceException.internal("runner returned output '" + out.name() + "' with shape "
            + java.util.Arrays.toString(shape) + "; its first dimension must be the batch of " + rows, null);
      }
      if (out.dataType() == DataType.BYTES) {
        long perRow = out.elementCount() / rows;
        ByteBuffer data = out.data();
        int[] bounds = bytesBounds[u];
        bounds[0] = 0;
        for (int r = 0; r < count; r++) {
          int start = bounds[r];
          // Walk only this request's elements, from where the previous request ended: linear overall.
          bounds[r + 1] = start + BytesElements.offsetOf(data.slice(start, data.limit() - start),
              perRow * requests[r].batchSize());
        }
      } else if (out.byteSize() % rows != 0) {
        throw InferenceException.internal("runner returned output '" + out.name() + "' of " + out.byteSize()
            + " bytes, not a multiple of the batch of " + rows, null);
      }
    }
    int rowStart = 0;
    for (int r = 0; r < count; r++) {
      InferRequest request = requests[r];
      int myRows = request.batchSize();
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
          from = rowStart * rowBytes;
          length = myRows * rowBytes;
        }
        mine[j] = out.view(rowShape(u, out.shape(), myRows), from, length);
      }
      batch.outputs[r] = mine;
      rowStart += myRows;
    }
  }

  /**
   * The shape of {@code rows} rows of a batch output: shared per output and row count while the runner
   * returns the same shape array (its reused outputs do), so a request's shape is not a new array.
   */
  private long[] rowShape(int u, long[] batchShape, int rows) {
    if (shapeSource[u] != batchShape) {
      shapeSource[u] = batchShape;
      java.util.Arrays.fill(rowShapes[u], null);
    }
    long[] shape = rowShapes[u][rows];
    if (shape == null) {
      shape = batchShape.clone();
      shape[0] = rows;
      rowShapes[u][rows] = shape;
    }
    return shape;
  }
}
