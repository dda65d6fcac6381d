package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Request limits and model-name checks: refused with INVALID_ARGUMENT before any lookup or allocation. */
class LimitsTest {
  @TempDir static Path root;
  static ServerFixture fixture;
  static QuiverServer server;

  @BeforeAll
  static void start() throws Exception {
    Path repository = Files.createDirectories(root.resolve("repo"));
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeIdentityBytes(repository);
    // A model outside the repository that a traversing name would reach.
    ExampleModels.writeIdentityFp32(Files.createDirectories(root.resolve("outside")));
    fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of("identity_fp32", "identity_bytes"),
        new ServerOptions.Limits(64, 8, 16));
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
  }

  static Status.Code code(Runnable r) {
    try {
      r.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  @Test
  void namesThatLeaveTheRepository_areInvalidArgument_everywhere() throws Exception {
    for (String name : List.of("../outside/identity_fp32", "..", "a/b", "a\\b", ".hidden", "x\u0000y", "")) {
      assertThat(code(() -> fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName(name)
          .addInputs(input("INPUT0", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build())))
          .as(name).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(code(() -> fixture.stub().modelMetadata(ModelMetadataRequest.newBuilder().setName(name).build())))
          .as(name).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(code(() -> fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName(name).build())))
          .as(name).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(code(() -> fixture.stub().repositoryModelUnload(RepositoryModelUnloadRequest.newBuilder().setModelName(name).build())))
          .as(name).isEqualTo(Status.Code.INVALID_ARGUMENT);
    }
    assertThat(code(() -> fixture.stub().modelMetadata(ModelMetadataRequest.newBuilder().setName("identity_fp32")
        .setVersion("1/../../2").build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(code(() -> fixture.stub().modelMetadata(ModelMetadataRequest.newBuilder().setName("no_such_model").build())))
        .isEqualTo(Status.Code.NOT_FOUND);
    // REST splits the raw path, then decodes each segment once: an encoded '/' stays inside the model name,
    // which is then refused for what it is (400), never a path outside the repository.
    assertThat(restLoad("..%2Foutside%2Fidentity_fp32")).isEqualTo(400);
    assertThat(restLoad("..%5Coutside")).isEqualTo(400);
    assertThat(restLoad(".hidden")).isEqualTo(400);
    assertThat(fixture.server.models().index()).extracting(s -> s.name()).doesNotContain("../outside/identity_fp32");
  }

  @Test
  void tensorElementCount_overTheLimit_isInvalidArgument() {
    // 8 x 16 = 128 elements > 64, with the right byte size: only the element limit refuses it.
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_fp32")
            .addInputs(input("INPUT0", "FP32", 8, 16)).addRawInputContents(floats(new float[128])).build()));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).contains("128 elements; the limit is 64");
    assertThat(code(() -> fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(input("INPUT0", "FP32", 4, 16)).addRawInputContents(floats(new float[64])).build())))
        .isEqualTo(Status.Code.OK);
  }

  @Test
  void bytesElementLongerThanTheLimit_isInvalidArgument() {
    assertThat(code(() -> fixture.stub().modelInfer(bytesRequest("12345678")))).isEqualTo(Status.Code.OK);
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> fixture.stub().modelInfer(bytesRequest("123456789")));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).contains("BYTES element of 9 bytes; the limit is 8");
  }

  static int restLoad(String encodedName) throws Exception {
    return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
        "http://127.0.0.1:" + fixture.server.httpPort() + "/v2/repository/models/" + encodedName + "/load"))
        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString()).statusCode();
  }

  static ModelInferRequest bytesRequest(String element) {
    ByteBuffer b = ByteBuffer.allocate(4 + element.length()).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(element.length()).put(element.getBytes(java.nio.charset.StandardCharsets.UTF_8)).flip();
    return ModelInferRequest.newBuilder().setModelName("identity_bytes")
        .addInputs(input("INPUT0", "BYTES", 1, 1)).addRawInputContents(ByteString.copyFrom(b)).build();
  }
}
