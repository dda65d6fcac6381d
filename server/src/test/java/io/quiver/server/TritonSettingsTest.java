package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.LoggerContext;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.LogSettingsRequest;
import io.quiver.proto.inference.LogSettingsResponse;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ServerMetadataRequest;
import io.quiver.proto.inference.TraceSettingRequest;
import io.quiver.proto.inference.TraceSettingResponse;
import io.quiver.server.tracing.ServerTracing;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * Triton's logging and trace extensions with Triton's field names and bodies: the gRPC LogSettings and
 * TraceSetting RPCs and REST /v2/logging, /v2/trace/setting and /v2/models/NAME/trace/setting, as
 * tritonclient's update_log_settings and update_trace_settings send them; trace settings checked against
 * the spans really recorded.
 */
class TritonSettingsTest {
  @TempDir static Path repository;
  static final InMemorySpanExporter spans = InMemorySpanExporter.create();
  static ServerFixture traced;
  static ServerFixture untraced;
  static HttpClient http;
  static final ObjectMapper JSON = new ObjectMapper();

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeSimple(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, -1, 1024 * 1024, false);
    traced = new ServerFixture(new QuiverServer(options, ServerTracing.forExporter(spans)));
    untraced = new ServerFixture(new QuiverServer(options));
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    traced.close();
    untraced.close();
  }

  @AfterEach
  void restore() {
    // Log settings are process-wide: put back what every other test expects.
    LogSettings.apply(Map.of(LogSettings.LOG_INFO, true, LogSettings.LOG_WARNING, true, LogSettings.LOG_ERROR, true,
        LogSettings.LOG_VERBOSE_LEVEL, 0));
    traced.stub().traceSetting(TraceSettingRequest.newBuilder()
            .putSettings("trace_level", value("TIMESTAMPS")).putSettings("trace_rate", value("1"))
            .putSettings("trace_count", value("-1")).build());
    traced.stub().traceSetting(TraceSettingRequest.newBuilder().setModelName("simple")
        .putSettings("trace_level", value()).putSettings("trace_rate", value()).putSettings("trace_count", value())
        .build());
    spans.reset();
  }

  static TraceSettingRequest.SettingValue value(String... values) {
    return TraceSettingRequest.SettingValue.newBuilder().addAllValue(List.of(values)).build();
  }

  // ---- logging ----

  @Test
  void grpcLogSettings_readAndUpdateTritonsFields() {
    LogSettingsResponse now = untraced.stub().logSettings(LogSettingsRequest.getDefaultInstance());
    assertThat(now.getSettingsMap()).containsKeys("log_file", "log_info", "log_warning", "log_error",
        "log_verbose_level", "log_format");
    assertThat(now.getSettingsOrThrow("log_info").getBoolParam()).isTrue();
    assertThat(now.getSettingsOrThrow("log_verbose_level").getUint32Param()).isZero();

    // tritonclient.grpc update_log_settings({"log_info": False, "log_verbose_level": 1}).
    LogSettingsResponse updated = untraced.stub().logSettings(LogSettingsRequest.newBuilder()
        .putSettings("log_info", LogSettingsRequest.SettingValue.newBuilder().setBoolParam(false).build())
        .putSettings("log_verbose_level", LogSettingsRequest.SettingValue.newBuilder().setUint32Param(1).build())
        .build());
    assertThat(updated.getSettingsOrThrow("log_info").getBoolParam()).isFalse();
    assertThat(updated.getSettingsOrThrow("log_verbose_level").getUint32Param()).isEqualTo(1);
    // Really applied to the logging: INFO is off, io.quiver logs at DEBUG.
    org.slf4j.Logger quiver = LoggerFactory.getLogger("io.quiver.server.SomeClass");
    assertThat(quiver.isDebugEnabled()).isTrue();
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    assertThat(context.getLogger("io.quiver").getLevel()).hasToString("DEBUG");

    // Wrong types and unknown settings are refused by name, and nothing is changed.
    assertGrpc(() -> untraced.stub().logSettings(LogSettingsRequest.newBuilder()
        .putSettings("log_warning", LogSettingsRequest.SettingValue.newBuilder().setStringParam("no").build())
        .putSettings("log_error", LogSettingsRequest.SettingValue.newBuilder().setBoolParam(false).build())
        .build()), Status.Code.INVALID_ARGUMENT, "log_warning");
    assertThat(LogSettings.current().get(LogSettings.LOG_ERROR)).isEqualTo(true);
    assertGrpc(() -> untraced.stub().logSettings(LogSettingsRequest.newBuilder()
        .putSettings("log_colour", LogSettingsRequest.SettingValue.newBuilder().setBoolParam(true).build())
        .build()), Status.Code.INVALID_ARGUMENT, "log_colour");
    assertGrpc(() -> untraced.stub().logSettings(LogSettingsRequest.newBuilder()
        .putSettings("log_format", LogSettingsRequest.SettingValue.newBuilder().setStringParam("xml").build())
        .build()), Status.Code.INVALID_ARGUMENT, "log_format");
    // Triton refuses a new log file over the network; so does Quiver.
    assertGrpc(() -> untraced.stub().logSettings(LogSettingsRequest.newBuilder()
        .putSettings("log_file", LogSettingsRequest.SettingValue.newBuilder().setStringParam("/tmp/x.log").build())
        .build()), Status.Code.UNIMPLEMENTED, "log file");
  }

  @Test
  void restLogging_takesTritonsBody_andKeepsQuiversPerLoggerLevels() throws Exception {
    HttpResponse<String> get = get(untraced, "/v2/logging");
    assertThat(get.statusCode()).isEqualTo(200);
    JsonNode settings = JSON.readTree(get.body());
    assertThat(settings.get("log_info").isBoolean()).isTrue();
    assertThat(settings.get("log_verbose_level").isInt()).isTrue();
    assertThat(settings.get("log_file").asText()).isEmpty();

    // tritonclient.http update_log_settings: the settings as a JSON object.
    HttpResponse<String> post = post(untraced, "/v2/logging", "{\"log_warning\":false,\"log_verbose_level\":2}");
    assertThat(post.statusCode()).as(post.body()).isEqualTo(200);
    JsonNode now = JSON.readTree(post.body());
    assertThat(now.get("log_warning").asBoolean()).isFalse();
    assertThat(now.get("log_verbose_level").asInt()).isEqualTo(2);
    assertThat(LoggerFactory.getLogger("io.quiver.x").isTraceEnabled()).isTrue();

    // Quiver's addition: one logger's level.
    HttpResponse<String> logger = post(untraced, "/v2/logging", "{\"level\":\"WARN\",\"logger\":\"io.netty\"}");
    assertThat(logger.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(logger.body()).get("loggers").get("io.netty").asText()).isEqualTo("WARN");

    HttpResponse<String> bad = post(untraced, "/v2/logging", "{\"log_info\":\"yes\"}");
    assertThat(bad.statusCode()).isEqualTo(400);
    assertThat(bad.body()).contains("log_info");
    HttpResponse<String> negative = post(untraced, "/v2/logging", "{\"log_verbose_level\":-1}");
    assertThat(negative.statusCode()).isEqualTo(400);
    assertThat(negative.body()).contains("log_verbose_level");
    HttpResponse<String> empty = post(untraced, "/v2/logging", "{}");
    assertThat(empty.statusCode()).isEqualTo(400);
    ((LoggerContext) LoggerFactory.getILoggerFactory()).getLogger("io.netty").setLevel(null);
  }

  // ---- trace ----

  @Test
  void grpcTraceSetting_rateAndCountAndLevel_decideWhichRequestsAreTraced() {
    assertThat(traced.stub().serverMetadata(ServerMetadataRequest.getDefaultInstance()).getExtensionsList())
        .contains("trace");
    TraceSettingResponse now = traced.stub().traceSetting(TraceSettingRequest.getDefaultInstance());
    assertThat(now.getSettingsOrThrow("trace_level").getValueList()).containsExactly("TIMESTAMPS");
    assertThat(now.getSettingsOrThrow("trace_rate").getValueList()).containsExactly("1");
    assertThat(now.getSettingsOrThrow("trace_count").getValueList()).containsExactly("-1");

    // trace_rate 2: one request in two is traced.
    TraceSettingResponse rate = traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_rate", value("2")).build());
    assertThat(rate.getSettingsOrThrow("trace_rate").getValueList()).containsExactly("2");
    infer(traced, "identity_fp32", 6);
    assertThat(serverSpans()).isEqualTo(3);

    // trace_count 2 (rate back to 1): two more traces, then none.
    spans.reset();
    traced.stub().traceSetting(TraceSettingRequest.newBuilder().putSettings("trace_rate", value("1"))
        .putSettings("trace_count", value("2")).build());
    infer(traced, "identity_fp32", 5);
    assertThat(serverSpans()).isEqualTo(2);
    assertThat(traced.stub().traceSetting(TraceSettingRequest.getDefaultInstance())
        .getSettingsOrThrow("trace_count").getValueList()).containsExactly("0");

    // Per model: OFF for simple while identity_fp32 follows the global settings.
    spans.reset();
    traced.stub().traceSetting(TraceSettingRequest.newBuilder().putSettings("trace_count", value("-1")).build());
    TraceSettingResponse off = traced.stub().traceSetting(TraceSettingRequest.newBuilder().setModelName("simple")
        .putSettings("trace_level", value("OFF")).build());
    assertThat(off.getSettingsOrThrow("trace_level").getValueList()).containsExactly("OFF");
    infer(traced, "simple", 2);
    infer(traced, "identity_fp32", 2);
    assertThat(serverSpans()).isEqualTo(2);
    // Clearing the model's own value (an empty list) falls back to the global one.
    TraceSettingResponse cleared = traced.stub().traceSetting(TraceSettingRequest.newBuilder().setModelName("simple")
        .putSettings("trace_level", value()).build());
    assertThat(cleared.getSettingsOrThrow("trace_level").getValueList()).containsExactly("TIMESTAMPS");

    // Bad settings: refused by name.
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_rate", value("often")).build()), Status.Code.INVALID_ARGUMENT, "trace_rate");
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_rate", value("0")).build()), Status.Code.INVALID_ARGUMENT, "trace_rate");
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_level", value("LOUD")).build()), Status.Code.INVALID_ARGUMENT, "trace_level");
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_file", value("/tmp/t.json")).build()), Status.Code.UNIMPLEMENTED, "trace file");
    // Triton's OpenTelemetry mode records no tensors either; Quiver says so instead of accepting it.
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_level", value("TENSORS")).build()), Status.Code.UNIMPLEMENTED, "trace_mode opentelemetry");
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder()
        .putSettings("trace_sampler", value("x")).build()), Status.Code.INVALID_ARGUMENT, "trace_sampler");
    assertGrpc(() -> traced.stub().traceSetting(TraceSettingRequest.newBuilder().setModelName("no_such_model")
        .build()), Status.Code.INVALID_ARGUMENT, "no_such_model");
  }

  @Test
  void restTraceSetting_takesTritonsBody() throws Exception {
    // tritonclient.http update_trace_settings(settings={"trace_rate": "3"}): strings, lists for trace_level.
    HttpResponse<String> post = post(traced, "/v2/trace/setting", "{\"trace_rate\":\"3\",\"trace_level\":[\"TIMESTAMPS\"]}");
    assertThat(post.statusCode()).as(post.body()).isEqualTo(200);
    JsonNode now = JSON.readTree(post.body());
    assertThat(now.get("trace_rate").asText()).isEqualTo("3");
    assertThat(now.get("trace_level").isArray()).isTrue();
    assertThat(now.get("trace_level").get(0).asText()).isEqualTo("TIMESTAMPS");
    assertThat(JSON.readTree(get(traced, "/v2/trace/setting").body()).get("trace_rate").asText()).isEqualTo("3");

    // Per model; null clears the model's own value.
    HttpResponse<String> model = post(traced, "/v2/models/simple/trace/setting", "{\"trace_level\":[\"OFF\"]}");
    assertThat(model.statusCode()).as(model.body()).isEqualTo(200);
    assertThat(JSON.readTree(model.body()).get("trace_level").get(0).asText()).isEqualTo("OFF");
    assertThat(JSON.readTree(get(traced, "/v2/models/simple/trace/setting").body()).get("trace_level").get(0)
        .asText()).isEqualTo("OFF");
    HttpResponse<String> clear = post(traced, "/v2/models/simple/trace/setting", "{\"trace_level\":null}");
    assertThat(JSON.readTree(clear.body()).get("trace_level").get(0).asText()).isEqualTo("TIMESTAMPS");

    HttpResponse<String> bad = post(traced, "/v2/trace/setting", "{\"trace_count\":\"-5\"}");
    assertThat(bad.statusCode()).isEqualTo(400);
    assertThat(bad.body()).contains("trace_count");
    assertThat(get(traced, "/v2/models/no_such_model/trace/setting").statusCode()).isEqualTo(400);

    // A server without an exporter: settings readable, level OFF, turning it on says how.
    JsonNode off = JSON.readTree(get(untraced, "/v2/trace/setting").body());
    assertThat(off.get("trace_level").get(0).asText()).isEqualTo("OFF");
    HttpResponse<String> on = post(untraced, "/v2/trace/setting", "{\"trace_level\":[\"TIMESTAMPS\"]}");
    assertThat(on.statusCode()).isEqualTo(400);
    assertThat(on.body()).contains("--tracing");
  }

  static void infer(ServerFixture fixture, String model, int times) {
    for (int i = 0; i < times; i++) {
      if (model.equals("simple")) {
        fixture.stub().modelInfer(TritonCompatibilityTest.simpleRequest());
      } else {
        fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName(model)
            .addInputs(input("INPUT0", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build());
      }
    }
  }

  static long serverSpans() {
    return spans.getFinishedSpanItems().stream().filter(s -> s.getKind() == SpanKind.SERVER).count();
  }

  static void assertGrpc(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Status.Code code,
      String message) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(message);
    });
  }

  static HttpResponse<String> get(ServerFixture fixture, String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + path)).GET()
        .build(), HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(ServerFixture fixture, String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + path))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
