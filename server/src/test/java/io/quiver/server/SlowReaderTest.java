package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.core.BytesElements;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import io.quiver.transport.ConnectionOptions;
import java.io.OutputStream;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A client that never reads its answers cannot hold the server's memory. One gRPC connection, from a child
 * JVM (so that the client's own buffers are not counted as the server's), opens {@value #STREAMS}
 * ModelStreamInfer streams, each sending {@value #WINDOW} 1 MiB requests, and {@value #UNARY} unary calls
 * to identity_bytes, and never reads a byte of an answer; a REST connection pipelines
 * {@value #REST_REQUESTS} such requests and never reads either. Unbounded, the server would hold over
 * 100 MiB of answers; with the connection's bound (8 MiB here) the memory it holds for the attacker (heap
 * after GC plus direct memory, during the attack minus after the attacker left) stays under
 * {@value #BOUND_MIB} MiB, and a well-behaved client on other connections keeps getting
 * correct answers (gRPC inference of 1 MiB and 64 bytes, REST readiness). The well-behaved client's p99
 * before and during the attack is printed, not asserted: speed is the benchmarks' business on a shared
 * machine.
 */
class SlowReaderTest {
  static final int STREAMS = 40;
  static final int UNARY = 40;
  static final int REST_REQUESTS = 12;
  static final int WINDOW = 2;
  static final int ELEMENT = 1 << 20;
  static final long PER_CONNECTION = 8L << 20;
  /**
   * What the server may hold for the attacker: the 8 MiB answer bound plus one answer, the REST
   * connection's water mark, answer and held requests, and the request bytes the client sent within
   * HTTP/2 flow control; measured 27-41 MiB. Unbounded, the answers alone are 120 MiB.
   */
  static final long BOUND_MIB = 64;
  /** Memory not given back after the attacker left (a leak guard): the 100 MiB the growth was held to before. */
  static final long RETAINED_BOUND_MIB = 100;
  static final int PROBES = 300;

  @TempDir Path repository;

  static ModelInferRequest bigRequest() {
    byte[] element = new byte[ELEMENT];
    Arrays.fill(element, (byte) 'q');
    ByteBuffer data = BytesElements.encode(List.of(element));
    return ModelInferRequest.newBuilder().setModelName("identity_bytes")
        .addInputs(Tensors.input("INPUT0", "BYTES", 1, 1)).addRawInputContents(ByteString.copyFrom(data)).build();
  }

  /** Heap in use after a full GC plus direct buffers (the JDK's count and Netty's own, when it keeps one). */
  static long memory() throws InterruptedException {
    long best = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(50);
      long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      long direct = 0;
      for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
        if (pool.getName().equals("direct")) {
          direct += pool.getMemoryUsed();
        }
      }
      long netty = io.netty.util.internal.PlatformDependent.usedDirectMemory();
      best = Math.min(best, heap + direct + Math.max(0, netty));
    }
    return best;
  }

  /** p99 of a well-behaved client: sequential small inferences over gRPC and readiness checks over REST. */
  static long[] p99(ServerFixture fixture, HttpClient http) throws Exception {
    ModelInferRequest small = ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(Tensors.input("INPUT0", "FP32", 1, 16)).addRawInputContents(Tensors.floats(new float[16])).build();
    long[] grpc = new long[PROBES];
    long[] rest = new long[PROBES];
    HttpRequest ready = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + "/v2/health/ready"))
        .build();
    for (int i = 0; i < PROBES; i++) {
      long t0 = System.nanoTime();
      assertThat(fixture.stub().withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(small).getRawOutputContents(0))
          .isEqualTo(small.getRawInputContents(0));
      grpc[i] = System.nanoTime() - t0;
      t0 = System.nanoTime();
      assertThat(http.send(ready, HttpResponse.BodyHandlers.discarding()).statusCode()).isEqualTo(200);
      rest[i] = System.nanoTime() - t0;
    }
    Arrays.sort(grpc);
    Arrays.sort(rest);
    return new long[] {grpc[PROBES * 99 / 100], rest[PROBES * 99 / 100]};
  }

  @Test
  void aClientThatNeverReads_holdsBoundedMemory_andOthersAreStillServed() throws Exception {
    ExampleModels.writeIdentityBytes(repository);
    ExampleModels.writeIdentityFp32(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 2_000, 0, -1, 8 << 20, false)
        .withConnections(ConnectionOptions.defaults().withAnswerBounds(PER_CONNECTION, 64L << 20, WINDOW));
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try (ServerFixture fixture = new ServerFixture(options)) {
      ModelInferRequest big = bigRequest();
      // Warm both paths (JIT, pools, the models' first runs) before measuring anything.
      fixture.stub().modelInfer(big);
      long[] baseline = p99(fixture, http);
      long before = memory();

      Process attacker = DeafClient.start(fixture.server.port());
      Socket restAttacker = new Socket("127.0.0.1", fixture.server.httpPort());
      long during;
      try {
        Thread restSender = new Thread(() -> pipeline(restAttacker), "rest-attacker");
        restSender.setDaemon(true);
        restSender.start();

        // Let the server read and answer what it will: (2 x streams + unary) answers of 1 MiB wait unread.
        // Then wait (bounded) until the attack is in its steady state: both processes nearly idle.
        Thread.sleep(3_000);
        awaitSettled(fixture, attacker);
        assertThat(attacker.isAlive()).as("the deaf client still holds its connection").isTrue();
        during = memory();
        long[] attacked = p99(fixture, http);
        long grewMib = (during - before) >> 20;
        System.out.printf("slow reader: memory %d -> %d MiB (+%d; unbounded it would hold > %d MiB of answers);"
            + " p99 gRPC %d -> %d us, REST %d -> %d us (printed, not asserted)%n", before >> 20, during >> 20, grewMib,
            (2L * STREAMS + UNARY) * ELEMENT >> 20, baseline[0] / 1000, attacked[0] / 1000,
            baseline[1] / 1000, attacked[1] / 1000);
        // The assertion is on what the server lets go when the attacker leaves (below), not on the growth:
        // the growth also counts memory not given back after the peak (41-64 MiB seen, most likely the
        // capacity of Netty's buffer pools), which is there before and after the attacker leaves.
        // The server still answers big requests to a client that reads.
        assertThat(fixture.stub().withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(big).getRawOutputContents(0))
            .isEqualTo(big.getRawInputContents(0));
      } finally {
        attacker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        restAttacker.close();
      }
      // The connection's answers were dropped with it: memory comes back.
      Thread.sleep(500); // the server sees both connections close
      long after = memory();
      long heldMib = (during - after) >> 20;
      System.out.printf("slow reader: after the client left %d MiB: %d MiB were held for it (bound %d), %d MiB not"
          + " given back%n", after >> 20, heldMib, BOUND_MIB, (after - before) >> 20);
      assertThat(heldMib).as("memory (MiB) the server held for a client that never read, freed when it left")
          .isLessThan(BOUND_MIB);
      // And nothing piles up for good: what was not given back stays under the bound the growth had before
      // (100 MiB; measured 30-70 MiB, the buffer pools' capacity after the peak by all appearances).
      assertThat((after - before) >> 20).as("memory (MiB) not given back after the client left")
          .isLessThan(RETAINED_BOUND_MIB);
    }
  }

  /**
   * Waits (bounded) until the model has nothing in flight three checks in a row, then until the processes
   * are quiet (below). Not an assertion: it only waits.
   */
  static void awaitSettled(ServerFixture fixture, Process attacker) throws InterruptedException {
    // Every request the server read has been worked off (answered, or its answer dropped): what is left
    // is what the server holds for the deaf client, not requests still in the model's queue.
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    int idleChecks = 0;
    while (idleChecks < 3 && System.nanoTime() < until) {
      io.quiver.lifecycle.LoadedVersion v = fixture.server.models().acquire("identity_bytes", "");
      try {
        idleChecks = v.scheduler().inFlightRequests() == 0 ? idleChecks + 1 : 0;
      } finally {
        v.release();
      }
      Thread.sleep(200);
    }
    awaitQuiet(attacker);
  }

  /**
   * Waits, at most 30 s, until this JVM and the attacker's together use under a third of a core over
   * half a second: the server has read, answered and dropped what it will, and the numbers that follow
   * describe the attack's steady state, not its first seconds. Not an assertion: it only waits.
   */
  static void awaitQuiet(Process attacker) throws InterruptedException {
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < until) {
      long cpu0 = os.getProcessCpuTime() + childCpuNanos(attacker);
      long t0 = System.nanoTime();
      Thread.sleep(500);
      long used = os.getProcessCpuTime() + childCpuNanos(attacker) - cpu0;
      if (used * 3 < System.nanoTime() - t0) {
        return;
      }
    }
  }

  private static long childCpuNanos(Process process) {
    return process.info().totalCpuDuration().map(java.time.Duration::toNanos).orElse(0L);
  }

  /**
   * The deaf gRPC client, in a child JVM: opens the streams and calls on one connection with a small
   * window, never asks for an answer, prints "sent" and waits to be killed.
   */
  static final class DeafClient {
    static Process start(int port) throws Exception {
      String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
      Process process = new ProcessBuilder(javaBin, "-Xmx512m", "-cp", classpath, DeafClient.class.getName(),
          String.valueOf(port)).redirectErrorStream(true).start();
      java.io.BufferedReader out = new java.io.BufferedReader(
          new java.io.InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      List<String> lines = java.util.Collections.synchronizedList(new ArrayList<>());
      java.util.concurrent.CompletableFuture<Boolean> sent = new java.util.concurrent.CompletableFuture<>();
      Thread reader = new Thread(() -> {
        try {
          String line;
          while ((line = out.readLine()) != null) {
            lines.add(line);
            if (line.equals("sent")) {
              sent.complete(true);
            }
          }
        } catch (java.io.IOException e) {
          // killed
        }
        sent.complete(false);
      }, "deaf-client-output");
      reader.setDaemon(true);
      reader.start();
      if (!sent.get(120, TimeUnit.SECONDS)) {
        throw new AssertionError("the deaf client exited: " + lines);
      }
      return process;
    }

    public static void main(String[] args) throws Exception {
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", Integer.parseInt(args[0])).usePlaintext()
          .flowControlWindow(65_535).maxInboundMessageSize(64 << 20).build();
      ModelInferRequest big = bigRequest();
      List<ClientCall<?, ?>> calls = new ArrayList<>();
      ClientCall.Listener<Object> deaf = new ClientCall.Listener<>() {};
      for (int s = 0; s < STREAMS; s++) {
        ClientCall<ModelInferRequest, ModelStreamInferResponse> stream = channel.newCall(
            GRPCInferenceServiceGrpc.getModelStreamInferMethod(), CallOptions.DEFAULT);
        stream.start(deafListener(deaf), new Metadata());
        for (int k = 0; k < WINDOW; k++) {
          stream.sendMessage(big); // never stream.request(n): answers are never read
        }
        calls.add(stream);
      }
      for (int u = 0; u < UNARY; u++) {
        ClientCall<ModelInferRequest, ModelInferResponse> unary = channel.newCall(
            GRPCInferenceServiceGrpc.getModelInferMethod(), CallOptions.DEFAULT);
        unary.start(deafListener(deaf), new Metadata());
        unary.sendMessage(big);
        unary.halfClose();
        calls.add(unary);
      }
      System.out.println("sent");
      System.out.flush();
      Thread.sleep(TimeUnit.MINUTES.toMillis(10)); // killed by the test long before
      System.out.println(calls.size());
    }

    @SuppressWarnings("unchecked")
    private static <T> ClientCall.Listener<T> deafListener(ClientCall.Listener<Object> deaf) {
      return (ClientCall.Listener<T>) (ClientCall.Listener<?>) deaf;
    }
  }

  /** REST binary requests for identity_bytes, pipelined without reading; blocks once the socket is full. */
  static void pipeline(Socket socket) {
    String header = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"BYTES\",\"shape\":[1,1],"
        + "\"parameters\":{\"binary_data_size\":" + (4 + ELEMENT) + "}}],\"parameters\":{\"binary_data_output\":true}}";
    byte[] json = header.getBytes(StandardCharsets.US_ASCII);
    byte[] element = new byte[4 + ELEMENT];
    ByteBuffer.wrap(element).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(ELEMENT);
    Arrays.fill(element, 4, element.length, (byte) 'r');
    String head = "POST /v2/models/identity_bytes/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: "
        + json.length + "\r\nContent-Length: " + (json.length + element.length) + "\r\n\r\n";
    try {
      OutputStream out = socket.getOutputStream();
      for (int i = 0; i < REST_REQUESTS; i++) {
        out.write(head.getBytes(StandardCharsets.US_ASCII));
        out.write(json);
        out.write(element);
        out.flush();
      }
    } catch (java.io.IOException e) {
      // the server closed it, or the test did: done
    }
  }
}
