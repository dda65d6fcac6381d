package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.ints;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sequence batching end to end: the generated {@code accumulator} ONNX model (implicit state, START and
 * READY controls) and the {@code sequence_echo} fixture (which echoes every control the server set),
 * driven as tritonclient drives them: {@code sequence_id}, {@code sequence_start} and {@code sequence_end}
 * request parameters over unary gRPC, REST and the bidirectional stream.
 */
class SequenceRequestsTest {
  @TempDir static Path repository;
  static ServerFixture fixture;
  static HttpClient http;
  static final ObjectMapper JSON = new ObjectMapper();

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeAccumulator(repository);
    ExampleModels.writeSequenceEcho(repository, "sequence_echo",
        ExampleModels.sequenceEchoConfig(4, "direct { }", 5_000_000));
    ExampleModels.writeSequenceEcho(repository, "sequence_echo_oldest",
        ExampleModels.sequenceEchoConfig(4, "oldest { max_candidate_sequences: 4 }", 5_000_000));
    ExampleModels.writeSimple(repository);
    fixture = new ServerFixture(repository);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
  }

  /** tritonclient's sequence parameters: sequence_id (int64 here; uint64 or string too), start, end. */
  static ModelInferRequest step(String model, InferParameter sequenceId, boolean start, boolean end, int value) {
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(model)
        .addInputs(input("INPUT", "INT32", 1, 1))
        .addRawInputContents(ints(value))
        .putParameters("sequence_id", sequenceId);
    if (start) {
      request.putParameters("sequence_start", InferParameter.newBuilder().setBoolParam(true).build());
    }
    if (end) {
      request.putParameters("sequence_end", InferParameter.newBuilder().setBoolParam(true).build());
    }
    return request.build();
  }

  static InferParameter id(long id) {
    return InferParameter.newBuilder().setInt64Param(id).build();
  }

  static int output(ModelInferResponse response, String name) {
    for (int i = 0; i < response.getOutputsCount(); i++) {
      if (response.getOutputs(i).getName().equals(name)) {
        return Tensors.toInts(response.getRawOutputContents(i))[0];
      }
    }
    throw new AssertionError("no output " + name);
  }

  static long[] controls(ModelInferResponse response) {
    for (int i = 0; i < response.getOutputsCount(); i++) {
      if (response.getOutputs(i).getName().equals("CONTROLS")) {
        ByteBuffer b = response.getRawOutputContents(i).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        return new long[] {b.getLong(), b.getLong(), b.getLong(), b.getLong()};
      }
    }
    throw new AssertionError("no output CONTROLS");
  }

  @Test
  void grpc_interleavedSequences_keepTheirOwnRunningSums() {
    var stub = fixture.stub();
    assertThat(output(stub.modelInfer(step("accumulator", id(1001), true, false, 5)), "OUTPUT")).isEqualTo(5);
    assertThat(output(stub.modelInfer(step("accumulator", id(1002), true, false, 100)), "OUTPUT")).isEqualTo(100);
    assertThat(output(stub.modelInfer(step("accumulator", id(1001), false, false, 3)), "OUTPUT")).isEqualTo(8);
    assertThat(output(stub.modelInfer(step("accumulator", id(1002), false, false, 1)), "OUTPUT")).isEqualTo(101);
    // uint64 and string ids: other sequences.
    InferParameter unsigned = InferParameter.newBuilder().setUint64Param(-2L).build(); // 2^64 - 2
    InferParameter text = InferParameter.newBuilder().setStringParam("session-a").build();
    assertThat(output(stub.modelInfer(step("accumulator", unsigned, true, false, 7)), "OUTPUT")).isEqualTo(7);
    assertThat(output(stub.modelInfer(step("accumulator", text, true, false, 9)), "OUTPUT")).isEqualTo(9);
    assertThat(output(stub.modelInfer(step("accumulator", unsigned, false, true, 1)), "OUTPUT")).isEqualTo(8);
    assertThat(output(stub.modelInfer(step("accumulator", text, false, true, 1)), "OUTPUT")).isEqualTo(10);
    // The end of a sequence: its last answer, then it is gone.
    assertThat(output(stub.modelInfer(step("accumulator", id(1001), false, true, 2)), "OUTPUT")).isEqualTo(10);
    assertGrpc(() -> stub.modelInfer(step("accumulator", id(1001), false, false, 1)), Status.Code.INVALID_ARGUMENT,
        "sequence_start");
    // Starting it again starts from the initial state (zero).
    assertThat(output(stub.modelInfer(step("accumulator", id(1001), true, true, 4)), "OUTPUT")).isEqualTo(4);
    // START on a running sequence resets it.
    assertThat(output(stub.modelInfer(step("accumulator", id(1002), true, false, 1)), "OUTPUT")).isEqualTo(1);
    assertThat(output(stub.modelInfer(step("accumulator", id(1002), false, true, 1)), "OUTPUT")).isEqualTo(2);
  }

  @Test
  void grpc_controlInputs_areSetAsTritonSetsThem() {
    for (String model : List.of("sequence_echo", "sequence_echo_oldest")) {
      var stub = fixture.stub();
      ModelInferResponse first = stub.modelInfer(step(model, id(77), true, false, 2));
      assertThat(controls(first)).as(model).containsExactly(1, 0, 1, 77);
      assertThat(first.getOutputsList()).extracting(o -> o.getName())
          .as("state and control tensors never reach the client").containsExactlyInAnyOrder("OUTPUT", "CONTROLS");
      ModelInferResponse middle = stub.modelInfer(step(model, id(77), false, false, 3));
      assertThat(controls(middle)).as(model).containsExactly(0, 0, 1, 77);
      assertThat(output(middle, "OUTPUT")).isEqualTo(5);
      ModelInferResponse last = stub.modelInfer(step(model, id(77), false, true, 4));
      assertThat(controls(last)).as(model).containsExactly(0, 1, 1, 77);
      assertThat(output(last, "OUTPUT")).isEqualTo(9);
    }
  }

  @Test
  void grpc_badSequenceRequests_areRefusedNamingTheParameter() {
    var stub = fixture.stub();
    // A sequence model needs a sequence id.
    assertGrpc(() -> stub.modelInfer(step("accumulator", id(0), true, false, 1)), Status.Code.INVALID_ARGUMENT,
        "sequence_id");
    // A model without sequence batching takes none.
    ModelInferRequest simple = TritonCompatibilityTest.simpleRequest().toBuilder().putParameters("sequence_id", id(5))
        .build();
    assertGrpc(() -> stub.modelInfer(simple), Status.Code.INVALID_ARGUMENT, "sequence_id");
    // Wrong parameter types.
    assertGrpc(() -> stub.modelInfer(step("accumulator", InferParameter.newBuilder().setBoolParam(true).build(), true,
        false, 1)), Status.Code.INVALID_ARGUMENT, "sequence_id");
    assertGrpc(() -> stub.modelInfer(step("accumulator", id(3), false, false, 1).toBuilder()
        .putParameters("sequence_start", InferParameter.newBuilder().setInt64Param(1).build()).build()),
        Status.Code.INVALID_ARGUMENT, "sequence_start");
    // Sequence models take one request (batch 1) at a time.
    ModelInferRequest batch2 = ModelInferRequest.newBuilder().setModelName("accumulator")
        .addInputs(input("INPUT", "INT32", 2, 1)).addRawInputContents(ints(1, 2))
        .putParameters("sequence_id", id(4)).putParameters("sequence_start",
            InferParameter.newBuilder().setBoolParam(true).build()).build();
    assertGrpc(() -> stub.modelInfer(batch2), Status.Code.INVALID_ARGUMENT, "batch-size 1");
    // A sequence never started.
    assertGrpc(() -> stub.modelInfer(step("accumulator", id(999_999), false, false, 1)), Status.Code.INVALID_ARGUMENT,
        "sequence_start");
  }

  @Test
  void rest_sequence_asTritonclientHttpSendsIt() throws Exception {
    assertThat(restStep("{\"sequence_id\":31,\"sequence_start\":true}", 6)).isEqualTo(6);
    assertThat(restStep("{\"sequence_id\":31}", 4)).isEqualTo(10);
    assertThat(restStep("{\"sequence_id\":\"rest-session\",\"sequence_start\":true}", 1)).isEqualTo(1);
    assertThat(restStep("{\"sequence_id\":31,\"sequence_end\":true}", 5)).isEqualTo(15);
    assertThat(restStep("{\"sequence_id\":\"rest-session\",\"sequence_end\":true}", 1)).isEqualTo(2);
    // Ended: a request without START is refused.
    HttpResponse<String> ended = restInfer("accumulator", "{\"sequence_id\":31}", 1);
    assertThat(ended.statusCode()).isEqualTo(400);
    assertThat(ended.body()).contains("sequence_start");
    // Bad parameters: 400 naming them.
    HttpResponse<String> badFlag = restInfer("accumulator", "{\"sequence_id\":32,\"sequence_start\":\"yes\"}", 1);
    assertThat(badFlag.statusCode()).isEqualTo(400);
    assertThat(badFlag.body()).contains("sequence_start");
    HttpResponse<String> negative = restInfer("accumulator", "{\"sequence_id\":-1,\"sequence_start\":true}", 1);
    assertThat(negative.statusCode()).isEqualTo(400);
    assertThat(negative.body()).contains("sequence_id");
    HttpResponse<String> object = restInfer("accumulator", "{\"sequence_id\":{},\"sequence_start\":true}", 1);
    assertThat(object.statusCode()).isEqualTo(400);
    assertThat(object.body()).contains("sequence_id");
    HttpResponse<String> missing = restInfer("accumulator", "{}", 1);
    assertThat(missing.statusCode()).isEqualTo(400);
    assertThat(missing.body()).contains("sequence_id");
  }

  private int restStep(String parameters, int value) throws Exception {
    HttpResponse<String> response = restInfer("accumulator", parameters, value);
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    JsonNode outputs = JSON.readTree(response.body()).get("outputs");
    assertThat(outputs).hasSize(1);
    assertThat(outputs.get(0).get("name").asText()).isEqualTo("OUTPUT");
    return outputs.get(0).get("data").get(0).asInt();
  }

  private HttpResponse<String> restInfer(String model, String parameters, int value) throws Exception {
    String body = "{\"parameters\":" + parameters + ",\"inputs\":[{\"name\":\"INPUT\",\"shape\":[1,1],"
        + "\"datatype\":\"INT32\",\"data\":[" + value + "]}]}";
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort()
            + "/v2/models/" + model + "/infer")).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void stream_sequences_answerInOrder_withTritonFinalResponse() throws Exception {
    int steps = 5;
    CountDownLatch done = new CountDownLatch(2 * steps + 1);
    Map<String, ModelStreamInferResponse> answers = new ConcurrentHashMap<>();
    StreamObserver<ModelInferRequest> requests = fixture.async.modelStreamInfer(new StreamObserver<>() {
      @Override
      public void onNext(ModelStreamInferResponse response) {
        answers.put(response.getInferResponse().getId(), response);
        done.countDown();
      }

      @Override
      public void onError(Throwable t) {
        done.countDown();
      }

      @Override
      public void onCompleted() {}
    });
    for (int i = 0; i < steps; i++) {
      for (long sequence : new long[] {501, 502}) {
        requests.onNext(step("accumulator", id(sequence), i == 0, i == steps - 1, (int) sequence - 500).toBuilder()
            .setId(sequence + "-" + i).build());
      }
    }
    // An error answer on the stream: a sequence that was never started.
    requests.onNext(step("accumulator", id(503), false, false, 1).toBuilder().setId("bad").build());
    assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
    requests.onCompleted();
    for (int i = 0; i < steps; i++) {
      for (long sequence : new long[] {501, 502}) {
        ModelStreamInferResponse answer = answers.get(sequence + "-" + i);
        assertThat(answer.getErrorMessage()).isEmpty();
        assertThat(output(answer.getInferResponse(), "OUTPUT")).isEqualTo((int) (sequence - 500) * (i + 1));
        assertThat(answer.getInferResponse().getParametersOrThrow("triton_final_response").getBoolParam()).isTrue();
      }
    }
    ModelStreamInferResponse bad = answers.get("bad");
    assertThat(bad.getErrorMessage()).contains("sequence_start");
    assertThat(bad.getInferResponse().getModelName()).isEqualTo("accumulator");
    assertThat(bad.getInferResponse().getParametersOrThrow("triton_final_response").getBoolParam()).isTrue();
  }

  static void assertGrpc(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Status.Code code,
      String message) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(message);
    });
  }
}
