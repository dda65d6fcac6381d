package io.quiver.bench.echo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quiver.bench.perf.HttpEndpoint;
import io.quiver.bench.perf.HttpInferRequest;
import io.quiver.bench.perf.InputData;
import io.quiver.bench.perf.LoadGenerator;
import io.quiver.bench.perf.PointResult;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The REST v2 echo over loopback: answers mirror requests byte for byte, bad bodies get 400, perf drives it. */
class HttpEchoTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static EchoServer echo;
  private static final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeAll
  static void start() throws Exception {
    echo = EchoServer.create("127.0.0.1", 0, 1).withHttpPort(0).start();
  }

  @AfterAll
  static void stop() {
    echo.close();
  }

  private static URI uri(String path) {
    return URI.create("http://127.0.0.1:" + echo.httpPort() + path);
  }

  private static ModelMetadataResponse metadata() throws Exception {
    try (HttpEndpoint http = HttpEndpoint.open("127.0.0.1:" + echo.httpPort(), null, 1)) {
      http.awaitModelReady("m", "", TimeUnit.SECONDS.toNanos(10));
      return http.metadata("m", "");
    }
  }

  @Test
  void metadata_describesTheConfiguredInputAndItsOutput() throws Exception {
    ModelMetadataResponse m = metadata();
    assertThat(m.getName()).isEqualTo("m");
    assertThat(m.getInputs(0).getName()).isEqualTo("INPUT0");
    assertThat(m.getInputs(0).getShapeList()).containsExactly(-1L, 16L);
    assertThat(m.getOutputs(0).getName()).isEqualTo("OUTPUT0");
    HttpResponse<String> stats = client.send(HttpRequest.newBuilder(uri("/v2/models/m/stats")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(stats.statusCode()).isEqualTo(404);
  }

  @Test
  void binaryInfer_answersTheSameBytesUnderAnOutputName() throws Exception {
    ModelInferRequest proto = InputData.random(metadata(), "m", "", 3, Map.of(), 7, 16);
    HttpInferRequest request = HttpInferRequest.encode(proto, "127.0.0.1", false);
    HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri(request.path()))
        .header("Content-Type", "application/octet-stream")
        .header(HttpInferRequest.HEADER_LENGTH, request.header(HttpInferRequest.HEADER_LENGTH))
        .POST(HttpRequest.BodyPublishers.ofByteArray(request.bodyBytes())).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(200);
    int headerLength = Integer.parseInt(r.headers().firstValue(HttpInferRequest.HEADER_LENGTH).orElseThrow());
    JsonNode header = JSON.readTree(new String(r.body(), 0, headerLength, StandardCharsets.UTF_8));
    JsonNode out = header.get("outputs").get(0);
    assertThat(out.get("name").asText()).isEqualTo("OUTPUT0");
    assertThat(out.get("datatype").asText()).isEqualTo("FP32");
    assertThat(out.get("shape").toString()).isEqualTo("[3,16]");
    assertThat(out.get("parameters").get("binary_data_size").asInt()).isEqualTo(3 * 16 * 4);
    byte[] tensor = Arrays.copyOfRange(r.body(), headerLength, r.body().length);
    assertThat(tensor).isEqualTo(proto.getRawInputContents(0).toByteArray());
  }

  @Test
  void jsonInfer_copiesTheDataArrays() throws Exception {
    String body = "{\"id\":\"r1\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[1.5,2.5]}]}";
    HttpResponse<String> r = client.send(HttpRequest.newBuilder(uri("/v2/models/m/infer"))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    JsonNode answer = JSON.readTree(r.body());
    assertThat(answer.get("id").asText()).isEqualTo("r1");
    assertThat(answer.get("outputs").get(0).get("data").toString()).isEqualTo("[1.5,2.5]");
  }

  @Test
  void unreadableBodies_get400AndTheConnectionKeepsServing() throws Exception {
    for (String bad : List.of("{not json", "[]", "")) {
      HttpResponse<String> r = client.send(HttpRequest.newBuilder(uri("/v2/models/m/infer"))
          .POST(HttpRequest.BodyPublishers.ofString(bad)).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as(bad).isEqualTo(400);
      assertThat(r.body()).contains("unreadable infer request");
    }
    HttpResponse<String> tooLong = client.send(HttpRequest.newBuilder(uri("/v2/models/m/infer"))
        .header(HttpInferRequest.HEADER_LENGTH, "999").POST(HttpRequest.BodyPublishers.ofString("{}")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(tooLong.statusCode()).isEqualTo(400);
    assertThat(tooLong.body()).contains(HttpInferRequest.HEADER_LENGTH);
    HttpResponse<String> ready = client.send(HttpRequest.newBuilder(uri("/v2/health/ready")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(ready.statusCode()).isEqualTo(200);
  }

  @Test
  void perfDrivesIt_closedLoop_withoutErrors() throws Exception {
    ModelMetadataResponse metadata = metadata();
    try (HttpEndpoint http = HttpEndpoint.open("127.0.0.1:" + echo.httpPort(), null, 8)) {
      ModelInferRequest proto = InputData.random(metadata, "m", "", 1, Map.of(), 1, 16);
      LoadGenerator.Settings settings = new LoadGenerator.Settings("m", false, TimeUnit.MILLISECONDS.toNanos(200),
          TimeUnit.MILLISECONDS.toNanos(300), 2, 0.10, ProcessHandle.current().pid(), 64,
          TimeUnit.SECONDS.toNanos(10), 1, 1, TimeUnit.SECONDS.toNanos(20));
      try (LoadGenerator generator = new LoadGenerator(http, null,
          List.of(HttpInferRequest.encode(proto, http.hostHeader(), false)), 1, settings, null)) {
        PointResult r = generator.runClosed(8);
        assertThat(r.firstError()).isEmpty();
        assertThat(r.errors()).isZero();
        assertThat(r.completed()).isPositive();
        assertThat(r.sent()).isEqualTo(r.completed());
      }
    }
  }
}
