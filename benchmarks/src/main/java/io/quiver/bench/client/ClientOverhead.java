package io.quiver.bench.client;

import com.google.protobuf.UnsafeByteOperations;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.bench.echo.EchoServer;
import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensors;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Client CPU per call: the typed client against plain generated stubs, over the same channel, in the same
 * JVM, interleaved, against a bare gRPC echo server in another process (started here unless {@code --url}
 * names one). Each side builds its request from a {@code float[]} and reads the answer into a
 * {@code float[]}; the stub side does it the careful way (bulk little-endian put, wrapped without a second
 * copy; a deadline per call, as the client sets its default one). CPU is this process's (every thread: the
 * caller, gRPC's executor, the event loop, GC) divided by the calls completed.
 *
 * <pre>
 * java -cp 'benchmarks/target/quiver-benchmarks.jar:benchmarks/target/lib/*' io.quiver.bench.client.ClientOverhead \
 *     [--url HOST:PORT] [--elements 16,784] [--concurrency 1,32] [--calls 20000] [--repeats 5]
 * </pre>
 *
 * Prints one line per measured phase and a summary (median and spread of client/stub ratios per case).
 */
public final class ClientOverhead {
  private ClientOverhead() {}

  interface Side {
    /** Runs {@code calls} calls with {@code concurrency} in flight; blocks until all answered. */
    void run(int calls, int concurrency) throws Exception;
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> options = new LinkedHashMap<>(Map.of("elements", "16,784", "concurrency", "1,32",
        "calls", "20000", "repeats", "5", "url", ""));
    for (int i = 0; i + 1 < args.length; i += 2) {
      options.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    int calls = Integer.parseInt(options.get("calls"));
    int repeats = Integer.parseInt(options.get("repeats"));
    Process echo = null;
    String url = options.get("url");
    if (url.isEmpty()) {
      int port;
      try (ServerSocket probe = new ServerSocket(0)) {
        port = probe.getLocalPort();
      }
      echo = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xms256m", "-Xmx512m",
          "-cp", System.getProperty("java.class.path"), EchoServer.class.getName(), "--grpc-port", Integer.toString(port),
          "--host", "127.0.0.1", "--event-loop-threads", "1", "--input", "INPUT0:FP32:-1,-1")
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      url = "127.0.0.1:" + port;
      Process child = echo;
      Runtime.getRuntime().addShutdownHook(new Thread(child::destroy)); // also when this JVM is interrupted
    }
    System.out.printf(Locale.ROOT, "# client overhead: url=%s calls=%d repeats=%d, JDK %s, %d CPUs, load average at start: %s%n",
        url, calls, repeats, System.getProperty("java.version"), Runtime.getRuntime().availableProcessors(), loadAverage());
    int colon = url.lastIndexOf(':');
    ManagedChannel channel = NettyChannelBuilder.forAddress(url.substring(0, colon), Integer.parseInt(url.substring(colon + 1)))
        .usePlaintext().maxInboundMessageSize(256 << 20).build();
    try (QuiverClient client = QuiverClient.builder().channel(channel).build()) {
      waitForServer(client);
      Map<String, List<Double>> ratios = new LinkedHashMap<>();
      for (String e : options.get("elements").split(",")) {
        int elements = Integer.parseInt(e);
        for (String c : options.get("concurrency").split(",")) {
          int concurrency = Integer.parseInt(c);
          for (boolean async : new boolean[] {false, true}) {
            Side stub = async ? stubAsync(channel, elements) : stubBlocking(channel, elements);
            Side typed = async ? clientAsync(client, elements) : clientBlocking(client, elements);
            String key = String.format(Locale.ROOT, "%s FP32[%d] concurrency %d", async ? "async" : "blocking", elements, concurrency);
            stub.run(calls / 2, concurrency); // warm-up, both sides
            typed.run(calls / 2, concurrency);
            for (int r = 0; r < repeats; r++) {
              boolean stubFirst = r % 2 == 0; // alternate which side goes first
              double[] stubCost = measure(stubFirst ? stub : typed, calls, concurrency);
              double[] typedCost = measure(stubFirst ? typed : stub, calls, concurrency);
              if (!stubFirst) {
                double[] t = stubCost;
                stubCost = typedCost;
                typedCost = t;
              }
              double ratio = typedCost[0] / stubCost[0];
              ratios.computeIfAbsent(key, k -> new ArrayList<>()).add(ratio);
              System.out.printf(Locale.ROOT, "%s repeat %d: stub %.2f us CPU/call (%.0f calls/s), client %.2f us CPU/call (%.0f calls/s), client/stub %.3f%n",
                  key, r + 1, stubCost[0], stubCost[1], typedCost[0], typedCost[1], ratio);
            }
          }
        }
      }
      System.out.println();
      System.out.println("| case | client CPU / stub CPU per call: median (min-max, n) |");
      System.out.println("|---|---|");
      for (Map.Entry<String, List<Double>> entry : ratios.entrySet()) {
        double[] sorted = entry.getValue().stream().mapToDouble(Double::doubleValue).sorted().toArray();
        System.out.printf(Locale.ROOT, "| %s | %.3f (%.3f-%.3f, %d) |%n", entry.getKey(), median(sorted), sorted[0],
            sorted[sorted.length - 1], sorted.length);
      }
      System.out.printf(Locale.ROOT, "%n# load average at end: %s%n", loadAverage());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      if (echo != null) {
        echo.destroy();
        echo.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  /** {CPU µs per call, calls per second}. */
  static double[] measure(Side side, int calls, int concurrency) throws Exception {
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    System.gc();
    long cpu0 = os.getProcessCpuTime();
    long t0 = System.nanoTime();
    side.run(calls, concurrency);
    long wall = System.nanoTime() - t0;
    long cpu = os.getProcessCpuTime() - cpu0;
    return new double[] {cpu / 1000.0 / calls, calls * 1e9 / wall};
  }

  static float[] values(int elements) {
    float[] v = new float[elements];
    for (int i = 0; i < elements; i++) {
      v[i] = i * 0.5f;
    }
    return v;
  }

  static ModelInferRequest byHand(float[] values) {
    byte[] bytes = new byte[values.length * 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(values);
    return ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(values.length))
        .addRawInputContents(UnsafeByteOperations.unsafeWrap(bytes)).build();
  }

  static float[] readByHand(ModelInferResponse response) {
    float[] out = new float[response.getOutputs(0).getShape(1) > 0 ? (int) response.getOutputs(0).getShape(1) : 0];
    response.getRawOutputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  static InferRequest typed(float[] values) {
    return InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(values, 1, values.length)).build();
  }

  static Side stubBlocking(ManagedChannel channel, int elements) {
    float[] values = values(elements);
    return (calls, concurrency) -> threads(calls, concurrency, () -> {
      ModelInferResponse r = GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
          .modelInfer(byHand(values));
      check(readByHand(r), elements);
    });
  }

  static Side clientBlocking(QuiverClient client, int elements) {
    float[] values = values(elements);
    return (calls, concurrency) -> threads(calls, concurrency,
        () -> check(client.infer(typed(values)).output("OUTPUT0").toFloatArray(), elements));
  }

  static Side stubAsync(ManagedChannel channel, int elements) {
    float[] values = values(elements);
    return (calls, concurrency) -> {
      AtomicInteger left = new AtomicInteger(calls);
      CountDownLatch done = new CountDownLatch(calls);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Runnable[] next = new Runnable[1];
      next[0] = () -> {
        if (left.getAndDecrement() <= 0) {
          return;
        }
        GRPCInferenceServiceGrpc.newStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
            .modelInfer(byHand(values), new StreamObserver<>() {
              @Override
              public void onNext(ModelInferResponse r) {
                check(readByHand(r), elements);
              }

              @Override
              public void onError(Throwable t) {
                failure.set(t);
                done.countDown();
              }

              @Override
              public void onCompleted() {
                done.countDown();
                next[0].run();
              }
            });
      };
      for (int i = 0; i < concurrency; i++) {
        next[0].run();
      }
      await(done, failure);
    };
  }

  static Side clientAsync(QuiverClient client, int elements) {
    float[] values = values(elements);
    return (calls, concurrency) -> {
      AtomicInteger left = new AtomicInteger(calls);
      CountDownLatch done = new CountDownLatch(calls);
      AtomicReference<Throwable> failure = new AtomicReference<>();
      Runnable[] next = new Runnable[1];
      next[0] = () -> {
        if (left.getAndDecrement() <= 0) {
          return;
        }
        client.inferAsync(typed(values)).whenComplete((InferResult r, Throwable t) -> {
          if (t != null) {
            failure.set(t);
          } else {
            check(r.output("OUTPUT0").toFloatArray(), elements);
          }
          done.countDown();
          if (t == null) {
            next[0].run();
          }
        });
      };
      for (int i = 0; i < concurrency; i++) {
        next[0].run();
      }
      await(done, failure);
    };
  }

  interface Call {
    void run() throws Exception;
  }

  static void threads(int calls, int concurrency, Call call) throws Exception {
    AtomicInteger left = new AtomicInteger(calls);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < concurrency; i++) {
      Thread t = new Thread(() -> {
        try {
          while (left.getAndDecrement() > 0) {
            call.run();
          }
        } catch (Throwable e) {
          failure.set(e);
        }
      }, "overhead-" + i);
      t.start();
      threads.add(t);
    }
    for (Thread t : threads) {
      t.join();
    }
    if (failure.get() != null) {
      throw new IllegalStateException("a call failed", failure.get());
    }
  }

  static void await(CountDownLatch done, AtomicReference<Throwable> failure) throws InterruptedException {
    if (!done.await(10, TimeUnit.MINUTES) || failure.get() != null) {
      throw new IllegalStateException("calls failed or did not finish", failure.get());
    }
  }

  static void check(float[] out, int elements) {
    if (out.length != elements) {
      throw new IllegalStateException("expected " + elements + " floats, got " + out.length);
    }
  }

  static void waitForServer(QuiverClient client) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      try {
        if (client.isServerLive()) {
          return;
        }
      } catch (RuntimeException e) {
        // not up yet
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("the server did not come up");
  }

  static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg"), StandardCharsets.US_ASCII).trim();
    } catch (IOException e) {
      return "unknown";
    }
  }

  static String describe(double[] values) {
    return Arrays.toString(values);
  }
}
