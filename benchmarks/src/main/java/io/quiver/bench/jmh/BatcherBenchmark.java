package io.quiver.bench.jmh;

import io.quiver.batching.DynamicBatcher;
import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
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
 * MPSC queue) → the agent forms a batch and gathers the rows into a pooled direct buffer → an
 * instance worker runs a trivial runner (copies the batch out, as ONNX Runtime's output copy does)
 * → the batcher scatters the output rows and completes each request's callback.
 *
 * <p>Each invocation submits a burst of {@value #BURST} single-row requests and waits for all of
 * them; times and {@code -prof gc} bytes are per request. Comparing the 16- and 784-element rows
 * shows what gather and scatter cost per byte (they are package-private inside the batcher, so they
 * are measured here through it).
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

  private DynamicBatcher batcher;
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
    batcher = DynamicBatcher.builder().model("bench", 1, config, signature).runners(List.of(new CopyRunner())).build();
    ByteBuffer row = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < elements; i++) {
      row.putFloat(i);
    }
    inputs = new Tensor[] {new Tensor("INPUT0", DataType.FP32, new long[] {1, elements}, row.flip())};
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    batcher.close();
    if (counter.failed.get() > 0) {
      throw new IllegalStateException(counter.failed.get() + " requests failed");
    }
  }

  @Benchmark
  @OperationsPerInvocation(BURST)
  public int offerBatchRunComplete() {
    int target = counter.done.get() + BURST;
    for (int i = 0; i < BURST; i++) {
      batcher.submit(new InferRequest("bench", 1, "", inputs, outputIndices, 1, 0, 0, InferRequest.NO_DEADLINE, counter));
    }
    // Three busy threads on two cores: yield rather than spin hard.
    while (counter.done.get() < target) {
      Thread.yield();
    }
    return target;
  }
}
