package io.quiver.bench.jmh;

import io.quiver.batching.ComputePool;
import io.quiver.batching.DynamicBatcher;
import io.quiver.batching.DynamicBatcherBuilder;
import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.batching.NanoClock;
import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.TransportExecutor;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The scheduler path of one request through the real {@link DynamicBatcher}: submit (offer to the
 * MPSC queue) → a dispatch forms a batch and gathers the rows into a pooled direct buffer → the batch
 * runs a trivial runner (copies the batch out, as ONNX Runtime's output copy does) → the batcher
 * scatters the output rows and answers each request.
 *
 * <p>{@code transport}: {@code loop} submits from a transport thread (the benchmark thread plays an
 * event loop: its own task queue, drained after each burst, as Netty runs tasks after a read), so
 * the dispatch round runs there and, once the cost model has seen the runner is cheap, the batch runs
 * inline with no other thread involved (the server's path for tiny models); {@code pool} submits with
 * no transport, so every batch runs on a {@link ComputePool} thread and answers come back across
 * threads.
 *
 * <p>Each invocation submits a burst of {@value #BURST} single-row requests and waits for all of
 * them; times and {@code -prof gc} bytes are per request. Comparing the 16- and 784-element rows
 * shows what gather and scatter cost per byte.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class BatcherBenchmark {
  static final int BURST = 64;

  /** FP32 elements per row. */
  @Param({"16", "784"})
  int elements;

  /** max_queue_delay_microseconds of the dynamic batcher. */
  @Param({"0", "100"})
  long queueDelayMicros;

  /** Where requests come from: an event loop ({@code loop}) or a plain thread ({@code pool}); see the class doc. */
  @Param({"loop", "pool"})
  String transport;

  private DynamicBatcherFactory factory;
  private DynamicBatcher batcher;
  private final BenchLoop loop = new BenchLoop();
  private TransportExecutor submitVia;
  private Tensor[] inputs;
  private final int[] outputIndices = {0};
  private final Counter counter = new Counter();

  /** The one callback: counts, never allocates. */
  static final class Counter implements InferCallback {
    final AtomicInteger done = new AtomicInteger();
    final AtomicInteger failed = new AtomicInteger();

    @Override
    public void onSuccess(InferRequest request, Tensor[] outputs) {
      done.incrementAndGet();
    }

    @Override
    public void onFailure(InferRequest request, InferenceException error) {
      failed.incrementAndGet();
      done.incrementAndGet();
    }
  }

  /** Identity that copies its batch out (the runner's output buffers belong to the caller). */
  static final class CopyRunner implements ModelRunner {
    @Override
    public Tensor[] run(Tensor[] batchInputs, int[] outputIndices) {
      Tensor in = batchInputs[0];
      ByteBuffer out = ByteBuffer.allocate(in.byteSize()).order(ByteOrder.LITTLE_ENDIAN).put(in.data());
      return new Tensor[] {new Tensor("OUTPUT0", in.dataType(), in.shape(), out.flip())};
    }

    @Override
    public void close() {}
  }

  @Setup(Level.Trial)
  public void setUp() {
    ModelSignature signature = new ModelSignature(BURST,
        List.of(new TensorSpec("INPUT0", DataType.FP32, new long[] {elements})),
        List.of(new TensorSpec("OUTPUT0", DataType.FP32, new long[] {elements})));
    ModelConfig config = ModelConfig.newBuilder()
        .setName("bench")
        .setMaxBatchSize(BURST)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().setMaxQueueDelayMicroseconds(queueDelayMicros))
        .build();
    factory = new DynamicBatcherFactory(new ComputePool(1, ComputePool.IdleMode.PARK, "bench-compute-"),
        DynamicBatcherBuilder.DEFAULT_INLINE_MAX_NS, NanoClock.SYSTEM);
    batcher = (DynamicBatcher) factory.create("bench", 1, config, signature, List.of(new CopyRunner()));
    submitVia = transport.equals("loop") ? loop : null;
    ByteBuffer row = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < elements; i++) {
      row.putFloat(i);
    }
    inputs = new Tensor[] {new Tensor("INPUT0", DataType.FP32, new long[] {1, elements}, row.flip())};
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    batcher.close();
    factory.close();
    if (counter.failed.get() > 0) {
      throw new IllegalStateException(counter.failed.get() + " requests failed");
    }
  }

  @Benchmark
  @OperationsPerInvocation(BURST)
  public int offerBatchRunComplete() {
    int target = counter.done.get() + BURST;
    for (int i = 0; i < BURST; i++) {
      batcher.submit(new InferRequest("bench", 1, "", inputs, outputIndices, 1, 0, 0, InferRequest.NO_DEADLINE, counter,
          submitVia));
    }
    while (counter.done.get() < target) {
      if (loop.runTasks() == 0) {
        Thread.yield(); // the pool thread (or a timer) is working; two cores are shared
      }
    }
    return target;
  }

  /** The benchmark thread as an event loop: tasks queue here and run when the benchmark drains them. */
  static final class BenchLoop implements TransportExecutor {
    private final java.util.concurrent.ConcurrentLinkedQueue<Runnable> tasks = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private volatile Thread owner;

    int runTasks() {
      owner = Thread.currentThread();
      int n = 0;
      Runnable t;
      while ((t = tasks.poll()) != null) {
        t.run();
        n++;
      }
      return n;
    }

    @Override
    public void execute(Runnable task) {
      tasks.add(task);
    }

    @Override
    public boolean inTransportThread() {
      Thread o = owner;
      return o == null || o == Thread.currentThread();
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
      tasks.add(task); // runs at the next drain; the batcher re-checks the clock and re-arms if early
    }
  }
}
