package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.toFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelConfigRequest;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelStatistics;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Ensembles over real gRPC and REST against a real server, with the example ensembles (built by the
 * generator, run by ONNX Runtime): answers equal to calling the step models one after the other,
 * statistics, the admission limit, the timeout across steps, an ensemble of an ensemble, and a hot swap
 * of a step model under load without a failed request.
 */
class EnsembleTest {
  @TempDir static Path repository;
  static ServerFixture fixture;
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeAll
  static void startServer() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    // mlp_classifier with a second version (the same file: what matters is that versions swap under load).
    Path v2 = repository.resolve("mlp_classifier/2");
    Files.createDirectories(v2);
    Files.copy(repository.resolve("mlp_classifier/1/model.onnx"), v2.resolve("model.onnx"));
    // A step that waits long in its queue (no partner ever comes), for the timeout across steps.
    ExampleModels.writeDatatypeIdentity(repository, "FP32");
    Files.createDirectories(repository.resolve("slow_identity/1"));
    Files.writeString(repository.resolve("slow_identity/config.pbtxt"), """
        name: "slow_identity"
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        dynamic_batching {
          max_queue_delay_microseconds: 600000
          default_queue_policy { allow_timeout_override: true }
        }
        parameters { key: "quiver.adaptive_queue_delay" value { string_value: "false" } }
        """);
    Files.copy(repository.resolve("datatype_fp32/1/model.onnx"), repository.resolve("slow_identity/1/model.onnx"));
    ExampleModels.writeEnsemble(repository, "slow_pipeline", 8,
        List.of(ExampleModels.tensor("x", "TYPE_FP32", 4)), List.of(ExampleModels.tensor("y", "TYPE_FP32", 4)),
        List.of(ExampleModels.step("datatype_fp32", "INPUT0", "x", "OUTPUT0", "h"),
            ExampleModels.step("slow_identity", "INPUT0", "h", "OUTPUT0", "y")));
    Files.writeString(repository.resolve("slow_pipeline/config.pbtxt"),
        "parameters { key: \"quiver.max_inflight_requests\" value { string_value: \"1\" } }\n",
        java.nio.file.StandardOpenOption.APPEND);
    // A fan-out over two such slow steps: both must hold the request at the same time.
    for (String branch : List.of("slow_left", "slow_right")) {
      Files.createDirectories(repository.resolve(branch + "/1"));
      Files.writeString(repository.resolve(branch + "/config.pbtxt"),
          Files.readString(repository.resolve("slow_identity/config.pbtxt")).replace("slow_identity", branch)
              .replace("600000", "1500000"));
      Files.copy(repository.resolve("datatype_fp32/1/model.onnx"), repository.resolve(branch + "/1/model.onnx"));
    }
    ExampleModels.writeEnsemble(repository, "slow_fan", 8,
        List.of(ExampleModels.tensor("x", "TYPE_FP32", 4)),
        List.of(ExampleModels.tensor("l", "TYPE_FP32", 4), ExampleModels.tensor("r", "TYPE_FP32", 4)),
        List.of(ExampleModels.step("slow_left", "INPUT0", "x", "OUTPUT0", "l"),
            ExampleModels.step("slow_right", "INPUT0", "x", "OUTPUT0", "r")));
    // An ensemble of an ensemble: raw → mlp_pipeline → probabilities.
    ExampleModels.writeEnsemble(repository, "nested_pipeline", 64,
        List.of(ExampleModels.tensor("pixels", "TYPE_UINT8", 16)), List.of(ExampleModels.tensor("p", "TYPE_FP32", 4)),
        List.of(ExampleModels.step("mlp_pipeline", "raw", "pixels", "probabilities", "p")));
    fixture = new ServerFixture(repository);
  }

  @AfterAll
  static void stopServer() throws Exception {
    fixture.close();
  }

  static byte[] randomPixels(int rows, long seed) {
    byte[] pixels = new byte[rows * 16];
    new SplittableRandom(seed).nextBytes(pixels);
    return pixels;
  }

  static ModelInferResponse infer(String model, String inputName, String datatype, int rows, ByteString data,
      String... outputs) {
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(model).setId("req")
        .addInputs(input(inputName, datatype, rows, data.size() / rows / ("UINT8".equals(datatype) ? 1 : 4)))
        .addRawInputContents(data);
    for (String output : outputs) {
      request.addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName(output));
    }
    return fixture.stub().modelInfer(request.build());
  }

  static ModelStatistics stats(String model) {
    return fixture.stub().modelStatistics(ModelStatisticsRequest.newBuilder().setName(model).build()).getModelStats(0);
  }

  @Test
  void mlpPipeline_answersAsTheTwoStepModelsCalledInTurn() {
    ByteString pixels = ByteString.copyFrom(randomPixels(3, 1));
    ModelInferResponse ensemble = infer("mlp_pipeline", "raw", "UINT8", 3, pixels);
    ModelInferResponse features = infer("preprocess_scale", "raw", "UINT8", 3, pixels);
    ModelInferResponse direct = infer("mlp_classifier", "features", "FP32", 3, features.getRawOutputContents(0));

    assertThat(ensemble.getModelName()).isEqualTo("mlp_pipeline");
    assertThat(ensemble.getModelVersion()).isEqualTo("1");
    assertThat(ensemble.getId()).isEqualTo("req");
    assertThat(ensemble.getOutputs(0).getName()).isEqualTo("probabilities");
    assertThat(ensemble.getOutputs(0).getDatatype()).isEqualTo("FP32");
    assertThat(ensemble.getOutputs(0).getShapeList()).containsExactly(3L, 4L);
    float[] expected = toFloats(direct.getRawOutputContents(0));
    float[] actual = toFloats(ensemble.getRawOutputContents(0));
    for (int i = 0; i < expected.length; i++) {
      assertThat(actual[i]).isCloseTo(expected[i], within(1e-6f));
    }
  }

  @Test
  void classifyAndScore_fansOutToBothHeads_andAnswersWhatWasAskedFor() {
    ByteString pixels = ByteString.copyFrom(randomPixels(2, 2));
    ModelInferResponse both = infer("classify_and_score", "raw", "UINT8", 2, pixels);
    assertThat(both.getOutputsList()).extracting(o -> o.getName()).containsExactly("probabilities", "score");
    assertThat(both.getOutputs(1).getShapeList()).containsExactly(2L, 1L);
    ByteString features = infer("preprocess_scale", "raw", "UINT8", 2, pixels).getRawOutputContents(0);
    float[] score = toFloats(infer("linear_score", "features", "FP32", 2, features).getRawOutputContents(0));
    assertThat(toFloats(both.getRawOutputContents(1))).containsExactly(score, within(1e-6f));

    long classifierBefore = stats("mlp_classifier").getInferenceStats().getSuccess().getCount();
    ModelInferResponse onlyScore = infer("classify_and_score", "raw", "UINT8", 2, pixels, "score");
    assertThat(onlyScore.getOutputsList()).extracting(o -> o.getName()).containsExactly("score");
    assertThat(toFloats(onlyScore.getRawOutputContents(0))).containsExactly(score, within(1e-6f));
    // The classifier head was not asked for, so it did not run.
    assertThat(stats("mlp_classifier").getInferenceStats().getSuccess().getCount()).isEqualTo(classifierBefore);
  }

  @Test
  void rest_servesAnEnsemble_inJsonAndBinary() throws Exception {
    String body = "{\"id\":\"r1\",\"inputs\":[{\"name\":\"raw\",\"datatype\":\"UINT8\",\"shape\":[1,16],"
        + "\"data\":[0,16,32,48,64,80,96,112,128,144,160,176,192,208,224,255]}]}";
    HttpResponse<byte[]> response = HTTP.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + fixture.server.httpPort() + "/v2/models/classify_and_score/infer"))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(response.statusCode()).isEqualTo(200);
    JsonNode json = JSON.readTree(response.body());
    assertThat(json.get("model_name").asText()).isEqualTo("classify_and_score");
    assertThat(json.get("id").asText()).isEqualTo("r1");
    assertThat(json.get("outputs").get(0).get("name").asText()).isEqualTo("probabilities");
    double sum = 0;
    for (JsonNode p : json.get("outputs").get(0).get("data")) {
      sum += p.asDouble();
    }
    assertThat(sum).isCloseTo(1.0, within(1e-5));
    assertThat(json.get("outputs").get(1).get("shape").toString()).isEqualTo("[1,1]");
  }

  @Test
  void metadataConfigAndStatistics_describeTheEnsemble() {
    ModelMetadataResponse metadata = fixture.stub().modelMetadata(
        ModelMetadataRequest.newBuilder().setName("mlp_pipeline").build());
    assertThat(metadata.getPlatform()).isEqualTo("ensemble");
    assertThat(metadata.getInputs(0).getName()).isEqualTo("raw");
    assertThat(metadata.getInputs(0).getDatatype()).isEqualTo("UINT8");
    assertThat(metadata.getInputs(0).getShapeList()).containsExactly(-1L, 16L);
    assertThat(fixture.stub().modelConfig(ModelConfigRequest.newBuilder().setName("mlp_pipeline").build())
        .getConfig().getEnsembleScheduling().getStepCount()).isEqualTo(2);

    long preprocessBefore = stats("preprocess_scale").getInferenceStats().getSuccess().getCount();
    long before = stats("mlp_pipeline").getInferenceStats().getSuccess().getCount();
    infer("mlp_pipeline", "raw", "UINT8", 2, ByteString.copyFrom(randomPixels(2, 3)));
    ModelStatistics after = stats("mlp_pipeline");
    assertThat(after.getInferenceStats().getSuccess().getCount()).isEqualTo(before + 1);
    assertThat(after.getInferenceStats().getQueue().getCount()).isEqualTo(before + 1);
    assertThat(after.getInferenceStats().getComputeInfer().getNs()).isPositive();
    // The steps count in their own models' statistics, as Triton reports composing models.
    assertThat(stats("preprocess_scale").getInferenceStats().getSuccess().getCount()).isEqualTo(preprocessBefore + 1);
  }

  @Test
  void ensembleOfAnEnsemble_answersAsTheInnerOne() {
    ByteString pixels = ByteString.copyFrom(randomPixels(1, 4));
    float[] inner = toFloats(infer("mlp_pipeline", "raw", "UINT8", 1, pixels).getRawOutputContents(0));
    ModelInferResponse nested = infer("nested_pipeline", "pixels", "UINT8", 1, pixels);
    assertThat(nested.getOutputs(0).getName()).isEqualTo("p");
    assertThat(toFloats(nested.getRawOutputContents(0))).containsExactly(inner, within(1e-6f));
  }

  @Test
  void badInput_isRefusedAgainstTheEnsemblesOwnSignature() {
    assertThatThrownBy(() -> infer("mlp_pipeline", "raw", "FP32", 1, Tensors.floats(new float[16])))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
          assertThat(e.getStatus().getDescription()).contains("input 'raw' of model 'mlp_pipeline' has datatype FP32");
        });
  }

  @Test
  void timeoutParameter_appliesToEveryStep_andTheErrorNamesTheStep() {
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("slow_pipeline")
        .putParameters("timeout", InferParameter.newBuilder().setInt64Param(100_000).build()) // 100 ms, in µs
        .addInputs(input("x", "FP32", 1, 4)).addRawInputContents(Tensors.floats(1, 2, 3, 4)).build();
    // The first step runs at once; the second waits in slow_identity's queue for a partner past the timeout.
    assertThatThrownBy(() -> fixture.stub().modelInfer(request))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
          assertThat(e.getStatus().getDescription()).contains("ensemble 'slow_pipeline' version 1",
              "step 1 (model 'slow_identity')");
        });
  }

  static int queued(String model) {
    var version = fixture.server.models().acquire(model, "");
    try {
      return version.scheduler().queuedRequests();
    } finally {
      version.release();
    }
  }

  @Test
  void parallelBranches_bothStepModelsHoldTheRequestAtTheSameTime() throws Exception {
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("slow_fan")
        .addInputs(input("x", "FP32", 1, 4)).addRawInputContents(Tensors.floats(1, 2, 3, 4)).build();
    var call = io.quiver.proto.inference.GRPCInferenceServiceGrpc.newFutureStub(fixture.channel)
        .withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(request);
    // Each branch waits in its model's queue for a partner (1.5 s): run one after the other, they could
    // never both be queued at once.
    boolean both = false;
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!both && !call.isDone() && System.nanoTime() < end) {
      both = queued("slow_left") == 1 && queued("slow_right") == 1;
      Thread.sleep(2);
    }
    assertThat(both).as("both branches queued at the same time").isTrue();
    ModelInferResponse response = call.get(30, TimeUnit.SECONDS);
    assertThat(response.getOutputsList()).extracting(o -> o.getName()).containsExactly("l", "r");
    assertThat(toFloats(response.getRawOutputContents(0))).containsExactly(1, 2, 3, 4);
    assertThat(toFloats(response.getRawOutputContents(1))).containsExactly(1, 2, 3, 4);
  }

  @Test
  void admissionLimit_refusesTheSecondRequest_withRetryInfo_beforeAnyStepRuns() throws Exception {
    long firstStepBefore = stats("datatype_fp32").getInferenceStats().getSuccess().getCount();
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("slow_pipeline")
        .addInputs(input("x", "FP32", 1, 4)).addRawInputContents(Tensors.floats(1, 2, 3, 4)).build();
    AtomicReference<ModelInferResponse> first = new AtomicReference<>();
    java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
    fixture.async.withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(request, new io.grpc.stub.StreamObserver<>() {
      @Override public void onNext(ModelInferResponse value) { first.set(value); }
      @Override public void onError(Throwable t) { done.countDown(); }
      @Override public void onCompleted() { done.countDown(); }
    });
    // Wait until the first request holds the one slot (its second step waits in slow_identity's queue).
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (stats("datatype_fp32").getInferenceStats().getSuccess().getCount() == firstStepBefore && System.nanoTime() < end) {
      Thread.sleep(5);
    }
    long afterFirst = stats("datatype_fp32").getInferenceStats().getSuccess().getCount();

    assertThatThrownBy(() -> fixture.stub().modelInfer(request))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
          assertThat(e.getStatus().getDescription()).contains("quiver.max_inflight_requests");
          com.google.rpc.Status details = StatusProto.fromThrowable(e);
          assertThat(details.getDetailsList()).anyMatch(d -> d.is(RetryInfo.class));
        });
    assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
    assertThat(first.get()).isNotNull(); // the first one finished (after its queue delay)
    // The refused request ran no step.
    assertThat(stats("datatype_fp32").getInferenceStats().getSuccess().getCount()).isEqualTo(afterFirst);
  }

  @Test
  void hotSwapOfAStepModel_underLoad_failsNoRequest() throws Exception {
    int clients = 4;
    AtomicBoolean running = new AtomicBoolean(true);
    AtomicInteger ok = new AtomicInteger();
    List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    List<Future<?>> loops = new ArrayList<>();
    for (int c = 0; c < clients; c++) {
      int seed = c;
      loops.add(pool.submit(() -> {
        SplittableRandom random = new SplittableRandom(seed);
        while (running.get()) {
          try {
            int rows = 1 + random.nextInt(4);
            ModelInferResponse r = infer("classify_and_score", "raw", "UINT8", rows,
                ByteString.copyFrom(randomPixels(rows, random.nextLong())));
            float[] p = toFloats(r.getRawOutputContents(0));
            for (int row = 0; row < rows; row++) {
              float sum = p[row * 4] + p[row * 4 + 1] + p[row * 4 + 2] + p[row * 4 + 3];
              if (Math.abs(sum - 1f) > 1e-4f) {
                throw new AssertionError("row " + row + " sums to " + sum);
              }
            }
            ok.incrementAndGet();
          } catch (Throwable t) {
            failures.add(t);
          }
        }
      }));
    }
    try {
      var models = fixture.server.models();
      for (int swap = 0; swap < 6; swap++) {
        long target = swap % 2 == 0 ? 2 : 1;
        int before = ok.get();
        models.load("mlp_classifier", ModelVersionPolicy.newBuilder()
            .setSpecific(ModelVersionPolicy.Specific.newBuilder().addVersions(target)).build());
        assertThat(models.readyVersions("mlp_classifier")).containsExactly(target);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (ok.get() < before + 20 && System.nanoTime() < end && failures.isEmpty()) {
          Thread.sleep(2); // requests flow through the new version before the next swap
        }
      }
    } finally {
      running.set(false);
      for (Future<?> loop : loops) {
        loop.get(60, TimeUnit.SECONDS);
      }
      pool.shutdown();
      fixture.server.models().load("mlp_classifier", (ModelVersionPolicy) null);
    }
    assertThat(failures).isEmpty();
    assertThat(ok.get()).isGreaterThan(100);
  }

  @Test
  void repositoryIndex_listsTheEnsemblesReady() {
    RepositoryIndexResponse index = fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance());
    Map<String, String> states = new java.util.HashMap<>();
    index.getModelsList().forEach(m -> states.put(m.getName(), m.getState()));
    assertThat(states).containsEntry("mlp_pipeline", "READY").containsEntry("classify_and_score", "READY")
        .containsEntry("nested_pipeline", "READY").containsEntry("slow_pipeline", "READY")
        .containsEntry("slow_fan", "READY");
  }
}
