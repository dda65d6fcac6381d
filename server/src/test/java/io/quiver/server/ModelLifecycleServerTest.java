package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.toFloats;
import static io.quiver.server.Tensors.toInts;
import static io.quiver.server.Tensors.ints;
import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.TensorProto;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.quiver.examples.ExampleModels;
import io.quiver.examples.OnnxGraphBuilder;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The lifecycle as the server runs it, without a control port: poll mode, Triton's repository API
 * writing the desired state, reloads of changed files, and lazy mode with a memory budget over gRPC.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ModelLifecycleServerTest {
  @TempDir Path repository;
  @TempDir Path cache;

  /** gRPC and metrics on, REST and the control plane off, polling every 100 ms. */
  private ServerOptions options(ControlMode mode, List<String> startup) {
    return new ServerOptions("127.0.0.1", 0, repository, mode, startup, ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000,
        ServerOptions.DISABLED, 0, 1024 * 1024, false)
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(100).withModelCacheDir(cache));
  }

  private static boolean ready(ServerFixture fixture, String model) {
    return fixture.stub().modelReady(ModelReadyRequest.newBuilder().setName(model).build()).getReady();
  }

  private static void await(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(20);
    }
  }

  private static ModelInferRequest simpleRequest(int a, int b) {
    int[] x = new int[16];
    int[] y = new int[16];
    java.util.Arrays.fill(x, a);
    java.util.Arrays.fill(y, b);
    return ModelInferRequest.newBuilder().setModelName("simple")
        .addInputs(input("INPUT0", "INT32", 1, 16)).addInputs(input("INPUT1", "INT32", 1, 16))
        .addRawInputContents(ints(x)).addRawInputContents(ints(y)).build();
  }

  @Test
  void pollMode_withoutAControlPort_followsTheRepository() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.POLL, List.of()))) {
      assertThat(fixture.server.controlPort()).isEqualTo(-1);
      assertThat(fixture.server.models().readyVersions("simple")).containsExactly(1L);
      Files.createDirectories(repository.resolve("simple/2"));
      Files.copy(repository.resolve("simple/1/model.onnx"), repository.resolve("simple/2/model.onnx"));
      await("the poller serves version 2", () -> fixture.server.models().readyVersions("simple").equals(List.of(2L)));
      ExampleModels.writeIdentityFp32(repository);
      await("the poller loads a new model", () -> ready(fixture, "identity_fp32"));
    }
  }

  @Test
  void tritonUnload_isRecordedInTheDesiredState_soThePollerDoesNotBringTheModelBack() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.POLL, List.of()))) {
      fixture.stub().repositoryModelUnload(RepositoryModelUnloadRequest.newBuilder().setModelName("simple").build());
      assertThat(ready(fixture, "simple")).isFalse();
      assertThat(Files.readString(repository.resolve(".quiver-desired-state.json"))).contains("simple");
      // A new version of the unloaded model and a new model appear: the poller loads the new model
      // (so it has looked at the repository since the unload), and leaves the unloaded one out.
      Files.createDirectories(repository.resolve("simple/2"));
      Files.copy(repository.resolve("simple/1/model.onnx"), repository.resolve("simple/2/model.onnx"));
      ExampleModels.writeIdentityFp32(repository);
      await("the poller loads the new model", () -> ready(fixture, "identity_fp32"));
      fixture.server.lifecycle().poller().pollOnce(); // after the pass under way (it holds the poller's lock)
      assertThat(ready(fixture, "simple")).as("an operator's unload survives the poller").isFalse();
      assertThat(fixture.server.models().isLoaded("simple")).isFalse();

      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("simple").build());
      assertThat(fixture.server.models().readyVersions("simple")).containsExactly(2L);
      assertThat(fixture.server.lifecycle().desiredState().current().getModelsOrThrow("simple").getLoaded()).isTrue();
    }
    // A restart converges to the same state: loaded again.
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.POLL, List.of()))) {
      assertThat(ready(fixture, "simple")).isTrue();
    }
  }

  @Test
  void tritonUnload_survivesARestart() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.NONE, List.of()))) {
      fixture.stub().repositoryModelUnload(RepositoryModelUnloadRequest.newBuilder().setModelName("simple").build());
    }
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.NONE, List.of()))) {
      assertThat(ready(fixture, "simple")).as("NONE mode loads everything but what an operator unloaded").isFalse();
    }
  }

  /** {@code simple} with OUTPUT0 = INPUT0 × INPUT1 instead of the sum: the same signature, another answer. */
  private static void writeSimpleTimes(Path versionDir) throws Exception {
    new OnnxGraphBuilder("simple")
        .input("INPUT0", TensorProto.DataType.INT32, -1, 16)
        .input("INPUT1", TensorProto.DataType.INT32, -1, 16)
        .output("OUTPUT0", TensorProto.DataType.INT32, -1, 16)
        .output("OUTPUT1", TensorProto.DataType.INT32, -1, 16)
        .node("Mul", new String[] {"INPUT0", "INPUT1"}, new String[] {"OUTPUT0"})
        .node("Sub", new String[] {"INPUT0", "INPUT1"}, new String[] {"OUTPUT1"})
        .write(versionDir.resolve("model.onnx"));
  }

  @Test
  void loadOfALoadedModel_whoseFileChanged_swapsToTheNewContent_andAnUnchangedOneIsKept() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.NONE, List.of()))) {
      assertThat(toInts(fixture.stub().modelInfer(simpleRequest(3, 4)).getRawOutputContents(0))[0]).isEqualTo(7);
      var loadedBefore = fixture.server.models().acquire("simple", "");
      loadedBefore.release();

      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("simple").build());
      var unchanged = fixture.server.models().acquire("simple", "");
      unchanged.release();
      assertThat(unchanged).as("same files: the loaded version is kept").isSameAs(loadedBefore);

      // The model file is replaced under the same version number (as an operator copying a retrained model).
      Path staged = Files.createTempDirectory(cache, "new");
      writeSimpleTimes(staged);
      Files.move(staged.resolve("model.onnx"), repository.resolve("simple/1/model.onnx"),
          java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      assertThat(toInts(fixture.stub().modelInfer(simpleRequest(3, 4)).getRawOutputContents(0))[0])
          .as("nothing changes before the load").isEqualTo(7);

      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("simple").build());
      assertThat(toInts(fixture.stub().modelInfer(simpleRequest(3, 4)).getRawOutputContents(0))[0])
          .as("the reloaded model answers").isEqualTo(12);
      assertThat(fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsList())
          .filteredOn(m -> m.getName().equals("simple")).extracting(m -> m.getVersion() + ":" + m.getState())
          .containsExactly("1:READY");
    }
  }

  private static ModelInferRequest offsetRequest(String model, float x) {
    return ModelInferRequest.newBuilder().setModelName(model).addInputs(input("INPUT0", "FP32", 1, 4))
        .addRawInputContents(floats(x, x + 1, x + 2, x + 3)).addOutputs(
            ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("OUTPUT0")).build();
  }

  /**
   * Lazy mode over gRPC: sixty ONNX models of 2.3 MB of weights each, each answering input + its own
   * offset, under a budget that holds a handful. A random stream from many concurrent calls: every answer correct for
   * its model, nothing fails, the accounted memory stays within the budget, and the lifecycle's
   * metrics and the repository index say what happened.
   */
  @Test
  void lazyMode_manyOnnxModelsUnderABudget_overGrpc() throws Exception {
    int models = 60;
    long budget = 20L << 20;
    for (int i = 0; i < models; i++) {
      ExampleModels.writeOffsetModel(repository, String.format("offset_%03d", i), i, 64 * 1024);
    }
    ServerOptions lazy = options(ControlMode.LAZY, List.of()).withLifecycle(ServerOptions.Lifecycle.defaults()
        .withMemoryBudget(budget, List.of("offset_000")).withPollIntervalMillis(100).withModelCacheDir(cache));
    try (ServerFixture fixture = new ServerFixture(lazy)) {
      assertThat(ready(fixture, "offset_000")).as("pinned: loaded at start").isTrue();
      assertThat(ready(fixture, "offset_050")).isFalse();
      assertThat(fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsList())
          .filteredOn(m -> m.getName().equals("offset_050")).extracting(m -> m.getReason())
          .containsExactly("not resident; loads on its first request");

      int calls = 400;
      Semaphore inFlight = new Semaphore(24);
      CountDownLatch done = new CountDownLatch(calls);
      AtomicLong ok = new AtomicLong();
      ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
      SplittableRandom random = new SplittableRandom(11);
      for (int c = 0; c < calls; c++) {
        int m = (int) Math.min(models - 1, Math.floor(Math.pow(models, random.nextDouble())) - 1);
        float x = random.nextInt(1000);
        inFlight.acquire();
        fixture.async.withDeadlineAfter(60, TimeUnit.SECONDS).modelInfer(offsetRequest(String.format("offset_%03d", m), x),
            new StreamObserver<>() {
              @Override
              public void onNext(ModelInferResponse value) {
                float[] out = toFloats(value.getRawOutputContents(0));
                if (out[0] == x + m && out[3] == x + 3 + m) {
                  ok.incrementAndGet();
                } else {
                  problems.add("offset_" + m + " answered " + java.util.Arrays.toString(out) + " to " + x);
                }
              }

              @Override
              public void onError(Throwable t) {
                problems.add("offset_" + m + ": " + Status.fromThrowable(t));
                inFlight.release();
                done.countDown();
              }

              @Override
              public void onCompleted() {
                inFlight.release();
                done.countDown();
              }
            });
      }
      assertThat(done.await(90, TimeUnit.SECONDS)).isTrue();
      assertThat(problems).as("failed or wrong answers").isEmpty();
      assertThat(ok.get()).isEqualTo(calls);
      assertThat(fixture.server.models().memoryUsedBytes()).isLessThanOrEqualTo(budget);
      assertThat(ready(fixture, "offset_000")).as("the pinned model was never evicted").isTrue();

      String metrics = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + fixture.server.metricsPort() + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString()).body();
      assertThat(metrics).contains("quiver_model_ondemand_loads_total{model=\"offset_001\",outcome=\"ok\"}")
          .contains("quiver_model_evictions_total{").contains("cause=\"memory_budget\"")
          .contains("quiver_model_cold_start_seconds_count").contains("quiver_model_memory_budget_bytes 2.097152E7")
          .contains("quiver_model_memory_used_bytes").contains("quiver_model_memory_bytes{model=\"offset_000\",version=\"1\"}")
          .doesNotContain("quiver_model_evictions_total{cause=\"memory_budget\",model=\"offset_000\"}");
      assertThat(fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsList())
          .anyMatch(m -> m.getReason().startsWith("evicted at "));
    }
  }

  @Test
  void lazyMode_aRequestForAnUnknownModel_isNotFound_andStartsNoLoad() throws Exception {
    ExampleModels.writeSimple(repository);
    try (ServerFixture fixture = new ServerFixture(options(ControlMode.LAZY, List.of()))) {
      try {
        fixture.stub().modelInfer(offsetRequest("nope", 1));
        throw new AssertionError("expected NOT_FOUND");
      } catch (StatusRuntimeException e) {
        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
      }
      assertThat(fixture.server.models().waitingRequests()).isZero();
      assertThat(ready(fixture, "simple")).isFalse(); // it loads on its first request
      try {
        fixture.stub().modelMetadata(io.quiver.proto.inference.ModelMetadataRequest.newBuilder().setName("simple").build());
        throw new AssertionError("expected UNAVAILABLE");
      } catch (StatusRuntimeException e) {
        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(e.getStatus().getDescription()).contains("not resident; it loads on its first inference request");
      }
      assertThat(toInts(fixture.stub().modelInfer(simpleRequest(2, 3)).getRawOutputContents(0))[0]).isEqualTo(5);
    }
  }

  @Test
  void lazyMode_overRest_theFirstRequestsLoadTheModel_andAreAnsweredInOrder() throws Exception {
    ExampleModels.writeOffsetModel(repository, "offset_007", 7, 0);
    ServerOptions rest = new ServerOptions("127.0.0.1", 0, repository, ControlMode.LAZY, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, ServerOptions.DISABLED, 1024 * 1024, false)
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0).withModelCacheDir(cache));
    try (ServerFixture fixture = new ServerFixture(rest)) {
      assertThat(ready(fixture, "offset_007")).isFalse();
      HttpClient http = HttpClient.newHttpClient();
      List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        String body = "{\"id\":\"r" + i + "\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,4],"
            + "\"data\":[" + i + "," + i + "," + i + "," + i + "]}]}";
        answers.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort()
            + "/v2/models/offset_007/infer")).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
            HttpResponse.BodyHandlers.ofString()));
      }
      for (int i = 0; i < 8; i++) {
        HttpResponse<String> answer = answers.get(i).get(60, TimeUnit.SECONDS);
        assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
        float expected = i + 7;
        assertThat(answer.body()).contains("\"id\":\"r" + i + "\"").contains("[" + expected + "," + expected);
      }
      assertThat(ready(fixture, "offset_007")).isTrue();
    }
  }
}
