package io.quiver.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The console's HTTP surface without a browser: protective headers, forgery checks, bad input, the live
 * sample's shape, archive uploads (.zip and .tar.gz) through the control plane, and the console turned off.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConsoleApiTest {
  static final ObjectMapper JSON = new ObjectMapper();
  ConsoleFixture fixture;
  HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  String csrf;
  Path scratch;

  @BeforeAll
  void start(@TempDir Path repository, @TempDir Path scratchDir) throws Exception {
    scratch = scratchDir;
    fixture = new ConsoleFixture(repository, null);
    csrf = JSON.readTree(get("/console/api/session").body()).get("csrf").asText();
  }

  @AfterAll
  void stop() throws Exception {
    fixture.close();
  }

  @Test
  void everyAnswer_carriesAStrictContentSecurityPolicyAndFrameProtection() throws Exception {
    for (String path : List.of("/console/", "/console/app.js", "/console/vendor/uplot/uPlot.esm.js",
        "/console/api/models", "/console/no-such-file")) {
      HttpResponse<String> r = get(path);
      assertThat(r.headers().firstValue("content-security-policy")).get().asString()
          .contains("default-src 'none'").contains("script-src 'self'").contains("frame-ancestors 'none'")
          .doesNotContain("unsafe-inline").doesNotContain("unsafe-eval");
      assertThat(r.headers().firstValue("x-frame-options")).contains("DENY");
      assertThat(r.headers().firstValue("x-content-type-options")).contains("nosniff");
    }
    assertThat(get("/console/").headers().firstValue("content-type")).contains("text/html; charset=utf-8");
    assertThat(get("/console/vendor/uplot/uPlot.esm.js").body()).contains("uPlot");
    assertThat(get("/console/no-such-file").statusCode()).isEqualTo(404);
    assertThat(get("/console/api/models").headers().firstValue("cache-control")).contains("no-store");
    HttpResponse<String> root = get("/console");
    assertThat(root.statusCode()).isEqualTo(301);
    assertThat(root.headers().firstValue("location")).contains("/console/");
    // An unchanged file is not sent again.
    String etag = get("/console/app.js").headers().firstValue("etag").orElseThrow();
    assertThat(send(HttpRequest.newBuilder(uri("/console/app.js")).header("If-None-Match", etag).GET()).statusCode())
        .isEqualTo(304);
  }

  @Test
  void changes_withoutTheToken_orFromAnotherOrigin_areRefused() throws Exception {
    String unload = "/console/api/models/identity_bytes/unload";
    assertThat(post(unload, "{}", Map.of()).statusCode()).isEqualTo(403);
    assertThat(post(unload, "{}", Map.of("x-quiver-csrf", "0".repeat(64))).statusCode()).isEqualTo(403);
    HttpResponse<String> crossOrigin = post(unload, "{}", Map.of("x-quiver-csrf", csrf, "Origin", "http://attacker.example"));
    assertThat(crossOrigin.statusCode()).isEqualTo(403);
    assertThat(crossOrigin.body()).contains("cross-origin request refused");
    assertThat(post(unload, "{}", Map.of("x-quiver-csrf", csrf, "Sec-Fetch-Site", "cross-site")).statusCode()).isEqualTo(403);
    assertThat(fixture.server.models().isReady("identity_bytes", "")).isTrue();
    // The same request from the console's own origin goes through, and the model is back after a load.
    String origin = "http://127.0.0.1:" + fixture.server.httpPort();
    assertThat(post(unload, "{}", Map.of("x-quiver-csrf", csrf, "Origin", origin, "Sec-Fetch-Site", "same-origin"))
        .statusCode()).isEqualTo(200);
    assertThat(fixture.server.models().isReady("identity_bytes", "")).isFalse();
    assertThat(post("/console/api/models/identity_bytes/load", "{\"latest\": 1}", Map.of("x-quiver-csrf", csrf))
        .statusCode()).isEqualTo(200);
    assertThat(fixture.server.models().isReady("identity_bytes", "")).isTrue();
  }

  @Test
  void badInput_getsAClearErrorNamingTheField() throws Exception {
    Map<String, String> token = Map.of("x-quiver-csrf", csrf);
    assertError(post("/console/api/models/simple/traffic", "{\"weights\": {\"x\": 1}}", token), 400, "'x' is not a version number");
    assertError(post("/console/api/models/simple/traffic", "{\"weights\": {\"1\": -5}}", token), 400, "whole number");
    assertError(post("/console/api/models/simple/traffic", "{\"weights\": [1]}", token), 400, "'weights' must be an object");
    assertError(post("/console/api/models/simple/load", "{\"versions\": [\"a\"]}", token), 400, "'versions'");
    assertError(post("/console/api/models/simple/load", "{not json", token), 400, "malformed JSON");
    assertError(post("/console/api/models/no_such_model/unload", "{}", token), 404, "no_such_model");
    assertError(post("/console/api/models/.hidden/unload", "{}", token), 400, "model");
    assertError(post("/console/api/models/simple/explode", "{}", token), 404, "no such console action");
    assertError(get("/console/api/live"), 400, "name the model");
    assertError(post("/console/api/uploads/0123/chunk", "x", token), 404, "no open upload");
    assertError(post("/console/api/uploads", "{\"model\": \"m\", \"archive\": \"m.rar\"}", token), 400, ".zip, .tar");
    assertError(send(HttpRequest.newBuilder(uri("/console/api/models")).DELETE()), 501, "GET and POST only");
    assertThat(fixture.server.models().isReady("simple", "")).isTrue();
  }

  @Test
  void liveSample_isCumulativeAndComesFromTheServersStatistics() throws Exception {
    for (int i = 0; i < 5; i++) {
      fixture.inference(null).modelInfer(ModelInferRequest.newBuilder().setModelName("mlp_classifier")
          .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("features").setDatatype("FP32")
              .addShape(1).addShape(16))
          .addRawInputContents(com.google.protobuf.ByteString.copyFrom(new byte[64])).build());
    }
    JsonNode live = JSON.readTree(get("/console/api/live?model=mlp_classifier").body());
    JsonNode v1 = live.get("versions").get(0);
    assertThat(v1.get("version").asLong()).isEqualTo(1);
    assertThat(v1.get("success").asLong()).isGreaterThanOrEqualTo(5);
    long bucketed = 0;
    for (JsonNode n : v1.get("latency").get("n")) {
      bucketed += n.asLong();
    }
    assertThat(bucketed).isEqualTo(v1.get("success").asLong() + sum(v1.get("failures")));
    assertThat(v1.get("latency").get("n").size()).isEqualTo(v1.get("latency").get("le").size() + 1);
    assertThat(v1.get("batches").get("1").asLong()).isGreaterThanOrEqualTo(1);
    assertThat(v1.get("failures").fieldNames()).toIterable().containsExactlyInAnyOrder("cancelled", "invalid",
        "rejected", "runtime", "timeout");
  }

  @Test
  void archiveUploads_zipAndTarGz_becomeVersionsThatServe() throws Exception {
    ExampleModels.writeIdentityFp32(scratch);
    byte[] onnx = Files.readAllBytes(scratch.resolve("identity_fp32/1/model.onnx"));
    String config = Files.readString(scratch.resolve("identity_fp32/config.pbtxt"));

    ByteArrayOutputStream zip = new ByteArrayOutputStream();
    try (ZipOutputStream z = new ZipOutputStream(zip)) {
      z.putNextEntry(new ZipEntry("model.onnx"));
      z.write(onnx);
      z.closeEntry();
      z.putNextEntry(new ZipEntry("__MACOSX/._model.onnx"));
      z.write(new byte[] {1, 2, 3});
      z.closeEntry();
    }
    JsonNode zipped = upload("zipped_identity", "model.zip", zip.toByteArray(), config.replace("identity_fp32", "zipped_identity"));
    assertThat(zipped.get("version").asLong()).isEqualTo(1);
    assertThat(zipped.get("files").asInt()).isEqualTo(1);
    assertThat(zipped.get("digests").get(0).get("sha256").asText()).isEqualTo(sha256(onnx));
    assertThat(zipped.get("archiveSha256").asText()).isEqualTo(sha256(zip.toByteArray()));
    assertThat(infer("zipped_identity")).isEqualTo("1");

    ByteArrayOutputStream tgz = new ByteArrayOutputStream();
    try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new GZIPOutputStream(tgz))) {
      TarArchiveEntry entry = new TarArchiveEntry("v2/model.onnx"); // one top-level folder: dropped
      entry.setSize(onnx.length);
      tar.putArchiveEntry(entry);
      tar.write(onnx);
      tar.closeArchiveEntry();
    }
    JsonNode second = upload("zipped_identity", "v2.tar.gz", tgz.toByteArray(), null);
    assertThat(second.get("version").asLong()).isEqualTo(2);
    assertThat(second.get("digests").get(0).get("path").asText()).isEqualTo("model.onnx");
    assertThat(infer("zipped_identity")).isEqualTo("2");
  }

  @Test
  void aCorruptedChunk_failsTheUpload_andLeavesNoVersion() throws Exception {
    Map<String, String> token = Map.of("x-quiver-csrf", csrf);
    JsonNode session = JSON.readTree(post("/console/api/uploads", "{\"model\": \"corrupted\"}", token).body());
    String id = session.get("id").asText();
    HttpResponse<String> chunk = post("/console/api/uploads/" + id + "/chunk", "some bytes", Map.of("x-quiver-csrf", csrf,
        "x-quiver-path", "model.onnx", "x-quiver-last", "1", "x-quiver-sha256", "ab".repeat(32)));
    assertError(chunk, 400, "changed on the way");
    assertError(post("/console/api/uploads/" + id + "/finish", "{}", token), 404, "no open upload");
    assertThat(Files.exists(Path.of(fixture.server.models().repository().location()).resolve("corrupted"))).isFalse();
  }

  @Test
  void consoleOff_leavesNoConsolePath() throws Exception {
    Path repository = scratch.resolve("off-repo");
    ExampleModels.writeSimple(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 1, 2_000, 0, -1, 1024 * 1024, false).withConsole(false);
    try (QuiverServer off = new QuiverServer(options).start()) {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + off.httpPort()
          + "/console/")).GET().build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(404);
      assertThat(r.body()).contains("no such path");
      assertThat(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + off.httpPort() + "/v2/health/ready"))
          .GET().build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(200);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private JsonNode upload(String model, String archive, byte[] bytes, String config) throws Exception {
    Map<String, String> token = Map.of("x-quiver-csrf", csrf);
    var header = JSON.createObjectNode().put("model", model).put("archive", archive).put("load", true);
    if (config != null) {
      header.put("config", config);
    }
    HttpResponse<String> created = post("/console/api/uploads", header.toString(), token);
    assertThat(created.statusCode()).as(created.body()).isEqualTo(200);
    String id = JSON.readTree(created.body()).get("id").asText();
    HttpResponse<String> chunk = send(HttpRequest.newBuilder(uri("/console/api/uploads/" + id + "/chunk"))
        .header("x-quiver-csrf", csrf).header("x-quiver-path", archive).header("x-quiver-last", "1")
        .header("x-quiver-sha256", sha256(bytes)).POST(HttpRequest.BodyPublishers.ofByteArray(bytes)));
    assertThat(chunk.statusCode()).as(chunk.body()).isEqualTo(200);
    HttpResponse<String> finished = post("/console/api/uploads/" + id + "/finish", "{}", token);
    assertThat(finished.statusCode()).as(finished.body()).isEqualTo(200);
    return JSON.readTree(finished.body());
  }

  private String infer(String model) {
    return fixture.inference(null).modelInfer(ModelInferRequest.newBuilder().setModelName(model)
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(16))
        .addRawInputContents(com.google.protobuf.ByteString.copyFrom(new byte[64])).build()).getModelVersion();
  }

  private static long sum(JsonNode object) {
    long total = 0;
    for (JsonNode n : object) {
      total += n.asLong();
    }
    return total;
  }

  private static void assertError(HttpResponse<String> r, int status, String message) throws Exception {
    assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
    assertThat(JSON.readTree(r.body()).get("error").asText()).contains(message);
  }

  private URI uri(String path) {
    return URI.create(fixture.base + path);
  }

  private HttpResponse<String> get(String path) throws Exception {
    return send(HttpRequest.newBuilder(uri(path)).GET());
  }

  private HttpResponse<String> post(String path, String body, Map<String, String> headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).POST(HttpRequest.BodyPublishers.ofString(body));
    headers.forEach(b::header);
    return send(b);
  }

  private HttpResponse<String> send(HttpRequest.Builder b) throws Exception {
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
