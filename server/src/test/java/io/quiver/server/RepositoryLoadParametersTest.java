package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.ModelConfigRequest;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelRepositoryParameter;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * RepositoryModelLoad with Triton's parameters, as tritonclient's {@code load_model(name, config=...,
 * files={...})} sends them: {@code config} (a JSON model config overriding config.pbtxt) and
 * {@code file:<path>} (model files in the call: bytes over gRPC, base64 over REST).
 */
class RepositoryLoadParametersTest {
  @TempDir static Path repository;
  @TempDir static Path elsewhere;
  static ServerFixture fixture;
  static HttpClient http;
  static byte[] identityOnnx;

  /** identity_fp32's config as Triton's JSON, with {@code maxBatchSize}. */
  static String identityConfig(int maxBatchSize) {
    return "{\"platform\":\"onnxruntime_onnx\",\"max_batch_size\":" + maxBatchSize + ","
        + "\"input\":[{\"name\":\"INPUT0\",\"data_type\":\"TYPE_FP32\",\"dims\":[16]}],"
        + "\"output\":[{\"name\":\"OUTPUT0\",\"data_type\":\"TYPE_FP32\",\"dims\":[16]}]}";
  }

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    identityOnnx = Files.readAllBytes(ExampleModels.writeIdentityFp32(elsewhere).resolve("1/model.onnx"));
    fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of());
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
  }

  static ModelRepositoryParameter string(String s) {
    return ModelRepositoryParameter.newBuilder().setStringParam(s).build();
  }

  static ModelRepositoryParameter bytes(byte[] b) {
    return ModelRepositoryParameter.newBuilder().setBytesParam(ByteString.copyFrom(b)).build();
  }

  static ModelInferRequest identity(String model, int batch) {
    return ModelInferRequest.newBuilder().setModelName(model).addInputs(input("INPUT0", "FP32", batch, 16))
        .addRawInputContents(floats(new float[16 * batch])).build();
  }

  @Test
  void grpc_configOverride_replacesConfigPbtxtForThatLoad() {
    fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("identity_fp32")
        .putParameters("config", string(identityConfig(4))).build());
    assertThat(fixture.stub().modelConfig(ModelConfigRequest.newBuilder().setName("identity_fp32").build())
        .getConfig().getMaxBatchSize()).isEqualTo(4);
    fixture.stub().modelInfer(identity("identity_fp32", 4));
    assertGrpc(() -> fixture.stub().modelInfer(identity("identity_fp32", 5)), Status.Code.INVALID_ARGUMENT, "4");
    // A load without parameters goes back to the repository's own config, as in Triton.
    fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("identity_fp32").build());
    assertThat(fixture.stub().modelConfig(ModelConfigRequest.newBuilder().setName("identity_fp32").build())
        .getConfig().getMaxBatchSize()).isEqualTo(256);
    assertThat(Files.exists(repository.resolve("identity_fp32/config.pbtxt"))).isTrue();
  }

  @Test
  void grpc_fileContents_loadAModelThatIsNotInTheRepository() {
    fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("uploaded")
        .putParameters("config", string(identityConfig(8)))
        .putParameters("file:1/model.onnx", bytes(identityOnnx)).build());
    assertThat(fixture.stub().modelInfer(identity("uploaded", 2)).getOutputs(0).getShapeList())
        .containsExactly(2L, 16L);
    // Nothing was written into the repository.
    assertThat(Files.exists(repository.resolve("uploaded"))).isFalse();
  }

  @Test
  void grpc_badParameters_areRefusedNamingTheParameter() {
    // Files need a config (Triton's rule).
    assertGrpc(() -> load("x1", "file:1/model.onnx", bytes(identityOnnx)), Status.Code.INVALID_ARGUMENT, "config");
    // Paths stay inside the model directory.
    for (String path : List.of("file:../escape/1/model.onnx", "file:/etc/passwd", "file:1//model.onnx", "file:")) {
      assertGrpc(() -> fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("x2")
          .putParameters("config", string(identityConfig(8))).putParameters(path, bytes(identityOnnx)).build()),
          Status.Code.INVALID_ARGUMENT, "file:");
    }
    assertGrpc(() -> load("identity_fp32", "config", bytes(identityConfig(4).getBytes())),
        Status.Code.INVALID_ARGUMENT, "config");
    assertGrpc(() -> load("identity_fp32", "file:1/model.onnx", string("text")), Status.Code.INVALID_ARGUMENT,
        "file:1/model.onnx");
    assertGrpc(() -> load("identity_fp32", "poll_interval", string("1")), Status.Code.INVALID_ARGUMENT,
        "poll_interval");
    assertGrpc(() -> load("identity_fp32", "config", string("{not json")), Status.Code.INVALID_ARGUMENT, "config");
    assertGrpc(() -> load("identity_fp32", "config", string("{\"max_batch_size\":4,\"no_such_field\":1}")),
        Status.Code.INVALID_ARGUMENT, "config");
    assertGrpc(() -> load("identity_fp32", "config", string("{\"max_batch_size\":-4}")),
        Status.Code.INVALID_ARGUMENT, "config");
    // Files that are not a model: the load fails, the server carries on.
    assertThatThrownBy(() -> fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder()
        .setModelName("garbage").putParameters("config", string(identityConfig(8)))
        .putParameters("file:1/model.onnx", bytes(new byte[] {1, 2, 3})).build()))
        .isInstanceOf(StatusRuntimeException.class);
    fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("identity_fp32").build());
    fixture.stub().modelInfer(identity("identity_fp32", 1));
  }

  static void load(String model, String key, ModelRepositoryParameter value) {
    fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName(model)
        .putParameters(key, value).build());
  }

  @Test
  void rest_configAndBase64Files_asTritonclientHttpSendsThem() throws Exception {
    String config = identityConfig(8).replace("\"", "\\\"");
    String body = "{\"parameters\":{\"config\":\"" + config + "\",\"file:1/model.onnx\":\""
        + Base64.getEncoder().encodeToString(identityOnnx) + "\"}}";
    HttpResponse<String> load = post("/v2/repository/models/uploaded_rest/load", body);
    assertThat(load.statusCode()).as(load.body()).isEqualTo(200);
    HttpResponse<String> infer = post("/v2/models/uploaded_rest/infer", "{\"inputs\":[{\"name\":\"INPUT0\","
        + "\"shape\":[1,16],\"datatype\":\"FP32\",\"data\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}");
    assertThat(infer.statusCode()).as(infer.body()).isEqualTo(200);

    HttpResponse<String> badBase64 = post("/v2/repository/models/x3/load", "{\"parameters\":{\"config\":\"" + config
        + "\",\"file:1/model.onnx\":\"***\"}}");
    assertThat(badBase64.statusCode()).isEqualTo(400);
    assertThat(badBase64.body()).contains("file:1/model.onnx");
    HttpResponse<String> numberConfig = post("/v2/repository/models/x3/load", "{\"parameters\":{\"config\":4}}");
    assertThat(numberConfig.statusCode()).isEqualTo(400);
    assertThat(numberConfig.body()).contains("config");
    HttpResponse<String> traversal = post("/v2/repository/models/x3/load", "{\"parameters\":{\"config\":\"" + config
        + "\",\"file:../../x\":\"AAAA\"}}");
    assertThat(traversal.statusCode()).isEqualTo(400);
    assertThat(traversal.body()).contains("file:../../x");
  }

  static void assertGrpc(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Status.Code code,
      String message) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(message);
    });
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort() + path))
        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
