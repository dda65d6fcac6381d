package io.quiver.examples.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.InferStream;
import io.quiver.client.ModelMetadata;
import io.quiver.client.QuiverClient;
import io.quiver.client.QuiverException;
import io.quiver.client.Tensors;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelStatistics;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the client promises about a call, against a real Quiver: deadlines and cancellation reach the server
 * and stop queued work; streams keep at most their window in flight with a slow consumer; errors carry their
 * details; only UNAVAILABLE is retried; health, metadata, config, statistics and the repository work.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class CallBehaviourTest {
  @TempDir static Path repository;
  static LiveQuiver quiver;
  static QuiverClient client;
  /** Attempts per method, counted by a stream tracer (one stream per attempt, retries included). */
  static final ConcurrentHashMap<String, AtomicInteger> attempts = new ConcurrentHashMap<>();

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    LiveQuiver.writeSlowIdentity(repository, LiveQuiver.SLOW);
    LiveQuiver.writeSlowIdentity(repository, LiveQuiver.SLOW_STREAM);
    // Explicit mode: "simple" is in the repository but not loaded (load/unload test); "broken" fails to load,
    // so calls to it are UNAVAILABLE (the server knows the model, it cannot serve it).
    ExampleModels.writeCorruptModel(repository, "broken");
    quiver = LiveQuiver.start(LiveQuiver.options(repository)
        .withControl(ControlMode.EXPLICIT, List.of("identity_fp32", "identity_bytes", "broken", LiveQuiver.SLOW, LiveQuiver.SLOW_STREAM))
        .withHttp(-1, 0));
    client = QuiverClient.builder().target(quiver.target()).intercept(new AttemptCounter()).build();
  }

  @AfterAll
  static void stop() {
    client.close();
    quiver.close();
  }

  static InferRequest.Builder slow(String id) {
    return slow(LiveQuiver.SLOW, id);
  }

  static InferRequest.Builder slow(String model, String id) {
    return InferRequest.builder(model).id(id).input("INPUT0", Tensors.fp32(new float[16], 1, 16));
  }

  static ModelStatistics slowStats() {
    return client.modelStatistics(LiveQuiver.SLOW).getModelStats(0);
  }

  static double pending() {
    try {
      return quiver.metric("quiver_pending_requests", LiveQuiver.SLOW);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void cancellingTheFuture_cancelsTheCall_andTheServerDropsTheQueuedRequest() throws Exception {
    long failedBefore = slowStats().getInferenceStats().getFail().getCount();
    long executionsBefore = slowStats().getExecutionCount();
    CompletableFuture<InferResult> future = client.inferAsync(slow("to-cancel").build());
    LiveQuiver.await("the request is queued on the server", () -> pending() == 1);

    assertThat(future.cancel(true)).isTrue();

    LiveQuiver.await("the server dropped it", () -> pending() == 0
        && slowStats().getInferenceStats().getFail().getCount() == failedBefore + 1);
    assertThat(slowStats().getExecutionCount()).as("never executed").isEqualTo(executionsBefore);
    assertThatThrownBy(future::join).isInstanceOf(java.util.concurrent.CancellationException.class);
  }

  @Test
  void aDeadline_reachesTheServer_whichDropsTheQueuedRequest() throws Exception {
    long failedBefore = slowStats().getInferenceStats().getFail().getCount();
    long executionsBefore = slowStats().getExecutionCount();

    assertThatThrownBy(() -> client.infer(slow("with-deadline").deadline(Duration.ofMillis(300)).build()))
        .isInstanceOfSatisfying(QuiverException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.DEADLINE_EXCEEDED));

    LiveQuiver.await("the server failed it", () -> pending() == 0
        && slowStats().getInferenceStats().getFail().getCount() == failedBefore + 1);
    assertThat(slowStats().getExecutionCount()).isEqualTo(executionsBefore);
  }

  @Test
  void theTimeoutParameter_onAStream_failsThatRequestInBand_andTheStreamGoesOn() throws Exception {
    try (InferStream stream = client.openStream(4, Duration.ofMinutes(1))) {
      CompletableFuture<InferResult> timedOut = stream.send(slow(LiveQuiver.SLOW_STREAM, "queued-too-long").timeout(Duration.ofMillis(200)).build());
      ExecutionException failure = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
          () -> timedOut.get(30, TimeUnit.SECONDS));
      QuiverException error = (QuiverException) failure.getCause();
      assertThat(error.isInBand()).isTrue();
      assertThat(error.requestId()).isEqualTo("queued-too-long");
      assertThat(error.description()).contains("timed out").contains("queue");

      InferResult next = stream.send(InferRequest.builder("identity_fp32")
          .input("INPUT0", Tensors.fp32(new float[16], 1, 16)).build()).get(30, TimeUnit.SECONDS);
      assertThat(next.id()).startsWith("s");
      stream.complete();
      stream.done().get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void aSlowConsumer_holdsTheProducerBack_andAtMostTheWindowIsInFlight() throws Exception {
    int window = 4;
    int count = 120;
    String big = "x".repeat(256 * 1024); // 256 KiB per request and per answer: 30 MiB in all
    AtomicInteger sent = new AtomicInteger();
    AtomicInteger consumed = new AtomicInteger();
    AtomicInteger maxInFlight = new AtomicInteger();
    AtomicInteger maxAhead = new AtomicInteger();
    try (InferStream stream = client.openStream(window, Duration.ofMinutes(2))) {
      for (int i = 0; i < count; i++) {
        stream.send(InferRequest.builder("identity_bytes").input("INPUT0", Tensors.strings(List.of(big), 1, 1)).build())
            .thenAccept(result -> {
              maxInFlight.accumulateAndGet(stream.inFlight(), Math::max);
              maxAhead.accumulateAndGet(sent.get() - consumed.get(), Math::max);
              assertThat(result.output("OUTPUT0").toByteArrays().get(0)).hasSize(big.length());
              try {
                Thread.sleep(5); // the slow consumer
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
              consumed.incrementAndGet();
            });
        sent.incrementAndGet();
        assertThat(stream.inFlight()).isLessThanOrEqualTo(window);
      }
      stream.complete();
      stream.done().get(60, TimeUnit.SECONDS);
    }
    assertThat(consumed.get()).isEqualTo(count);
    assertThat(maxInFlight.get()).isLessThanOrEqualTo(window);
    // Without flow control the producer would have sent all 120 before the consumer handled a few.
    assertThat(maxAhead.get()).isLessThanOrEqualTo(window + 1);
  }

  @Test
  void sendFromTheDeliveringThread_withNoRoom_failsInsteadOfDeadlocking() throws Exception {
    try (InferStream stream = client.openStream(1, Duration.ofMinutes(1))) {
      CompletableFuture<Throwable> nested = new CompletableFuture<>();
      InferRequest request = InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[16], 1, 16)).build();
      stream.send(request).thenAccept(first -> {
        try {
          stream.send(slow(LiveQuiver.SLOW_STREAM, "occupies-the-window").build()); // room: the first answer was taken off the window
          stream.send(request);                              // no room, and only this thread could make some
          nested.complete(null);
        } catch (Throwable t) {
          nested.complete(t);
        }
      });
      assertThat(nested.get(30, TimeUnit.SECONDS)).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("trySend");
      assertThat(stream.trySend(request)).as("no room: trySend returns null").isNull();
    }
  }

  @Test
  void invalidInput_carriesTheBadRequestField_andIsNotRetried() {
    attempts.clear();
    assertThatThrownBy(() -> client.infer(InferRequest.builder("identity_fp32")
        .input("INPUT0", Tensors.int32(new int[16], 1, 16)).build()))
        .isInstanceOfSatisfying(QuiverException.class, e -> {
          assertThat(e.code()).isEqualTo(Status.Code.INVALID_ARGUMENT);
          assertThat(e.badRequestField()).isEqualTo("inputs[INPUT0].datatype");
          assertThat(e.description()).contains("INT32").contains("FP32");
          assertThat(e.getMessage()).startsWith("INVALID_ARGUMENT: ").contains("[field inputs[INPUT0].datatype]");
        });
    assertThat(attempts.get("ModelInfer").get()).isEqualTo(1);
  }

  @Test
  void unavailable_isRetried_upToTheAttemptLimit() {
    attempts.clear();
    assertThatThrownBy(() -> client.infer(InferRequest.builder("broken")
        .input("INPUT0", Tensors.int32(new int[16], 1, 16)).build()))
        .isInstanceOfSatisfying(QuiverException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
    assertThat(attempts.get("ModelInfer").get()).isEqualTo(3);
  }

  @Test
  void notFound_isNotRetried_andNamesTheModel() {
    attempts.clear();
    assertThatThrownBy(() -> client.modelMetadata("no_such_model"))
        .isInstanceOfSatisfying(QuiverException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.NOT_FOUND));
    assertThat(attempts.get("ModelMetadata").get()).isEqualTo(1);
  }

  @Test
  void withRetriesOff_unavailableIsAnsweredAtOnce() {
    try (QuiverClient once = QuiverClient.builder().target(quiver.target()).maxAttempts(1).intercept(new AttemptCounter()).build()) {
      attempts.clear();
      assertThatThrownBy(() -> once.modelConfig("broken"))
          .isInstanceOfSatisfying(QuiverException.class, e -> assertThat(e.code()).isEqualTo(Status.Code.UNAVAILABLE));
      assertThat(attempts.get("ModelConfig").get()).isEqualTo(1);
    }
  }

  @Test
  void healthMetadataConfigStatisticsAndRepository() {
    assertThat(client.isServerLive()).isTrue(); // (readiness: ExamplesTest; here "broken" failed to load)
    assertThat(client.isModelReady("identity_fp32")).isTrue();
    assertThat(client.isModelReady("simple")).isFalse();
    assertThat(client.isModelReady("no_such_model")).isFalse();
    assertThat(client.serverMetadata().getName()).isEqualTo("quiver");

    ModelMetadata metadata = client.modelMetadata("identity_fp32");
    assertThat(metadata.inputs()).singleElement().satisfies(spec -> {
      assertThat(spec.name()).isEqualTo("INPUT0");
      assertThat(spec.datatype()).isEqualTo(io.quiver.client.DataType.FP32);
      assertThat(spec.shape()).containsExactly(-1L, 16L);
    });
    InferRequest wrongShape = InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[8], 1, 8)).build();
    assertThatThrownBy(() -> metadata.validate(wrongShape)).isInstanceOfSatisfying(QuiverException.class, e -> {
      assertThat(e.code()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(e.badRequestField()).isEqualTo("inputs[INPUT0].shape");
    });
    metadata.validate(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[32], 2, 16)).build());

    assertThat(client.modelConfig("identity_fp32").getMaxBatchSize()).isEqualTo(256);
    assertThat(client.modelStatistics("identity_fp32").getModelStatsList()).extracting(ModelStatistics::getName)
        .containsExactly("identity_fp32");
    assertThat(client.repositoryIndex(false)).extracting(m -> m.getName()).contains("simple", "identity_fp32");

    client.loadModel("simple");
    assertThat(client.isModelReady("simple")).isTrue();
    client.unloadModel("simple");
    assertThat(client.isModelReady("simple")).isFalse();
  }

  /** Counts attempts per method: gRPC creates one client stream tracer per attempt, retries included. */
  static final class AttemptCounter implements ClientInterceptor {
    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      String name = method.getBareMethodName();
      return next.newCall(method, options.withStreamTracerFactory(new ClientStreamTracer.Factory() {
        @Override
        public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
          attempts.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
          return new ClientStreamTracer() {};
        }
      }));
    }
  }
}
