package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.IntToLongFunction;

/** Clocks, runners that really compute, and request helpers shared by the tests. */
final class TestSupport {
  private TestSupport() {}

  static final long WAIT_MS = 10_000;

  /** Where live (non-manual) test batchers run their batches: two threads, parking when idle. */
  static final ComputePool POOL = new ComputePool(2, ComputePool.IdleMode.PARK, "test-compute-");
  /** The fallback timer of live test batchers. */
  static final java.util.concurrent.ScheduledExecutorService TIMER =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "test-batch-timer");
        t.setDaemon(true);
        return t;
      });

  /** A builder whose batcher dispatches by itself, on the shared test pool and timer. */
  static DynamicBatcherBuilder live(DynamicBatcherBuilder builder) {
    return builder.compute(POOL).timer(TIMER);
  }

  /** A clock tests move by hand; starts far from zero so deadlines before "now" are representable. */
  static final class ManualClock implements NanoClock {
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    @Override
    public long nanoTime() {
      return now.get();
    }

    void advanceMicros(long micros) {
      now.addAndGet(micros * 1000);
    }

    void advanceNanos(long nanos) {
      now.addAndGet(nanos);
    }
  }

  /** FP32 [-1, width] in, "OUT" = "IN" (and, optionally, "NEG" = -"IN"). */
  static ModelSignature identitySignature(int maxBatch, int width) {
    long[] dims = maxBatch > 0 ? new long[] {width} : new long[] {1, width};
    return new ModelSignature(maxBatch,
        List.of(new TensorSpec("IN", DataType.FP32, dims), new TensorSpec("OPT", DataType.FP32, dims, true)),
        List.of(new TensorSpec("OUT", DataType.FP32, dims), new TensorSpec("NEG", DataType.FP32, dims)));
  }

  /**
   * Computes OUT = IN (+ OPT when present) and NEG = -OUT from direct little-endian buffers, records
   * each batch's rows, and can add a cost to a manual clock, block until released, or throw.
   */
  static class ArithmeticRunner implements ModelRunner {
    final List<Integer> batchRows = Collections.synchronizedList(new ArrayList<>());
    final List<Float> batchFirst = Collections.synchronizedList(new ArrayList<>());
    final List<int[]> outputRequests = Collections.synchronizedList(new ArrayList<>());
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger maxConcurrent = new AtomicInteger();
    volatile CountDownLatch gate; // when set, run() waits for it
    final CountDownLatch entered = new CountDownLatch(1);
    volatile ManualClock clock;
    volatile IntToLongFunction costNanos;
    volatile float failOn = Float.NaN; // a first element equal to this throws RuntimeException
    volatile float rejectOn = Float.NaN; // ... throws INVALID_ARGUMENT

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      int now = running.incrementAndGet();
      maxConcurrent.accumulateAndGet(now, Math::max);
      try {
        entered.countDown();
        CountDownLatch g = gate;
        if (g != null) {
          try {
            g.await(WAIT_MS, TimeUnit.MILLISECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
        Tensor in = inputs[0];
        Tensor opt = inputs[1];
        ByteBuffer a = in.data();
        if (!a.isDirect()) {
          throw new IllegalStateException("input is not direct");
        }
        int rows = (int) in.shape()[0];
        batchRows.add(rows);
        batchFirst.add(a.getFloat(0));
        outputRequests.add(outputIndices.clone());
        if (a.getFloat(0) == failOn) {
          throw new IllegalStateException("boom");
        }
        if (a.getFloat(0) == rejectOn) {
          throw InferenceException.invalidArgument("rejected by runtime");
        }
        ByteBuffer b = opt == null ? null : opt.data();
        int n = a.remaining() / 4;
        Tensor[] out = new Tensor[outputIndices.length];
        for (int k = 0; k < outputIndices.length; k++) {
          float sign = outputIndices[k] == 0 ? 1f : -1f;
          ByteBuffer o = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.LITTLE_ENDIAN);
          for (int i = 0; i < n; i++) {
            float v = a.getFloat(i * 4) + (b == null ? 0f : b.getFloat(i * 4));
            o.putFloat(i * 4, sign * v);
          }
          out[k] = new Tensor(outputIndices[k] == 0 ? "OUT" : "NEG", DataType.FP32, in.shape().clone(), o);
        }
        ManualClock c = clock;
        IntToLongFunction cost = costNanos;
        if (c != null && cost != null) {
          c.advanceNanos(cost.applyAsLong(rows));
        }
        return out;
      } finally {
        running.decrementAndGet();
      }
    }

    @Override
    public void close() {}
  }

  /** A request's outcome, with the order in which outcomes arrived. */
  static class Result implements InferCallback {
    static final AtomicInteger ORDER = new AtomicInteger();
    final CountDownLatch done = new CountDownLatch(1);
    final AtomicInteger calls = new AtomicInteger();
    volatile Tensor[] outputs;
    volatile InferenceException error;
    volatile int order;
    final ConcurrentLinkedQueue<Integer> sink;

    Result() {
      this(null);
    }

    Result(ConcurrentLinkedQueue<Integer> sink) {
      this.sink = sink;
    }

    @Override
    public void onSuccess(InferRequest request, Tensor[] outputs) {
      this.outputs = outputs;
      finish(request);
    }

    @Override
    public void onFailure(InferRequest request, InferenceException error) {
      this.error = error;
      finish(request);
    }

    private void finish(InferRequest request) {
      order = ORDER.incrementAndGet();
      calls.incrementAndGet();
      if (sink != null) {
        sink.add(Integer.parseInt(request.id()));
      }
      done.countDown();
    }

    boolean isDone() {
      return done.getCount() == 0;
    }

    Result await() {
      try {
        assertThat(done.await(WAIT_MS, TimeUnit.MILLISECONDS)).as("request answered").isTrue();
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
      return this;
    }

    float[] floats(int output) {
      assertThat(error).as("error").isNull();
      ByteBuffer data = outputs[output].data();
      float[] v = new float[data.remaining() / 4];
      for (int i = 0; i < v.length; i++) {
        v[i] = data.getFloat(i * 4);
      }
      return v;
    }
  }

  /** A builder of requests for the identity signature. */
  static final class Req {
    private final String id;
    private float[] values = {0f, 0f};
    private int rows = 1;
    private float[] opt;
    private int priority;
    private long timeoutMicros;
    private long deadline = InferRequest.NO_DEADLINE;
    private int[] outputs = {0, 1};
    private boolean batched = true;

    Req(Object id) {
      this.id = String.valueOf(id);
    }

    /** rows x (values.length / rows) floats. */
    Req values(int rows, float... values) {
      this.rows = rows;
      this.values = values;
      return this;
    }

    Req opt(float... opt) {
      this.opt = opt;
      return this;
    }

    Req priority(int p) {
      this.priority = p;
      return this;
    }

    Req timeoutMicros(long t) {
      this.timeoutMicros = t;
      return this;
    }

    Req deadline(long nanos) {
      this.deadline = nanos;
      return this;
    }

    Req outputs(int... o) {
      this.outputs = o;
      return this;
    }

    Req unbatched() {
      this.batched = false;
      return this;
    }

    InferRequest build(InferCallback callback) {
      int width = values.length / rows;
      long[] shape = batched ? new long[] {rows, width} : new long[] {1, width};
      Tensor in = new Tensor("IN", DataType.FP32, shape, floats(values));
      Tensor o = opt == null ? null : new Tensor("OPT", DataType.FP32, shape.clone(), floats(opt));
      return new InferRequest("m", 1, id, new Tensor[] {in, o}, outputs, batched ? rows : 1, priority, timeoutMicros,
          deadline, callback);
    }
  }

  static ByteBuffer floats(float... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return b.flip();
  }

  /** Runs the batcher's held compute tasks and dispatch cycles on this thread until {@code done}, failing after a generous real-time limit. */
  static void pumpUntil(DynamicBatcher batcher, BooleanSupplier done) {
    long limit = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > limit) {
        throw new AssertionError("condition not reached in " + WAIT_MS + " ms");
      }
      if (batcher.doWork() == 0) {
        Thread.onSpinWait();
        Thread.yield();
      }
    }
  }

  /** Waits (real time) for a condition another thread makes true. */
  static void waitUntil(BooleanSupplier done) {
    long limit = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > limit) {
        throw new AssertionError("condition not reached in " + WAIT_MS + " ms");
      }
      Thread.yield();
    }
  }
}
