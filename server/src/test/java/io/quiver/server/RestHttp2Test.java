package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.handler.codec.http.HttpMethod;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.transport.ConnectionOptions;
import java.io.InputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * REST v2 over HTTP/2 with prior knowledge on the REST port, through Netty's real HTTP/2 client: the
 * same answers as HTTP/1.1 (binary extension and JSON), hundreds of concurrent streams on one
 * connection each answered with its own tensor, a bad request answered on its stream while the
 * connection goes on, the per-connection byte bound, an idle connection closed by its timeout, a body
 * split over DATA frames, 413 and 408 on a stream, and streams reset mid-upload giving their bytes back.
 */
class RestHttp2Test {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir
  static Path repository;
  static ServerFixture fixture;

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    fixture = new ServerFixture(repository, ControlMode.NONE, List.of());
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
  }

  /** A server of its own on the test's repository, with these connection bounds and REST body limit. */
  private static ServerFixture boundedServer(ConnectionOptions connections, int maxBodyBytes) throws Exception {
    return new ServerFixture(new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 1, 2_000, 0, 0, maxBodyBytes, false).withConnections(connections));
  }

  /** A binary-extension request for identity_fp32 whose 16 floats are {@code base + i}. */
  static byte[] binaryRequest(float base, String id) {
    ByteBuffer body = binaryBody(id, 1);
    for (int i = 0; i < 16; i++) {
      body.putFloat(base + i);
    }
    return body.array();
  }

  /** A binary-extension request of {@code rows} rows of 16 zeros. */
  static byte[] rowsRequest(int rows) {
    return binaryBody("", rows).array();
  }

  /** The JSON header of a {@code rows}×16 FP32 binary request, positioned at the start of its tensor bytes. */
  private static ByteBuffer binaryBody(String id, int rows) {
    byte[] json = ("{\"id\":\"" + id + "\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":["
        + rows + ",16],\"parameters\":{\"binary_data_size\":" + rows * 64 + "}}],\"outputs\":[{\"name\":\"OUTPUT0\","
        + "\"parameters\":{\"binary_data\":true}}]}").getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(json.length + rows * 64).order(ByteOrder.LITTLE_ENDIAN).put(json);
  }

  static Map<String, String> binaryHeaders(byte[] request) {
    return binaryHeaders(request, 1);
  }

  static Map<String, String> binaryHeaders(byte[] request, int rows) {
    int headerLength = request.length - 64 * rows;
    return Map.of("inference-header-content-length", Integer.toString(headerLength),
        "content-type", "application/octet-stream");
  }

  /** The floats of a binary answer's only output, after checking its JSON header names {@code id}. */
  static float[] outputFloats(H2cClient.Answer answer, String id) throws Exception {
    assertThat(answer.status()).as(answer.text()).isEqualTo(200);
    int headerLength = Integer.parseInt(answer.headers().get("inference-header-content-length"));
    JsonNode header = JSON.readTree(new String(answer.body(), 0, headerLength, StandardCharsets.UTF_8));
    assertThat(header.get("id").asText()).isEqualTo(id);
    assertThat(header.get("outputs").get(0).get("parameters").get("binary_data_size").asInt()).isEqualTo(64);
    ByteBuffer floats = ByteBuffer.wrap(answer.body(), headerLength, 64).order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[16];
    for (int i = 0; i < 16; i++) {
      out[i] = floats.getFloat();
    }
    return out;
  }

  @Test
  void http2Answers_areTheAnswersHttp11Gives() throws Exception {
    int port = fixture.server.httpPort();
    HttpClient http11 = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try (H2cClient h2 = new H2cClient(port)) {
      assertThat(h2.get("/v2/health/ready").status()).isEqualTo(200);
      String metadata11 = http11.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
          + "/v2/models/identity_fp32")).build(), HttpResponse.BodyHandlers.ofString()).body();
      H2cClient.Answer metadata2 = h2.get("/v2/models/identity_fp32");
      assertThat(metadata2.status()).isEqualTo(200);
      assertThat(metadata2.text()).isEqualTo(metadata11);
      // No HTTP/1.1 connection headers on HTTP/2 (they are malformed there, RFC 9113 8.2.2).
      assertThat(metadata2.headers()).doesNotContainKeys("connection", "keep-alive");

      byte[] request = binaryRequest(0.5f, "same");
      byte[] answer11 = http11.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
              + "/v2/models/identity_fp32/infer"))
          .header("Inference-Header-Content-Length", Integer.toString(request.length - 64))
          .POST(HttpRequest.BodyPublishers.ofByteArray(request)).build(), HttpResponse.BodyHandlers.ofByteArray()).body();
      H2cClient.Answer answer2 = h2.post("/v2/models/identity_fp32/infer", request, binaryHeaders(request));
      assertThat(outputFloats(answer2, "same")).containsExactly(0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f,
          9.5f, 10.5f, 11.5f, 12.5f, 13.5f, 14.5f, 15.5f);
      assertThat(answer2.body()).isEqualTo(answer11);

      // JSON in, JSON out.
      H2cClient.Answer json = h2.post("/v2/models/identity_fp32/infer", ("{\"inputs\":[{\"name\":\"INPUT0\","
          + "\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}")
          .getBytes(StandardCharsets.UTF_8), Map.of("content-type", "application/json"));
      assertThat(json.status()).isEqualTo(200);
      assertThat(JSON.readTree(json.body()).get("outputs").get(0).get("data").get(15).asDouble()).isEqualTo(16.0);
    }
  }

  @Test
  void manyStreamsOnOneConnection_eachGetsItsOwnAnswer() throws Exception {
    try (H2cClient h2 = new H2cClient(fixture.server.httpPort())) {
      Semaphore inFlight = new Semaphore(64);
      List<CompletableFuture<H2cClient.Answer>> answers = new ArrayList<>();
      int n = 600;
      for (int i = 0; i < n; i++) {
        inFlight.acquire();
        byte[] request = binaryRequest(i * 100f, "r" + i);
        CompletableFuture<H2cClient.Answer> answer = h2.send(HttpMethod.POST, "/v2/models/identity_fp32/infer", request,
            binaryHeaders(request));
        answer.whenComplete((a, e) -> inFlight.release());
        answers.add(answer);
      }
      for (int i = 0; i < n; i++) {
        float[] out = outputFloats(answers.get(i).get(30, TimeUnit.SECONDS), "r" + i);
        for (int k = 0; k < 16; k++) {
          assertThat(out[k]).isEqualTo(i * 100f + k);
        }
      }
      assertThat(h2.connection.isActive()).isTrue(); // one connection carried them all
    }
  }

  @Test
  void badRequestOnOneStream_isAnsweredThere_andTheConnectionGoesOn() throws Exception {
    try (H2cClient h2 = new H2cClient(fixture.server.httpPort())) {
      H2cClient.Answer bad = h2.post("/v2/models/identity_fp32/infer", "{\"inputs\": [".getBytes(StandardCharsets.UTF_8),
          Map.of());
      assertThat(bad.status()).isEqualTo(400);
      assertThat(bad.text()).contains("malformed JSON");
      H2cClient.Answer unknown = h2.post("/v2/models/nope/infer", binaryRequest(0, "x"), binaryHeaders(binaryRequest(0, "x")));
      assertThat(unknown.status()).isEqualTo(404);
      assertThat(h2.get("/v2/nothing/here").status()).isEqualTo(404);
      byte[] good = binaryRequest(7f, "after");
      assertThat(outputFloats(h2.post("/v2/models/identity_fp32/infer", good, binaryHeaders(good)), "after")[0])
          .isEqualTo(7f);
    }
  }

  @Test
  void connectionBounds_applyToHttp2() throws Exception {
    ConnectionOptions bounded = ConnectionOptions.defaults()
        .withTimeouts(2_000, 2_000, 2_000, 1_500)
        .withAnswerBounds(16 * 1024, 512L << 20, 64);
    try (ServerFixture small = boundedServer(bounded, 1024 * 1024)) {
      int port = small.server.httpPort();
      try (H2cClient h2 = new H2cClient(port)) {
        // A body past the connection's byte bound: 429 on its stream; small requests still pass.
        H2cClient.Answer big = h2.post("/v2/models/identity_fp32/infer", new byte[64 * 1024],
            Map.of("content-type", "application/json"));
        assertThat(big.status()).isEqualTo(429);
        assertThat(big.text()).contains("holds more than 16384 bytes");
        byte[] good = binaryRequest(3f, "ok");
        assertThat(outputFloats(h2.post("/v2/models/identity_fp32/infer", good, binaryHeaders(good)), "ok")[1])
            .isEqualTo(4f);
        // A client that grants no flow-control window reads no answer: the first answers are held up to the
        // bound, later ones are dropped (429 in their headers, which flow control does not hold back).
        try (H2cClient deaf = new H2cClient(port, 0)) {
          byte[] rows = rowsRequest(100); // 6.4 KB answers: two fit the 16 KiB bound, the third does not
          List<CompletableFuture<Integer>> statuses = new ArrayList<>();
          for (int i = 0; i < 6; i++) {
            CompletableFuture<Integer> status = new CompletableFuture<>();
            deaf.send(HttpMethod.POST, "/v2/models/identity_fp32/infer", rows, binaryHeaders(rows, 100), status);
            statuses.add(status);
            status.get(30, TimeUnit.SECONDS); // one at a time: which ones are held is then certain
          }
          List<Integer> codes = new ArrayList<>();
          for (CompletableFuture<Integer> s : statuses) {
            codes.add(s.get());
          }
          assertThat(codes).containsExactly(200, 200, 429, 429, 429, 429);
        }
        // Then nothing: the idle timeout closes the connection (GOAWAY, then close).
        long t0 = System.nanoTime();
        assertThat(h2.connection.closeFuture().await(10, TimeUnit.SECONDS)).isTrue();
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertThat(ms).as("idle HTTP/2 connection closed after (ms)").isBetween(500L, 8_000L);
      }
      // Part of the HTTP/2 preface, then silence: closed within the handshake timeout.
      try (Socket slow = new Socket("127.0.0.1", port)) {
        slow.getOutputStream().write("PRI * HTTP/2.0\r\n".getBytes(StandardCharsets.US_ASCII));
        slow.setSoTimeout(10_000);
        long t0 = System.nanoTime();
        InputStream in = slow.getInputStream();
        while (in.read() >= 0) {
          // nothing is answered before the preface ends; read until closed
        }
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertThat(ms).as("partial preface closed after (ms)").isBetween(1_000L, 8_000L);
      }
    }
  }

  @Test
  void streamBounds_bodiesSplitOverFrames_tooLargeBodies_andRequestsThatNeverEnd() throws Exception {
    ConnectionOptions bounded = ConnectionOptions.defaults()
        .withTimeouts(2_000, 2_000, 1_500, 30_000)
        .withAnswerBounds(4 << 20, 512L << 20, 64);
    int bodyLimit = 256 * 1024;
    try (ServerFixture small = boundedServer(bounded, bodyLimit);
        H2cClient h2 = new H2cClient(small.server.httpPort())) {
      // 256 distinct rows (the model's max_batch_size): a 16 KB tensor after its JSON, more than one DATA frame
      // holds (16 KB at most), read as one request and answered row for row.
      ByteBuffer split = binaryBody("split", 256);
      int tensorAt = split.position();
      for (int i = 0; i < 256 * 16; i++) {
        split.putFloat(i);
      }
      byte[] rows = split.array();
      H2cClient.Answer answer = h2.post("/v2/models/identity_fp32/infer", rows, binaryHeaders(rows, 256));
      assertThat(answer.status()).as(answer.text()).isEqualTo(200);
      int headerLength = Integer.parseInt(answer.headers().get("inference-header-content-length"));
      assertThat(java.util.Arrays.copyOfRange(answer.body(), headerLength, answer.body().length))
          .isEqualTo(java.util.Arrays.copyOfRange(rows, tensorAt, rows.length));
      // A body over the REST body limit: 413 on its stream, naming the limit.
      byte[] huge = new byte[bodyLimit + 1];
      H2cClient.Answer tooLarge = h2.post("/v2/models/identity_fp32/infer", huge,
          Map.of("content-type", "application/json"));
      assertThat(tooLarge.status()).isEqualTo(413);
      assertThat(tooLarge.text()).contains("limit of " + bodyLimit + " bytes");
      // Headers and then nothing: 408 once the request timeout passes; the stream is reset, not the connection.
      long t0 = System.nanoTime();
      H2cClient.Answer late = h2.sendHeadersOnly(HttpMethod.POST, "/v2/models/identity_fp32/infer",
          Map.of("content-type", "application/json")).get(30, TimeUnit.SECONDS);
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertThat(late.status()).isEqualTo(408);
      assertThat(ms).as("unfinished request answered after (ms)").isBetween(1_000L, 8_000L);
      byte[] good = binaryRequest(1f, "still");
      assertThat(outputFloats(h2.post("/v2/models/identity_fp32/infer", good, binaryHeaders(good)), "still")[15])
          .isEqualTo(16f);
      assertThat(h2.connection.isActive()).isTrue();
    }
  }

  @Test
  void streamsResetMidUpload_giveTheirBytesBack() throws Exception {
    // A 64 KiB bound per connection; twenty uploads of 8 KiB, each reset before it ends, 160 KiB in all.
    // Their bytes must leave the connection's count when their streams go, or the requests after the
    // eighth would be refused.
    ConnectionOptions bounded = ConnectionOptions.defaults()
        .withTimeouts(2_000, 2_000, 10_000, 30_000)
        .withAnswerBounds(64 * 1024, 512L << 20, 64);
    try (ServerFixture small = boundedServer(bounded, 1024 * 1024);
        H2cClient h2 = new H2cClient(small.server.httpPort())) {
      byte[] part = new byte[8 * 1024];
      for (int i = 0; i < 20; i++) {
        h2.sendPartAndReset(HttpMethod.POST, "/v2/models/identity_fp32/infer", part,
            Map.of("content-type", "application/json", "content-length", Integer.toString(2 * part.length)))
            .get(10, TimeUnit.SECONDS);
        byte[] good = binaryRequest(i, "after-" + i);
        assertThat(outputFloats(h2.post("/v2/models/identity_fp32/infer", good, binaryHeaders(good)), "after-" + i)[0])
            .isEqualTo((float) i);
      }
      assertThat(h2.connection.isActive()).isTrue();
    }
  }
}
