package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelStatisticsResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every REST v2 path and the /metrics scrape, against a live loopback server. */
class RestApiTest {
  @TempDir static Path repository;
  static ServerFixture fixture;
  static HttpClient http;
  static final ObjectMapper JSON = new ObjectMapper();

  @BeforeAll
  static void startServer() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    ExampleModels.writeDatatypeIdentities(repository);
    fixture = new ServerFixture(repository);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stopServer() throws Exception {
    fixture.close();
  }

  static String base() {
    return "http://127.0.0.1:" + fixture.server.httpPort();
  }

  static HttpResponse<byte[]> get(String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  static HttpResponse<byte[]> post(String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path))
        .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build(),
        HttpResponse.BodyHandlers.ofByteArray());
  }

  static JsonNode json(HttpResponse<byte[]> response) throws Exception {
    return JSON.readTree(response.body());
  }

  static String error(HttpResponse<byte[]> response) throws Exception {
    return json(response).get("error").asText();
  }

  @Test
  void pipelinedRequests_areAnsweredInRequestOrder() throws Exception {
    // Three requests written at once on one connection: an inference, a metadata read behind it, and
    // another inference. HTTP/1.1 answers must come back in that order, whatever finishes first.
    String infer = "{\"id\":\"%s\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],"
        + "\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}";
    StringBuilder wire = new StringBuilder();
    for (String request : new String[] {
        rawPost("/v2/models/identity_fp32/infer", String.format(infer, "first")),
        "GET /v2/models/simple HTTP/1.1\r\nHost: x\r\n\r\n",
        rawPost("/v2/models/identity_fp32/infer", String.format(infer, "third"))}) {
      wire.append(request);
    }
    try (java.net.Socket socket = new java.net.Socket("127.0.0.1", fixture.server.httpPort())) {
      socket.setSoTimeout(10_000);
      socket.getOutputStream().write(wire.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      java.io.InputStream in = socket.getInputStream();
      String first = readResponse(in);
      String second = readResponse(in);
      String third = readResponse(in);
      assertThat(first).contains("\"id\":\"first\"");
      assertThat(second).contains("\"name\":\"simple\"");
      assertThat(third).contains("\"id\":\"third\"");
    }
  }

  private static String rawPost(String path, String body) {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
        + body.getBytes(java.nio.charset.StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
  }

  /** One HTTP/1.1 response with a Content-Length body, as text. */
  private static String readResponse(java.io.InputStream in) throws Exception {
    java.io.ByteArrayOutputStream head = new java.io.ByteArrayOutputStream();
    while (!head.toString(java.nio.charset.StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        throw new java.io.EOFException("connection closed inside a response head");
      }
      head.write(b);
    }
    String headText = head.toString(java.nio.charset.StandardCharsets.ISO_8859_1);
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)content-length:\\s*(\\d+)").matcher(headText);
    assertThat(m.find()).as("content-length in %s", headText).isTrue();
    byte[] body = in.readNBytes(Integer.parseInt(m.group(1)));
    return headText + new String(body, java.nio.charset.StandardCharsets.UTF_8);
  }

  @Test
  void serverMetadataAndHealth() throws Exception {
    HttpResponse<byte[]> meta = get("/v2");
    assertThat(meta.statusCode()).isEqualTo(200);
    assertThat(json(meta).get("name").asText()).isEqualTo("quiver");
    assertThat(json(meta).get("extensions").toString()).contains("binary_tensor_data", "statistics");
    assertThat(get("/v2/health/live").statusCode()).isEqualTo(200);
    assertThat(get("/v2/health/ready").statusCode()).isEqualTo(200);
    assertThat(get("/v2/nothing").statusCode()).isEqualTo(404);
    HttpResponse<byte[]> wrongMethod = post("/v2/health/live", "{}");
    assertThat(wrongMethod.statusCode()).isEqualTo(405); // HTTP's answer to a method the path does not serve
    assertThat(wrongMethod.headers().firstValue("allow")).hasValue("GET");
  }

  @Test
  void modelMetadataReadyConfig() throws Exception {
    JsonNode meta = json(get("/v2/models/simple"));
    assertThat(meta.get("name").asText()).isEqualTo("simple");
    assertThat(meta.get("versions").get(0).asText()).isEqualTo("1");
    assertThat(meta.get("inputs").get(0).get("datatype").asText()).isEqualTo("INT32");
    assertThat(meta.get("inputs").get(0).get("shape").toString()).isEqualTo("[-1,16]");
    assertThat(get("/v2/models/simple/versions/1").statusCode()).isEqualTo(200);
    assertThat(get("/v2/models/simple/ready").statusCode()).isEqualTo(200);
    assertThat(get("/v2/models/simple/versions/1/ready").statusCode()).isEqualTo(200);
    assertThat(get("/v2/models/nope/ready").statusCode()).isEqualTo(400);
    HttpResponse<byte[]> unknown = get("/v2/models/nope");
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(error(unknown)).contains("nope");
    assertThat(get("/v2/models/simple/versions/7").statusCode()).isEqualTo(404);
    JsonNode config = json(get("/v2/models/simple/config"));
    assertThat(config.get("max_batch_size").asInt()).isEqualTo(8);
    assertThat(config.get("input").get(0).get("name").asText()).isEqualTo("INPUT0");
  }

  @Test
  void inferJsonFlatAndNested() throws Exception {
    StringBuilder a = new StringBuilder();
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      a.append(i == 0 ? "" : ",").append(i + 1);
      b.append(i == 0 ? "" : ",").append(1);
    }
    String body = "{\"id\":\"r1\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[1,16],\"data\":[[" + a
        + "]]},{\"name\":\"INPUT1\",\"datatype\":\"INT32\",\"shape\":[1,16],\"data\":[" + b + "]}]}";
    HttpResponse<byte[]> response = post("/v2/models/simple/infer", body);
    assertThat(response.statusCode()).as(new String(response.body(), StandardCharsets.UTF_8)).isEqualTo(200);
    JsonNode out = json(response);
    assertThat(out.get("id").asText()).isEqualTo("r1");
    assertThat(out.get("model_version").asText()).isEqualTo("1");
    Map<String, JsonNode> byName = new HashMap<>();
    out.get("outputs").forEach(o -> byName.put(o.get("name").asText(), o));
    assertThat(byName.get("OUTPUT0").get("data").get(0).asInt()).isEqualTo(2);
    assertThat(byName.get("OUTPUT0").get("data").get(15).asInt()).isEqualTo(17);
    assertThat(byName.get("OUTPUT1").get("data").get(15).asInt()).isEqualTo(15);
    assertThat(byName.get("OUTPUT0").get("shape").toString()).isEqualTo("[1,16]");
  }

  @Test
  void inferEveryDatatypeInJson() throws Exception {
    Map<String, String> values = Map.ofEntries(
        Map.entry("BOOL", "[true,false,true,false]"), Map.entry("UINT8", "[0,1,200,255]"),
        Map.entry("INT8", "[-128,-1,0,127]"), Map.entry("INT16", "[-32768,-1,2,32767]"),
        Map.entry("INT32", "[-5,0,7,2147483647]"), Map.entry("INT64", "[-9223372036854775808,1,2,9223372036854775807]"),
        Map.entry("FP16", "[1.5,-2.0,0.25,0.0]"), Map.entry("BF16", "[1.5,-2.0,0.25,0.0]"),
        Map.entry("FP32", "[1.5,-2.25,0.125,3.0]"), Map.entry("FP64", "[1.5,-2.25,0.125,1.0E100]"),
        Map.entry("BYTES", "[\"a\",\"\",\"héllo\",\"xyz\"]"));
    for (String type : ExampleModels.SUPPORTED_DATATYPES) {
      String data = values.get(type);
      assertThat(data).as(type).isNotNull();
      String body = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"" + type + "\",\"shape\":[1,4],\"data\":" + data + "}]}";
      HttpResponse<byte[]> response = post("/v2/models/" + ExampleModels.datatypeModelName(type) + "/infer", body);
      assertThat(response.statusCode()).as(type + ": " + new String(response.body(), StandardCharsets.UTF_8)).isEqualTo(200);
      JsonNode output = json(response).get("outputs").get(0);
      assertThat(output.get("datatype").asText()).isEqualTo(type);
      assertThat(JSON.readTree(data)).as(type).isEqualTo(normalize(type, output.get("data")));
    }
  }

  private static JsonNode normalize(String type, JsonNode data) throws Exception {
    if (type.startsWith("FP") || type.equals("BF16")) {
      List<Double> doubles = new ArrayList<>();
      data.forEach(d -> doubles.add(d.asDouble()));
      StringBuilder sb = new StringBuilder("[");
      for (int i = 0; i < doubles.size(); i++) {
        sb.append(i == 0 ? "" : ",").append(doubles.get(i));
      }
      return JSON.readTree(sb.append("]").toString());
    }
    return data;
  }

  @Test
  void binaryExtensionBothWays() throws Exception {
    String header = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],"
        + "\"parameters\":{\"binary_data_size\":64}}],\"outputs\":[{\"name\":\"OUTPUT0\",\"parameters\":{\"binary_data\":true}}]}";
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer body = ByteBuffer.allocate(json.length + 64).order(ByteOrder.LITTLE_ENDIAN);
    body.put(json);
    for (int i = 0; i < 16; i++) {
      body.putFloat(i * 0.5f);
    }
    HttpResponse<byte[]> response = http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/identity_fp32/infer"))
        .header("Inference-Header-Content-Length", Integer.toString(json.length))
        .header("Content-Type", "application/octet-stream")
        .POST(HttpRequest.BodyPublishers.ofByteArray(body.array())).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(response.statusCode()).isEqualTo(200);
    int headerLength = Integer.parseInt(response.headers().firstValue("Inference-Header-Content-Length").orElseThrow());
    JsonNode out = JSON.readTree(new String(response.body(), 0, headerLength, StandardCharsets.UTF_8));
    assertThat(out.get("outputs").get(0).get("parameters").get("binary_data_size").asInt()).isEqualTo(64);
    assertThat(out.get("outputs").get(0).has("data")).isFalse();
    ByteBuffer floats = ByteBuffer.wrap(response.body(), headerLength, 64).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      assertThat(floats.getFloat()).isEqualTo(i * 0.5f);
    }
    // binary_data_output asks for every output in binary; JSON input still works.
    StringBuilder data = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      data.append(i == 0 ? "" : ",").append(i);
    }
    HttpResponse<byte[]> all = post("/v2/models/identity_fp32/infer", "{\"parameters\":{\"binary_data_output\":true},"
        + "\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[" + data + "]}]}");
    assertThat(all.statusCode()).isEqualTo(200);
    assertThat(all.headers().firstValue("Inference-Header-Content-Length")).isPresent();
    assertThat(all.body().length - Integer.parseInt(all.headers().firstValue("Inference-Header-Content-Length").get()))
        .isEqualTo(64);
  }

  @Test
  void badRequestsAreAnsweredWithStatusAndMessage() throws Exception {
    HttpResponse<byte[]> malformed = post("/v2/models/simple/infer", "{\"inputs\": [");
    assertThat(malformed.statusCode()).isEqualTo(400);
    assertThat(error(malformed)).contains("malformed JSON");
    HttpResponse<byte[]> wrongType = post("/v2/models/identity_fp32/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[\"x\",1]}]}");
    assertThat(wrongType.statusCode()).isEqualTo(400);
    assertThat(error(wrongType)).contains("INPUT0").contains("number");
    HttpResponse<byte[]> count = post("/v2/models/identity_fp32/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[1,2,3]}]}");
    assertThat(count.statusCode()).isEqualTo(400);
    assertThat(error(count)).contains("3 values");
    HttpResponse<byte[]> shape = post("/v2/models/identity_fp32/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[1,2,3]}]}");
    assertThat(shape.statusCode()).isEqualTo(400);
    HttpResponse<byte[]> datatype = post("/v2/models/identity_fp32/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[1,16],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}");
    assertThat(datatype.statusCode()).isEqualTo(400);
    HttpResponse<byte[]> range = post("/v2/models/" + ExampleModels.datatypeModelName("INT8") + "/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT8\",\"shape\":[1,4],\"data\":[1,2,3,300]}]}");
    assertThat(range.statusCode()).isEqualTo(400);
    assertThat(error(range)).contains("300");
    HttpResponse<byte[]> unknown = post("/v2/models/nope/infer", "{\"inputs\":[]}");
    assertThat(unknown.statusCode()).isEqualTo(404);
    HttpResponse<byte[]> output = post("/v2/models/identity_fp32/infer", "{\"inputs\":[{\"name\":\"INPUT0\","
        + "\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}],"
        + "\"outputs\":[{\"name\":\"NOPE\"}]}");
    assertThat(output.statusCode()).isEqualTo(400);
    assertThat(error(output)).contains("NOPE");
    HttpResponse<byte[]> badHeader = http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/identity_fp32/infer"))
        .header("Inference-Header-Content-Length", "99999")
        .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(badHeader.statusCode()).isEqualTo(400);
    HttpResponse<byte[]> binarySize = http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/identity_fp32/infer"))
        .header("Inference-Header-Content-Length", "95")
        .POST(HttpRequest.BodyPublishers.ofString(
            "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],\"parameters\":{\"binary_data_size\":64}}]}"
                .substring(0, 95) + "1234")).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(binarySize.statusCode()).isEqualTo(400);
    byte[] big = new byte[2 * 1024 * 1024];
    HttpResponse<byte[]> tooBig = http.send(HttpRequest.newBuilder(URI.create(base() + "/v2/models/identity_fp32/infer"))
        .POST(HttpRequest.BodyPublishers.ofByteArray(big)).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(tooBig.statusCode()).isEqualTo(413);
  }

  @Test
  void repositoryIndexLoadUnloadAndLogging() throws Exception {
    HttpResponse<byte[]> index = post("/v2/repository/index", "");
    assertThat(index.statusCode()).isEqualTo(200);
    assertThat(json(index).toString()).contains("\"name\":\"simple\"").contains("\"state\":\"READY\"");
    assertThat(post("/v2/repository/models/mlp_classifier/unload", "").statusCode()).isEqualTo(200);
    assertThat(get("/v2/models/mlp_classifier/ready").statusCode()).isEqualTo(400);
    assertThat(post("/v2/repository/models/mlp_classifier/load", "").statusCode()).isEqualTo(200);
    assertThat(get("/v2/models/mlp_classifier/ready").statusCode()).isEqualTo(200);
    assertThat(post("/v2/repository/models/nope/load", "").statusCode()).isEqualTo(404);
    HttpResponse<byte[]> setLevel = post("/v2/logging", "{\"level\":\"DEBUG\",\"logger\":\"io.quiver.batching\"}");
    assertThat(setLevel.statusCode()).isEqualTo(200);
    assertThat(json(setLevel).get("loggers").get("io.quiver.batching").asText()).isEqualTo("DEBUG");
    assertThat(post("/v2/logging", "{\"level\":\"LOUD\"}").statusCode()).isEqualTo(400);
    post("/v2/logging", "{\"level\":\"INFO\",\"logger\":\"io.quiver.batching\"}");
  }

  @Test
  void statisticsAndMetricsCountTheRequestsSent() throws Exception {
    String model = ExampleModels.NO_CONFIG_MODEL; // used by no other test here
    int sent = 5;
    for (int i = 0; i < sent; i++) {
      assertThat(post("/v2/models/" + model + "/infer",
          "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT64\",\"shape\":[1,8],\"data\":[1,2,3,4,5,6,7,8]}]}").statusCode())
          .isEqualTo(200);
    }
    assertThat(post("/v2/models/" + model + "/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT64\",\"shape\":[1,3],\"data\":[1,2,3]}]}").statusCode())
        .isEqualTo(400);
    JsonNode stats = json(get("/v2/models/" + model + "/stats")).get("model_stats").get(0);
    assertThat(stats.get("inference_stats").get("success").get("count").asLong()).isEqualTo(sent);
    assertThat(stats.get("inference_count").asLong()).isEqualTo(sent);
    assertThat(stats.get("batch_stats").get(0).get("batch_size").asInt()).isEqualTo(1);
    ModelStatisticsResponse grpc = fixture.stub().modelStatistics(ModelStatisticsRequest.newBuilder().setName(model).build());
    assertThat(grpc.getModelStats(0).getInferenceStats().getSuccess().getCount()).isEqualTo(sent);
    assertThat(json(get("/v2/models/stats")).get("model_stats").size()).isGreaterThan(1);

    Map<String, Double> before = scrape();
    String m = "model=\"" + model + "\"";
    String v = "version=\"1\"";
    assertThat(sample(before, "quiver_inference_success_total", m, v)).isEqualTo(sent);
    assertThat(sample(before, "quiver_inference_failure_total", m, v, "reason=\"invalid\"")).isEqualTo(1);
    assertThat(sample(before, "quiver_request_duration_seconds_count", m, v)).isEqualTo(sent + 1);
    assertThat(sample(before, "quiver_request_duration_seconds_bucket", m, v, "le=\"+Inf\"")).isEqualTo(sent + 1);
    assertThat(sample(before, "quiver_batch_size_bucket", m, v, "le=\"1.0\"")).isEqualTo(sent);
    assertThat(sample(before, "quiver_compute_infer_duration_seconds_count", m, v)).isEqualTo(sent);
    assertThat(sample(before, "quiver_request_queue_duration_seconds_count", m, v)).isEqualTo(sent);
    for (String phase : List.of("input", "infer", "output")) {
      assertThat(sample(before, "quiver_request_compute_duration_seconds_bucket", m, v, "phase=\"" + phase + "\"",
          "le=\"+Inf\"")).isEqualTo(sent);
    }
    assertThat(sample(before, "quiver_inference_count_total", m, v)).isEqualTo(sent);
    assertThat(sample(before, "quiver_pending_requests", m, v)).isEqualTo(0);
    assertThat(before.get("quiver_model_versions{state=\"READY\"}")).isGreaterThan(5);
    assertThat(before.keySet()).anyMatch(k -> k.startsWith("jvm_gc_collection_seconds_count"));
    // Data-plane gRPC calls are timed by method and code (the ModelStatistics call above). A call's close
    // is recorded once its trailers are written, which can come a moment after the client has the answer.
    String calls = "quiver_grpc_server_call_duration_seconds_count";
    Map<String, Double> timed = before;
    for (long until = System.nanoTime() + 10_000_000_000L; System.nanoTime() < until
        && valueOr0(sample(timed, calls, "code=\"OK\"", "method=\"ModelStatistics\"")) < 1; ) {
      Thread.sleep(20);
      timed = scrape();
    }
    assertThat(sample(timed, calls, "code=\"OK\"", "method=\"ModelStatistics\"")).isGreaterThanOrEqualTo(1);

    assertThat(post("/v2/models/" + model + "/infer",
        "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT64\",\"shape\":[1,8],\"data\":[1,2,3,4,5,6,7,8]}]}").statusCode())
        .isEqualTo(200);
    // The answer can reach the client a moment before its figures are recorded (they are counted after the
    // answer is handed to the transport): wait for them, never for a fixed time.
    Map<String, Double> after = scrape();
    for (long until = System.nanoTime() + 10_000_000_000L; System.nanoTime() < until
        && !(sent + 1 == valueOr0(sample(after, "quiver_inference_success_total", m, v))
            && sent + 1 == valueOr0(sample(after, "quiver_request_queue_duration_seconds_count", m, v))
            && sent + 2 == valueOr0(sample(after, "quiver_request_duration_seconds_bucket", m, v, "le=\"+Inf\""))
            && sent + 1 == valueOr0(sample(after, "quiver_batch_size_bucket", m, v, "le=\"1.0\""))); ) {
      Thread.sleep(20);
      after = scrape();
    }
    assertThat(sample(after, "quiver_inference_success_total", m, v)).isEqualTo(sent + 1);
    assertThat(sample(after, "quiver_request_duration_seconds_bucket", m, v, "le=\"+Inf\"")).isEqualTo(sent + 2);
    assertThat(sample(after, "quiver_batch_size_bucket", m, v, "le=\"1.0\"")).isEqualTo(sent + 1);
    assertThat(sample(after, "quiver_request_queue_duration_seconds_count", m, v)).isEqualTo(sent + 1);
  }

  /** The value of the one sample of {@code name} whose labels include every given {@code label="value"}. */
  static double valueOr0(Double value) {
    return value == null ? 0 : value;
  }

  static Double sample(Map<String, Double> samples, String name, String... labels) {
    Double found = null;
    for (Map.Entry<String, Double> e : samples.entrySet()) {
      String key = e.getKey();
      if (!key.startsWith(name + "{")) {
        continue;
      }
      List<String> present = List.of(key.substring(name.length() + 1, key.length() - 1).split(","));
      if (present.containsAll(List.of(labels))) {
        assertThat(found).as("more than one sample matches " + name + List.of(labels)).isNull();
        found = e.getValue();
      }
    }
    return found;
  }

  /** Parses the text exposition format: "name{labels} value" per sample line. */
  static Map<String, Double> scrape() throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + fixture.server.metricsPort() + "/metrics")).GET().build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);
    Map<String, Double> samples = new HashMap<>();
    for (String line : response.body().split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int space = line.lastIndexOf(' ');
      samples.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
    }
    return samples;
  }
}
