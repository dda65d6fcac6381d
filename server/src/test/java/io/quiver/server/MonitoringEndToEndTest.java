package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.SetMonitoringReferenceRequest;
import io.quiver.proto.control.v1.SetMonitoringReferenceResponse;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.monitoring.v1.GetModelMonitoringRequest;
import io.quiver.proto.monitoring.v1.ModelMonitoringGrpc;
import io.quiver.proto.monitoring.v1.ModelMonitoringReport;
import io.quiver.proto.monitoring.v1.ReferenceProfile;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model monitoring against a real Quiver over loopback gRPC and REST, with the real ONNX model
 * {@code mlp_classifier} (16 features in, 4 probabilities out). Its config turns monitoring on with a
 * 1 s window of at least 100 rows and a reference built at load from {@code reference.jsonl} in the
 * version directory. Waits poll for an event (a window closing, samples summarised) with a generous
 * bound; nothing is asserted about time.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MonitoringEndToEndTest {
  static final String MODEL = "mlp_classifier";
  static final int ROWS = 8;
  static final int REFERENCE_REQUESTS = 50;
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir static Path repository;
  static ServerFixture fixture;
  static HttpClient http;
  static ManagedChannel control;
  static final List<float[]> reference = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeMlpClassifier(repository);
    ExampleModels.writeSimple(repository);
    Path config = repository.resolve(MODEL).resolve("config.pbtxt");
    String base = Files.readString(config);
    Files.writeString(config, base + parameters("quiver.monitoring", "true", "quiver.monitoring.window_seconds", "1",
        "quiver.monitoring.min_window_rows", "100", "quiver.monitoring.reference_file", "reference.jsonl",
        "quiver.monitoring.reference_rows", "0"));
    Random random = new Random(20);
    StringBuilder jsonl = new StringBuilder();
    for (int i = 0; i < REFERENCE_REQUESTS; i++) {
      float[] rows = new float[ROWS * 16];
      for (int j = 0; j < rows.length; j++) {
        rows[j] = (float) random.nextGaussian();
      }
      reference.add(rows);
      jsonl.append(jsonLine(rows)).append('\n');
    }
    Files.writeString(repository.resolve(MODEL).resolve("1").resolve("reference.jsonl"), jsonl);
    // A copy with a bad monitoring parameter: its load fails, naming it; the others serve.
    Path bad = repository.resolve("mlp_bad");
    Files.createDirectories(bad.resolve("1"));
    Files.copy(repository.resolve(MODEL).resolve("1").resolve("model.onnx"), bad.resolve("1").resolve("model.onnx"));
    Files.writeString(bad.resolve("config.pbtxt"), base.replace(MODEL, "mlp_bad")
        + parameters("quiver.monitoring", "true", "quiver.monitoring.sample_rate", "2"));

    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, 0, 16 << 20, false)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0));
    fixture = new ServerFixture(options);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    control = NettyChannelBuilder.forAddress("127.0.0.1", fixture.server.controlPort()).usePlaintext().build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (control != null) {
      control.shutdownNow();
    }
    if (fixture != null) {
      fixture.close();
    }
  }

  static String parameters(String... keyValues) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < keyValues.length; i += 2) {
      b.append("parameters {\n  key: \"").append(keyValues[i]).append("\"\n  value { string_value: \"")
          .append(keyValues[i + 1]).append("\" }\n}\n");
    }
    return b.toString();
  }

  static String jsonLine(float[] rows) {
    StringBuilder b = new StringBuilder("{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[")
        .append(rows.length / 16).append(",16],\"data\":[");
    for (int i = 0; i < rows.length; i++) {
      b.append(i == 0 ? "" : ",").append(rows[i]);
    }
    return b.append("]}]}").toString();
  }

  static void inferGrpc(float[] rows) {
    ByteBuffer raw = ByteBuffer.allocate(rows.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : rows) {
      raw.putFloat(v);
    }
    fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName(MODEL)
        .addInputs(input("features", "FP32", rows.length / 16, 16)).addRawInputContents(ByteString.copyFrom(raw.flip()))
        .build());
  }

  static void inferRest(float[] rows) throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/" + MODEL + "/infer"))
        .POST(HttpRequest.BodyPublishers.ofString(jsonLine(rows))).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
  }

  static String base() {
    return "http://127.0.0.1:" + fixture.server.httpPort();
  }

  static HttpResponse<String> get(String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode report() throws Exception {
    HttpResponse<String> response = get("/v2/models/" + MODEL + "/monitoring");
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return JSON.readTree(response.body());
  }

  /** Polls the REST report until {@code done} holds (bounded; a failure names the last report). */
  static JsonNode awaitReport(Predicate<JsonNode> done, Runnable between) throws Exception {
    JsonNode last = null;
    for (int i = 0; i < 600; i++) {
      last = report();
      if (done.test(last)) {
        return last;
      }
      if (between != null) {
        between.run();
      }
      Thread.sleep(50);
    }
    throw new AssertionError("condition never held; last report: " + last);
  }

  static boolean allSummarised(JsonNode r) {
    JsonNode samples = r.get("samples");
    return samples.get("summarised").asLong() == samples.get("taken").asLong();
  }

  static JsonNode feature(JsonNode report, String tensor, String feature) {
    for (JsonNode t : report.get("tensors")) {
      if (t.get("name").asText().equals(tensor)) {
        for (JsonNode f : t.get("features")) {
          if (f.get("name").asText().equals(feature)) {
            return f;
          }
        }
      }
    }
    throw new AssertionError("no feature " + tensor + "/" + feature + " in " + report);
  }

  @Test
  @Order(1)
  void referenceFromTheVersionFile_thenNoDriftOnReferenceData_thenDriftAndExactCounts_overGrpcRestAndMetrics()
      throws Exception {
    // The reference is built at load from reference.jsonl (the model ran on it for the outputs) and stored.
    JsonNode ready = awaitReport(r -> r.get("reference").get("state").asText().equals("READY"), null);
    assertThat(ready.get("reference").get("rows").asLong()).isEqualTo(REFERENCE_REQUESTS * ROWS);
    assertThat(ready.get("reference").get("source").asText()).isEqualTo("file:reference.jsonl");
    assertThat(ready.get("settings").get("window_seconds").asInt()).isEqualTo(1);
    assertThat(feature(ready, "probabilities", "3").get("reference").get("count").asLong())
        .isEqualTo(REFERENCE_REQUESTS * ROWS);
    Path stored = repository.resolve(MODEL).resolve(".quiver/1/monitoring-reference.pb");
    assertThat(ReferenceProfile.parseFrom(Files.readAllBytes(stored)).getRows()).isEqualTo(REFERENCE_REQUESTS * ROWS);

    // Phase A: the reference requests again (gRPC and REST) until a window closes: nothing is flagged.
    long rowsSent = 0;
    int[] next = {0};
    long[] sent = {0};
    Runnable sendReference = () -> {
      try {
        for (int i = 0; i < 10; i++) {
          float[] rows = reference.get(next[0]++ % REFERENCE_REQUESTS);
          if (i % 5 == 0) {
            inferRest(rows);
          } else {
            inferGrpc(rows);
          }
          sent[0] += ROWS;
        }
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
    JsonNode quiet = awaitReport(r -> r.get("window").get("index").asLong() >= 1, sendReference);
    rowsSent += sent[0];
    assertThat(quiet.get("window").get("scored").asBoolean()).isTrue();
    assertThat(quiet.get("window").get("rows").asLong()).isGreaterThanOrEqualTo(100);
    assertThat(quiet.get("flagged_features").asInt()).as("%s", quiet).isZero();
    JsonNode x0 = feature(quiet, "features", "0").get("window");
    assertThat(x0.get("out_of_range_rate").asDouble()).isZero();
    assertThat(x0.get("psi").asDouble()).isLessThan(0.2); // a window holds a subset of the reference rows: some noise
    long quietIndex = quiet.get("window").get("index").asLong();

    // Phase B: feature 0 moves to N(10, 1) (every value above the reference's max), feature 5 gets NaN
    // in exactly 13 rows (gRPC only: JSON has no NaN).
    Random random = new Random(21);
    int[] nans = {0};
    long[] phaseB = {0};
    Runnable sendDrifted = () -> {
      for (int i = 0; i < 10; i++) {
        float[] rows = new float[ROWS * 16];
        for (int j = 0; j < rows.length; j++) {
          rows[j] = (float) random.nextGaussian() + (j % 16 == 0 ? 10 : 0);
          if (j % 16 == 5 && nans[0] < 13) {
            rows[j] = Float.NaN;
            nans[0]++;
          }
        }
        inferGrpc(rows);
        phaseB[0] += ROWS;
      }
    };
    JsonNode drifted = awaitReport(r -> r.get("window").get("index").asLong() > quietIndex
        && feature(r, "features", "0").get("window").get("flags").size() > 0, sendDrifted);
    List<String> flags = new ArrayList<>();
    feature(drifted, "features", "0").get("window").get("flags").forEach(f -> flags.add(f.asText()));
    assertThat(flags).contains("psi", "ks", "out_of_range");
    assertThat(drifted.get("flagged_features").asInt()).isPositive();

    // Exact counts since load, once every sample is summarised (sample rate 1, nothing dropped).
    JsonNode settled = awaitReport(MonitoringEndToEndTest::allSummarised, null);
    rowsSent += phaseB[0];
    assertThat(settled.get("samples").get("dropped").asLong()).isZero();
    JsonNode totals0 = feature(settled, "features", "0").get("totals");
    assertThat(totals0.get("count").asLong()).isEqualTo(rowsSent);
    assertThat(totals0.get("out_of_range_count").asLong()).isEqualTo(phaseB[0]);
    JsonNode totals5 = feature(settled, "features", "5").get("totals");
    assertThat(totals5.get("nan_count").asLong()).isEqualTo(13);
    assertThat(totals5.get("count").asLong()).isEqualTo(rowsSent);
    assertThat(feature(settled, "probabilities", "0").get("totals").get("count").asLong()).isEqualTo(rowsSent);

    // The same report over gRPC.
    ModelMonitoringReport grpc = ModelMonitoringGrpc.newBlockingStub(fixture.channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .getModelMonitoring(GetModelMonitoringRequest.newBuilder().setName(MODEL).build());
    assertThat(grpc.getModel()).isEqualTo(MODEL);
    assertThat(grpc.getVersion()).isEqualTo("1");
    assertThat(grpc.getTensorsList()).extracting(t -> t.getName()).containsExactly("features", "probabilities");
    assertThat(grpc.getTensors(0).getFeatures(5).getTotals().getNanCount()).isEqualTo(13);

    // Prometheus: the per-feature gauges, bounded labels.
    String metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.metricsPort()
        + "/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString()).body();
    assertThat(metrics).containsPattern(
        "quiver_monitoring_feature_flagged\\{feature=\"0\",model=\"mlp_classifier\",tensor=\"features\",version=\"1\"} 1(\\.0)?\n");
    assertThat(metrics).containsPattern("quiver_monitoring_psi\\{feature=\"15\",model=\"mlp_classifier\"");
    assertThat(metrics).contains("quiver_monitoring_samples_total{model=\"mlp_classifier\",outcome=\"taken\",version=\"1\"}");
    assertThat(metrics).containsPattern("quiver_monitoring_reference_state\\{model=\"mlp_classifier\",state=\"READY\",version=\"1\"} 1");
  }

  @Test
  @Order(3)
  void controlPlane_replacesTheReference_fromSentRequests_andFromCapturedTraffic() throws Exception {
    awaitReport(r -> r.get("reference").get("state").asText().equals("READY"), null);
    var stub = ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(60, TimeUnit.SECONDS);
    StringBuilder jsonl = new StringBuilder();
    for (int i = 0; i < 10; i++) {
      jsonl.append(jsonLine(reference.get(i))).append("\r\n\n");
    }
    SetMonitoringReferenceResponse sent = stub.setMonitoringReference(SetMonitoringReferenceRequest.newBuilder()
        .setName(MODEL).setVersion("1").setRequestsJsonl(ByteString.copyFromUtf8(jsonl.toString())).build());
    assertThat(sent.getState()).isEqualTo("READY");
    assertThat(sent.getRows()).isEqualTo(10 * ROWS);
    JsonNode afterSend = report();
    assertThat(afterSend.get("reference").get("source").asText()).isEqualTo("control-plane");
    assertThat(afterSend.get("reference").get("rows").asLong()).isEqualTo(10 * ROWS);
    Path stored = repository.resolve(MODEL).resolve(".quiver/1/monitoring-reference.pb");
    assertThat(ReferenceProfile.parseFrom(Files.readAllBytes(stored)).getSource()).isEqualTo("control-plane");

    // A bad line is refused, naming it; the reference in force stays.
    String bad = jsonLine(reference.get(0)) + "\n" + "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\","
        + "\"shape\":[1,15],\"data\":[1]}]}\n";
    assertThatThrownBy(() -> stub.setMonitoringReference(SetMonitoringReferenceRequest.newBuilder().setName(MODEL)
        .setVersion("1").setRequestsJsonl(ByteString.copyFromUtf8(bad)).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT))
        .hasMessageContaining("line 2");
    assertThat(ReferenceProfile.parseFrom(Files.readAllBytes(stored)).getSource()).isEqualTo("control-plane");

    SetMonitoringReferenceResponse capture = stub.setMonitoringReference(SetMonitoringReferenceRequest.newBuilder()
        .setName(MODEL).setVersion("1").setCaptureRows(40).build());
    assertThat(capture.getState()).isEqualTo("CAPTURING");
    int[] i = {0};
    JsonNode captured = awaitReport(r -> r.get("reference").get("source").asText().equals("capture")
        && r.get("reference").get("state").asText().equals("READY"), () -> inferGrpc(reference.get(i[0]++ % 10)));
    assertThat(captured.get("reference").get("rows").asLong()).isGreaterThanOrEqualTo(40);
    // Stored by the I/O thread just after; the file follows.
    for (int n = 0; n < 200 && !ReferenceProfile.parseFrom(Files.readAllBytes(stored)).getSource().equals("capture"); n++) {
      Thread.sleep(50);
    }
    assertThat(ReferenceProfile.parseFrom(Files.readAllBytes(stored)).getSource()).isEqualTo("capture");

    assertThatThrownBy(() -> stub.setMonitoringReference(SetMonitoringReferenceRequest.newBuilder().setName("simple")
        .setVersion("1").setCaptureRows(10).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION));
    assertThatThrownBy(() -> stub.setMonitoringReference(SetMonitoringReferenceRequest.newBuilder().setName(MODEL)
        .setVersion("1").setVersionFile("../../config.pbtxt").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
  }

  @Test
  @Order(2)
  void unmonitoredUnknownAndMisconfiguredModels_getClearErrors() throws Exception {
    HttpResponse<String> simple = get("/v2/models/simple/monitoring");
    assertThat(simple.statusCode()).isEqualTo(400);
    assertThat(simple.body()).contains("not monitored").contains("quiver.monitoring");
    assertThat(get("/v2/models/nothing/monitoring").statusCode()).isEqualTo(404);
    assertThat(get("/v2/models/" + MODEL + "/versions/7/monitoring").statusCode()).isEqualTo(404);
    assertThat(http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/" + MODEL + "/monitoring"))
        .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString()).statusCode())
        .isEqualTo(405); // a method the path does not serve
    assertThatThrownBy(() -> ModelMonitoringGrpc.newBlockingStub(fixture.channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .getModelMonitoring(GetModelMonitoringRequest.newBuilder().setName("simple").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION));
    var index = fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance());
    assertThat(index.getModelsList()).anySatisfy(m -> {
      assertThat(m.getName()).isEqualTo("mlp_bad");
      assertThat(m.getReason()).contains("quiver.monitoring.sample_rate").contains("was 2");
    });
  }
}
