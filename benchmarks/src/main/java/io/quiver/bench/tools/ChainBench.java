package io.quiver.bench.tools;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.bench.perf.CpuClock;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Closed-loop gRPC load through a chain of models, the way a client without ensembles chains them:
 * call the first model, send its first output as the second model's input, and so on; one model is
 * an ensemble (or any single model) called directly. Used by benchmarks/ensembles.sh to compare an
 * ensemble with the client calling its steps itself, in one run and with the same client code.
 *
 * <pre>java -cp ... io.quiver.bench.tools.ChainBench HOST:PORT SERVER_PID CONCURRENCY WINDOW_MS LABEL MODEL[,MODEL...]</pre>
 *
 * Prints one line: {@code label requests/s p50_us p99_us server_cpu_us_per_request client_cpu_us_per_request}.
 * Every request carries the same seeded random data for the first model's input (batch 1).
 */
public final class ChainBench {
  private ChainBench() {}

  public static void main(String[] args) throws Exception {
    String target = args[0];
    long serverPid = Long.parseLong(args[1]);
    int concurrency = Integer.parseInt(args[2]);
    long windowMillis = Long.parseLong(args[3]);
    String label = args[4];
    String[] models = args[5].split(",");
    ManagedChannel channel = NettyChannelBuilder.forTarget(target).usePlaintext().directExecutor().build();
    try {
      GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub blocking = GRPCInferenceServiceGrpc.newBlockingStub(channel);
      ModelMetadataResponse[] metadata = new ModelMetadataResponse[models.length];
      for (int i = 0; i < models.length; i++) {
        metadata[i] = blocking.withDeadlineAfter(60, TimeUnit.SECONDS).withWaitForReady()
            .modelMetadata(ModelMetadataRequest.newBuilder().setName(models[i]).build());
      }
      ModelInferRequest first = firstRequest(models[0], metadata[0]);
      GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async = GRPCInferenceServiceGrpc.newStub(channel);
      run(async, models, metadata, first, concurrency, 2000, null); // warm-up
      long[] latencies = new long[4_000_000];
      AtomicLong count = new AtomicLong();
      long server0 = CpuClock.processCpuNanos(serverPid);
      long client0 = CpuClock.selfCpuNanos();
      long t0 = System.nanoTime();
      run(async, models, metadata, first, concurrency, windowMillis, new Recorder(latencies, count));
      long elapsed = System.nanoTime() - t0;
      long serverCpu = CpuClock.processCpuNanos(serverPid) - server0;
      long clientCpu = CpuClock.selfCpuNanos() - client0;
      int n = (int) Math.min(count.get(), latencies.length);
      long[] sorted = Arrays.copyOf(latencies, n);
      Arrays.sort(sorted);
      System.out.println(String.format(Locale.ROOT, "%s %.0f %.1f %.1f %.2f %.2f", label,
          count.get() * 1e9 / elapsed, sorted[n / 2] / 1e3, sorted[(int) (n * 0.99)] / 1e3,
          serverCpu / 1e3 / count.get(), clientCpu / 1e3 / count.get()));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Where the measured loops record: latencies (ns) in completion order, and the count. */
  record Recorder(long[] latencies, AtomicLong count) {
    void record(long nanos) {
      long i = count.getAndIncrement();
      if (i < latencies.length) {
        latencies[(int) i] = nanos;
      }
    }
  }

  static ModelInferRequest firstRequest(String model, ModelMetadataResponse metadata) {
    ModelMetadataResponse.TensorMetadata input = metadata.getInputs(0);
    ModelInferRequest.InferInputTensor.Builder tensor = ModelInferRequest.InferInputTensor.newBuilder()
        .setName(input.getName()).setDatatype(input.getDatatype());
    long elements = 1;
    for (long d : input.getShapeList()) {
      long dim = d < 0 ? 1 : d;
      tensor.addShape(dim);
      elements *= dim;
    }
    int size = switch (input.getDatatype()) {
      case "UINT8", "INT8", "BOOL" -> 1;
      case "FP16", "BF16", "INT16", "UINT16" -> 2;
      case "FP64", "INT64", "UINT64" -> 8;
      default -> 4;
    };
    byte[] data = new byte[(int) (elements * size)];
    SplittableRandom random = new SplittableRandom(1);
    if ("FP32".equals(input.getDatatype())) {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(data).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      while (b.hasRemaining()) {
        b.putFloat((float) random.nextDouble());
      }
    } else {
      random.nextBytes(data);
    }
    return ModelInferRequest.newBuilder().setModelName(model).addInputs(tensor)
        .addRawInputContents(com.google.protobuf.ByteString.copyFrom(data)).build();
  }

  /** Runs {@code concurrency} closed loops for {@code millis}, then waits for the calls in flight. */
  static void run(GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async, String[] models,
      ModelMetadataResponse[] metadata, ModelInferRequest first, int concurrency, long millis, Recorder recorder)
      throws InterruptedException {
    AtomicBoolean running = new AtomicBoolean(true);
    AtomicLong inFlight = new AtomicLong(concurrency);
    List<Loop> loops = new ArrayList<>();
    for (int c = 0; c < concurrency; c++) {
      loops.add(new Loop(async, models, metadata, first, running, inFlight, recorder));
    }
    loops.forEach(Loop::start);
    Thread.sleep(millis);
    running.set(false);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (inFlight.get() > 0 && System.nanoTime() < end) {
      Thread.sleep(1);
    }
  }

  /** One closed loop: the chain's calls one after the other, then again. */
  static final class Loop implements StreamObserver<ModelInferResponse> {
    private final GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async;
    private final String[] models;
    private final ModelMetadataResponse[] metadata;
    private final ModelInferRequest first;
    private final AtomicBoolean running;
    private final AtomicLong inFlight;
    private final Recorder recorder;
    private int step;
    private long start;
    private ModelInferResponse last;

    Loop(GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async, String[] models, ModelMetadataResponse[] metadata,
        ModelInferRequest first, AtomicBoolean running, AtomicLong inFlight, Recorder recorder) {
      this.async = async;
      this.models = models;
      this.metadata = metadata;
      this.first = first;
      this.running = running;
      this.inFlight = inFlight;
      this.recorder = recorder;
    }

    void start() {
      step = 0;
      start = System.nanoTime();
      async.modelInfer(first, this);
    }

    @Override
    public void onNext(ModelInferResponse value) {
      last = value;
    }

    @Override
    public void onError(Throwable t) {
      System.err.println("ChainBench: " + models[step] + " failed: " + t);
      inFlight.decrementAndGet();
    }

    @Override
    public void onCompleted() {
      step++;
      if (step < models.length) { // the next model reads the previous one's first output
        ModelMetadataResponse.TensorMetadata input = metadata[step].getInputs(0);
        ModelInferResponse.InferOutputTensor out = last.getOutputs(0);
        async.modelInfer(ModelInferRequest.newBuilder().setModelName(models[step])
            .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName(input.getName())
                .setDatatype(out.getDatatype()).addAllShape(out.getShapeList()))
            .addRawInputContents(last.getRawOutputContents(0)).build(), this);
        return;
      }
      if (recorder != null) {
        recorder.record(System.nanoTime() - start);
      }
      if (running.get()) {
        start();
      } else {
        inFlight.decrementAndGet();
      }
    }
  }
}
