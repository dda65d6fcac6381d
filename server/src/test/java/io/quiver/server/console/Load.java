package io.quiver.server.console;

import com.google.protobuf.ByteString;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * A small closed-loop load generator for the live-view tests: a few threads sending FP32[1,16] requests
 * over gRPC, each with its own id, until stopped or {@link #MAX_MILLIS} have passed (bounded by design).
 */
final class Load implements AutoCloseable {
  static final long MAX_MILLIS = 60_000;
  private final AtomicBoolean stop = new AtomicBoolean();
  private final AtomicLong sent = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final List<Thread> threads = new ArrayList<>();

  Load(Supplier<GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub> stubs, String model, int threadCount) {
    ByteBuffer bytes = ByteBuffer.allocate(16 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      bytes.putFloat(i);
    }
    ByteString raw = ByteString.copyFrom(bytes.flip());
    long deadline = System.currentTimeMillis() + MAX_MILLIS;
    for (int t = 0; t < threadCount; t++) {
      int thread = t;
      Thread worker = new Thread(() -> {
        long n = 0;
        while (!stop.get() && System.currentTimeMillis() < deadline) {
          try {
            stubs.get().modelInfer(ModelInferRequest.newBuilder().setModelName(model).setId("load-" + thread + "-" + n++)
                .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
                    .addShape(1).addShape(16))
                .addRawInputContents(raw).build());
            sent.incrementAndGet();
          } catch (RuntimeException e) {
            failed.incrementAndGet();
          }
        }
      }, "console-test-load-" + t);
      worker.setDaemon(true);
      worker.start();
      threads.add(worker);
    }
  }

  long sent() {
    return sent.get();
  }

  long failed() {
    return failed.get();
  }

  @Override
  public void close() throws InterruptedException {
    stop.set(true);
    for (Thread t : threads) {
      t.join(10_000);
    }
  }
}
