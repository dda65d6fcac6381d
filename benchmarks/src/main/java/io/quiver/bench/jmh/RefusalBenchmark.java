package io.quiver.bench.jmh;

import io.grpc.InternalMetadata;
import io.grpc.StatusRuntimeException;
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
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelQueuePolicy;
import io.quiver.transport.GrpcErrors;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What Quiver's own code spends to refuse one request when a model's queue is full (issue 12, early
 * admission): the real {@link DynamicBatcher#admit} finding the level full and throwing, the one error
 * mapper turning that into a gRPC status with its RetryInfo detail, and the trailers as grpc-java
 * serializes them for the wire. HTTP/2 framing and the socket are not in it (the overload benchmark
 * measures those end to end); this isolates the part under Quiver's control, where under overload a
 * server core refuses thousands of requests a second.
 *
 * <p>The queue is full for real: one request runs on a runner that blocks until tear-down and
 * {@value #QUEUE} more wait behind it.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RefusalBenchmark {
  static final int QUEUE = 4;

  private DynamicBatcherFactory factory;
  private DynamicBatcher batcher;
  private final CountDownLatch release = new CountDownLatch(1);

  /** Holds its batch until tear-down, so the queue behind it stays full. */
  final class BlockingRunner implements ModelRunner {
    @Override
    public Tensor[] run(Tensor[] batchInputs, int[] outputIndices) {
      try {
        release.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return new Tensor[] {new Tensor("OUTPUT0", DataType.FP32, batchInputs[0].shape(), batchInputs[0].data())};
    }

    @Override
    public void close() {}
  }

  @Setup(Level.Trial)
  public void setUp() throws InterruptedException {
    ModelSignature signature = new ModelSignature(1,
        List.of(new TensorSpec("INPUT0", DataType.FP32, new long[] {4})),
        List.of(new TensorSpec("OUTPUT0", DataType.FP32, new long[] {4})));
    ModelConfig config = ModelConfig.newBuilder()
        .setName("bench")
        .setMaxBatchSize(1)
        .setDynamicBatching(ModelDynamicBatching.newBuilder()
            .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setMaxQueueSize(QUEUE)))
        .build();
    factory = new DynamicBatcherFactory(new ComputePool(1, ComputePool.IdleMode.PARK, "bench-compute-"),
        DynamicBatcherBuilder.DEFAULT_INLINE_MAX_NS, NanoClock.SYSTEM);
    batcher = (DynamicBatcher) factory.create("bench", 1, config, signature, List.of(new BlockingRunner()));
    ByteBuffer row = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1).putFloat(2).putFloat(3)
        .putFloat(4).flip();
    Tensor[] inputs = {new Tensor("INPUT0", DataType.FP32, new long[] {1, 4}, row)};
    InferCallback ignore = new InferCallback() {
      @Override
      public void onSuccess(InferRequest request, Tensor[] outputs) {}

      @Override
      public void onFailure(InferRequest request, InferenceException error) {}
    };
    batcher.submit(new InferRequest("bench", 1, "", inputs, new int[] {0}, 1, 0, 0, InferRequest.NO_DEADLINE, ignore, null));
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (batcher.queuedRequests() > 0 && System.nanoTime() < until) {
      Thread.sleep(1); // the first request leaves the queue for the (blocking) runner
    }
    for (int i = 0; i < QUEUE; i++) {
      batcher.submit(new InferRequest("bench", 1, "", inputs, new int[] {0}, 1, 0, 0, InferRequest.NO_DEADLINE, ignore,
          null));
    }
    try {
      batcher.admit(0);
      throw new IllegalStateException("the queue should be full");
    } catch (InferenceException expected) {
      // full, as intended
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    release.countDown();
    batcher.close();
    factory.close();
  }

  /** admit → the mapped status → its trailers as wire bytes. Returns the byte count (consumed by JMH). */
  @Benchmark
  public int refuseFullQueue() {
    try {
      batcher.admit(0);
      throw new IllegalStateException("admitted");
    } catch (InferenceException e) {
      StatusRuntimeException status = GrpcErrors.toStatus(e);
      byte[][] wire = InternalMetadata.serialize(status.getTrailers());
      int bytes = status.getMessage().length();
      for (byte[] part : wire) {
        bytes += part.length;
      }
      return bytes;
    }
  }
}
