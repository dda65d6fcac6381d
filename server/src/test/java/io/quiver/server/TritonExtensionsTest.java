package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.toFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.core.BytesElements;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ServerMetadataRequest;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.zip.Deflater;
import java.util.zip.DeflaterOutputStream;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Triton's classification extension, compressed REST bodies, the config as Triton's JSON, failures in
 * the statistics and the extensions ServerMetadata lists, over real gRPC and REST as tritonclient sends
 * them.
 */
class TritonExtensionsTest {
  @TempDir static Path repository;
  static ServerFixture fixture;
  static HttpClient http;
  static final ObjectMapper JSON = new ObjectMapper();
  static final float[] FEATURES = Tensors.sequence(48, -1f); // 3 rows of 16

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeMlpClassifier(repository);
    ExampleModels.writeSimple(repository);
    ExampleModels.writeIdentityBytes(repository);
    fixture = new ServerFixture(repository);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
  }

  static ModelInferRequest.Builder classifier() {
    return ModelInferRequest.newBuilder().setModelName("mlp_classifier")
        .addInputs(input("features", "FP32", 3, 16))
        .addRawInputContents(floats(FEATURES));
  }

  /** What Triton answers for top-k of these probabilities: "%f:index:label" per row, highest first. */
  static List<String> expectedTopK(float[] probabilities, int k) {
    List<String> out = new ArrayList<>();
    for (int row = 0; row < 3; row++) {
      int r = row;
      List<Integer> order = new ArrayList<>(List.of(0, 1, 2, 3));
      order.sort(Comparator.comparingDouble((Integer i) -> -probabilities[r * 4 + i]));
      for (int c = 0; c < k; c++) {
        int index = order.get(c);
        out.add(String.format(Locale.ROOT, "%f", probabilities[row * 4 + index]) + ":" + index + ":"
            + ExampleModels.MLP_LABELS.get(index));
      }
    }
    return out;
  }

  @Test
  void classification_overGrpc_answersTopKWithLabels() {
    float[] probabilities = toFloats(fixture.stub().modelInfer(classifier().build()).getRawOutputContents(0));
    // tritonclient.grpc InferRequestedOutput("probabilities", class_count=2).
    ModelInferResponse response = fixture.stub().modelInfer(classifier()
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("probabilities")
            .putParameters("classification", InferParameter.newBuilder().setInt64Param(2).build()))
        .build());
    ModelInferResponse.InferOutputTensor output = response.getOutputs(0);
    assertThat(output.getName()).isEqualTo("probabilities");
    assertThat(output.getDatatype()).isEqualTo("BYTES");
    assertThat(output.getShapeList()).containsExactly(3L, 2L);
    List<String> got = new ArrayList<>();
    for (byte[] element : BytesElements.decode(response.getRawOutputContents(0).asReadOnlyByteBuffer())) {
      got.add(new String(element, StandardCharsets.UTF_8));
    }
    assertThat(got).containsExactlyElementsOf(expectedTopK(probabilities, 2));
    // k larger than the classes: every class, ranked.
    ModelInferResponse all = fixture.stub().modelInfer(classifier()
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("probabilities")
            .putParameters("classification", InferParameter.newBuilder().setInt64Param(10).build()))
        .build());
    assertThat(all.getOutputs(0).getShapeList()).containsExactly(3L, 4L);
  }

  @Test
  void classification_overRest_answersTopKWithLabels() throws Exception {
    float[] probabilities = toFloats(fixture.stub().modelInfer(classifier().build()).getRawOutputContents(0));
    StringBuilder data = new StringBuilder();
    for (float f : FEATURES) {
      data.append(data.length() == 0 ? "" : ",").append(f);
    }
    String body = "{\"inputs\":[{\"name\":\"features\",\"shape\":[3,16],\"datatype\":\"FP32\",\"data\":[" + data
        + "]}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"classification\":1}}]}";
    HttpResponse<String> response = post("/v2/models/mlp_classifier/infer", body);
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    JsonNode output = JSON.readTree(response.body()).get("outputs").get(0);
    assertThat(output.get("datatype").asText()).isEqualTo("BYTES");
    assertThat(output.get("shape").toString()).isEqualTo("[3,1]");
    List<String> got = new ArrayList<>();
    output.get("data").forEach(n -> got.add(n.asText()));
    assertThat(got).containsExactlyElementsOf(expectedTopK(probabilities, 1));

    HttpResponse<String> zero = post("/v2/models/mlp_classifier/infer", body.replace("\"classification\":1",
        "\"classification\":0"));
    assertThat(zero.statusCode()).isEqualTo(400);
    assertThat(zero.body()).contains("classification");
    HttpResponse<String> text = post("/v2/models/mlp_classifier/infer", body.replace("\"classification\":1",
        "\"classification\":\"two\""));
    assertThat(text.statusCode()).isEqualTo(400);
    assertThat(text.body()).contains("classification");
  }

  @Test
  void classification_badRequests_areRefusedNamingTheParameter() {
    assertGrpc(() -> fixture.stub().modelInfer(classifier()
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("probabilities")
            .putParameters("classification", InferParameter.newBuilder().setInt64Param(0).build())).build()),
        Status.Code.INVALID_ARGUMENT, "classification");
    assertGrpc(() -> fixture.stub().modelInfer(classifier()
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("probabilities")
            .putParameters("classification", InferParameter.newBuilder().setStringParam("2").build())).build()),
        Status.Code.INVALID_ARGUMENT, "classification");
    // A BYTES output cannot be ranked.
    ByteString text = ByteString.copyFrom(BytesElements.encode(List.of("a".getBytes(StandardCharsets.UTF_8))));
    assertGrpc(() -> fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_bytes")
        .addInputs(input("INPUT0", "BYTES", 1, 1)).addRawInputContents(text)
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("OUTPUT0")
            .putParameters("classification", InferParameter.newBuilder().setInt64Param(1).build())).build()),
        Status.Code.INVALID_ARGUMENT, "classification");
  }

  @Test
  void bytesToAnOnnxStringTensor_textRoundTripsByteForByte_binaryIsRefusedNamingTheInput() throws Exception {
    List<byte[]> text = List.of("h\u00e9llo w\u00f6rld \u2713".getBytes(StandardCharsets.UTF_8), new byte[0],
        "\u65e5\u672c".getBytes(StandardCharsets.UTF_8));
    ByteString data = ByteString.copyFrom(BytesElements.encode(text));
    ModelInferResponse response = fixture.stub().modelInfer(ModelInferRequest.newBuilder()
        .setModelName("identity_bytes").addInputs(input("INPUT0", "BYTES", 1, 3)).addRawInputContents(data).build());
    assertThat(response.getRawOutputContents(0)).isEqualTo(data);

    // tritonclient.http with binary_data=True: the JSON header, then the BYTES elements length-prefixed.
    byte[] binary = ByteString.copyFrom(BytesElements.encode(List.of(new byte[] {(byte) 0xFF, 0x00, (byte) 0x80})))
        .toByteArray();
    String header = "{\"inputs\":[{\"name\":\"INPUT0\",\"shape\":[1,1],\"datatype\":\"BYTES\",\"parameters\":"
        + "{\"binary_data_size\":" + binary.length + "}}]}";
    byte[] headerBytes = header.getBytes(StandardCharsets.UTF_8);
    byte[] body = new byte[headerBytes.length + binary.length];
    System.arraycopy(headerBytes, 0, body, 0, headerBytes.length);
    System.arraycopy(binary, 0, body, headerBytes.length, binary.length);
    HttpResponse<String> refused = http.send(HttpRequest.newBuilder(URI.create(base()
            + "/v2/models/identity_bytes/infer")).header("Content-Type", "application/octet-stream")
        .header("Inference-Header-Content-Length", Integer.toString(headerBytes.length))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());
    // ONNX Runtime's Java API holds string tensors as text only (docs/triton-compatibility.md).
    assertThat(refused.statusCode()).isEqualTo(400);
    assertThat(refused.body()).contains("INPUT0").contains("UTF-8");
  }

  @Test
  void gzipAndDeflateBodies_areInflated_andBombsRefused() throws Exception {
    String body = "{\"inputs\":[{\"name\":\"INPUT0\",\"shape\":[1,16],\"datatype\":\"INT32\",\"data\":[0,1,2,3,4,5,6,7,"
        + "8,9,10,11,12,13,14,15]},{\"name\":\"INPUT1\",\"shape\":[1,16],\"datatype\":\"INT32\",\"data\":[1,1,1,1,1,1,1,"
        + "1,1,1,1,1,1,1,1,1]}]}";
    // tritonclient.http request_compression_algorithm="gzip" / "deflate".
    for (String encoding : List.of("gzip", "deflate")) {
      HttpResponse<String> response = postEncoded("/v2/models/simple/infer", compress(encoding,
          body.getBytes(StandardCharsets.UTF_8)), encoding);
      assertThat(response.statusCode()).as(encoding + ": " + response.body()).isEqualTo(200);
      JsonNode outputs = JSON.readTree(response.body()).get("outputs");
      assertThat(outputs.get(0).get("data").get(15).asInt()).isEqualTo(16);
    }
    HttpResponse<String> corrupt = postEncoded("/v2/models/simple/infer", body.getBytes(StandardCharsets.UTF_8), "gzip");
    assertThat(corrupt.statusCode()).isEqualTo(400);
    assertThat(corrupt.body()).contains("Content-Encoding");
    HttpResponse<String> unknown = postEncoded("/v2/models/simple/infer", body.getBytes(StandardCharsets.UTF_8), "br");
    assertThat(unknown.statusCode()).isEqualTo(400);
    assertThat(unknown.body()).contains("Content-Encoding");
    // 4 MiB of zeros in a few KiB: past the 1 MiB body limit once inflated.
    HttpResponse<String> bomb = postEncoded("/v2/models/simple/infer", compress("gzip", new byte[4 << 20]), "gzip");
    assertThat(bomb.statusCode()).isEqualTo(413);
    // The server is fine afterwards.
    assertThat(post("/v2/models/simple/infer", body).statusCode()).isEqualTo(200);
  }

  static byte[] compress(String encoding, byte[] data) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (var z = encoding.equals("gzip") ? new GZIPOutputStream(out)
        : new DeflaterOutputStream(out, new Deflater(Deflater.DEFAULT_COMPRESSION, false))) {
      z.write(data);
    }
    return out.toByteArray();
  }

  @Test
  void configJson_writesInt64FieldsAsNumbers_asTritonDoes() throws Exception {
    HttpResponse<String> response = get("/v2/models/simple/config");
    assertThat(response.statusCode()).isEqualTo(200);
    JsonNode config = JSON.readTree(response.body());
    assertThat(config.get("max_batch_size").isInt()).isTrue();
    JsonNode dims = config.get("input").get(0).get("dims");
    assertThat(dims.toString()).isEqualTo("[16]");
    assertThat(dims.get(0).isNumber()).isTrue();
    assertThat(config.get("input").get(0).get("data_type").asText()).isEqualTo("TYPE_INT32");
    assertThat(response.body()).doesNotContain("\"16\"");
  }

  @Test
  void refusedRequests_countAsFailuresInTheModelsStatistics() throws Exception {
    long before = failures();
    // gRPC: a wrong datatype (refused in validation) and a bad parameter (refused while decoding).
    assertThatThrownBy(() -> fixture.stub().modelInfer(TritonCompatibilityTest.simpleRequest().toBuilder()
        .setInputs(0, input("INPUT0", "FP32", 1, 16)).build())).isInstanceOf(StatusRuntimeException.class);
    assertThatThrownBy(() -> fixture.stub().modelInfer(TritonCompatibilityTest.simpleRequest().toBuilder()
        .putParameters("priority", InferParameter.newBuilder().setStringParam("high").build()).build()))
        .isInstanceOf(StatusRuntimeException.class);
    // REST: a malformed body for a loaded model.
    assertThat(post("/v2/models/simple/infer", "{\"inputs\":[{\"name\":\"INPUT0\"}]}").statusCode()).isEqualTo(400);
    assertThat(failures()).isEqualTo(before + 3);
    // A model that is not loaded has no statistics to count in; nothing breaks.
    assertThat(post("/v2/models/no_such_model/infer", "{\"inputs\":[]}").statusCode()).isNotEqualTo(200);
  }

  static long failures() {
    return fixture.stub().modelStatistics(ModelStatisticsRequest.newBuilder().setName("simple").build())
        .getModelStats(0).getInferenceStats().getFail().getCount();
  }

  @Test
  void serverMetadata_listsTheExtensionsThatWork() throws Exception {
    List<String> extensions = fixture.stub().serverMetadata(ServerMetadataRequest.getDefaultInstance())
        .getExtensionsList();
    assertThat(extensions).contains("model_configuration", "model_repository", "statistics", "binary_tensor_data",
        "classification", "sequence", "logging", "system_shared_memory");
    // No exporter configured: no trace extension; CUDA shared memory is not offered.
    assertThat(extensions).doesNotContain("trace", "cuda_shared_memory");
    JsonNode rest = JSON.readTree(get("/v2").body());
    List<String> restExtensions = new ArrayList<>();
    rest.get("extensions").forEach(n -> restExtensions.add(n.asText()));
    assertThat(restExtensions).containsExactlyElementsOf(extensions);
  }

  static void assertGrpc(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Status.Code code,
      String message) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(message);
    });
  }

  static String base() {
    return "http://127.0.0.1:" + fixture.server.httpPort();
  }

  static HttpResponse<String> get(String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> postEncoded(String path, byte[] body, String encoding) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).header("Content-Type", "application/json")
        .header("Content-Encoding", encoding).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
