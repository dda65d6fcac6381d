package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.ControlMode;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Early, cheap admission: a full queue refuses a request before its tensors are decoded or validated (an
 * invalid payload gets RESOURCE_EXHAUSTED, not INVALID_ARGUMENT, over gRPC and REST), and a request whose
 * deadline the queue would outlast is refused at admission with DEADLINE_EXCEEDED and a RetryInfo. The
 * model is {@link GatedRuntime}'s: its runs wait while the test holds its gate, so the queue is full when
 * the test says so, not when the machine happens to be slow.
 */
class AdmissionTest {
  @TempDir Path repository;
  ServerFixture fixture;
  String model;

  @AfterEach
  void stop() throws Exception {
    if (model != null) {
      GatedRuntime.open(model);
    }
    if (fixture != null) {
      fixture.close();
    }
  }

  private ServerFixture start(ServerOptions options) throws Exception {
    fixture = new ServerFixture(options);
    return fixture;
  }

  private static ModelInferRequest request(String model, ByteString payload) {
    return ModelInferRequest.newBuilder().setModelName(model).addInputs(Tensors.input("INPUT0", "FP32", 1, 16))
        .addRawInputContents(payload).build();
  }

  /** Requests accepted by the model's scheduler: [in flight (queued or running), queued]. */
  private int[] counts(String name) {
    LoadedVersion v = fixture.server.models().acquire(name, "");
    try {
      return new int[] {v.scheduler().inFlightRequests(), v.scheduler().queuedRequests()};
    } finally {
      v.release();
    }
  }

  private void awaitCounts(String name, int inFlight, int queued) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!java.util.Arrays.equals(counts(name), new int[] {inFlight, queued}) && System.nanoTime() < until) {
      Thread.sleep(5);
    }
    assertThat(counts(name)).as("[in flight, queued]").containsExactly(inFlight, queued);
  }

  /**
   * One request running (held at the gate) and {@code queued} waiting behind it; sent one after the other
   * so that none is refused for arriving with the others.
   */
  private List<CompletableFuture<ModelInferResponse>> holdAndQueue(String name, int queued) throws InterruptedException {
    List<CompletableFuture<ModelInferResponse>> out = new ArrayList<>(inFlight(name, 1));
    awaitCounts(name, 1, 0);
    for (int i = 1; i <= queued; i++) {
      out.addAll(inFlight(name, 1));
      awaitCounts(name, 1 + i, i);
    }
    return out;
  }

  /** Sends {@code n} valid requests without waiting; they run (the first) and queue (the rest). */
  private List<CompletableFuture<ModelInferResponse>> inFlight(String name, int n) {
    List<CompletableFuture<ModelInferResponse>> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      CompletableFuture<ModelInferResponse> f = new CompletableFuture<>();
      fixture.async.withDeadlineAfter(60, TimeUnit.SECONDS).modelInfer(request(name, Tensors.floats(new float[16])),
          new StreamObserver<>() {
            @Override
            public void onNext(ModelInferResponse value) {
              f.complete(value);
            }

            @Override
            public void onError(Throwable t) {
              f.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {}
          });
      out.add(f);
    }
    return out;
  }

  @Test
  void fullQueue_refusesBeforeThePayloadIsDecoded_overGrpcAndRest() throws Exception {
    model = "gated_full";
    GatedRuntime.write(repository, model, 1, 2, 0);
    start(new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, -1, 1024 * 1024, false));
    GatedRuntime.close(model);
    List<CompletableFuture<ModelInferResponse>> admitted = holdAndQueue(model, 2); // one held, two fill the queue

    // 3 bytes where 64 are due: INVALID_ARGUMENT if it were decoded; the full queue answers first.
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> fixture.stub().modelInfer(request(model, ByteString.copyFrom(new byte[3]))));
    assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    assertThat(e.getStatus().getDescription()).contains("queue").contains("full");
    assertThat(retryInfo(e)).as("a RetryInfo detail").isNotNull();

    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    HttpResponse<String> rest = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.httpPort()
        + "/v2/models/" + model + "/infer")).POST(HttpRequest.BodyPublishers.ofString("{ this is not JSON")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(rest.statusCode()).as(rest.body()).isEqualTo(429);
    assertThat(rest.headers().firstValue("retry-after")).isPresent();

    GatedRuntime.open(model);
    for (CompletableFuture<ModelInferResponse> f : admitted) {
      assertThat(f.get(30, TimeUnit.SECONDS).getRawOutputContents(0)).isEqualTo(Tensors.floats(new float[16]));
    }
    // Drained: the invalid payload now reaches validation and is refused for what it is.
    assertThatThrownBy(() -> fixture.stub().modelInfer(request(model, ByteString.copyFrom(new byte[3]))))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            s -> assertThat(s.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
  }

  @Test
  void deadlineTheQueueWouldOutlast_isRefusedAtAdmission_withRetryInfo() throws Exception {
    model = "gated_slow";
    GatedRuntime.write(repository, model, 1, 64, 200); // every batch takes 200 ms
    start(new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, -1, -1, 1024 * 1024, false));
    // Two batches measured: the batcher's cost estimate is ~200 ms per batch.
    for (int i = 0; i < 2; i++) {
      fixture.stub().modelInfer(request(model, Tensors.floats(new float[16])));
    }
    GatedRuntime.close(model);
    List<CompletableFuture<ModelInferResponse>> admitted = holdAndQueue(model, 5); // five queued: ~1 s of work

    long t0 = System.nanoTime();
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> GRPCInferenceServiceGrpc.newBlockingStub(fixture.channel).withDeadlineAfter(300, TimeUnit.MILLISECONDS)
            .modelInfer(request(model, Tensors.floats(new float[16]))));
    long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    // The server's answer (its message and its RetryInfo), not the client's own deadline firing.
    assertThat(e.getStatus().getDescription()).as("answered %d ms after sending", tookMillis)
        .contains("would pass in the queue");
    RetryInfo retry = retryInfo(e);
    assertThat(retry).isNotNull();
    assertThat(retry.getRetryDelay().getSeconds() * 1000 + retry.getRetryDelay().getNanos() / 1_000_000)
        .as("the expected wait").isGreaterThan(300);

    // A deadline the queue does not outlast is admitted (and served once the gate opens).
    CompletableFuture<ModelInferResponse> patient = new CompletableFuture<>();
    fixture.async.withDeadlineAfter(60, TimeUnit.SECONDS).modelInfer(request(model, Tensors.floats(new float[16])),
        new StreamObserver<>() {
          @Override
          public void onNext(ModelInferResponse value) {
            patient.complete(value);
          }

          @Override
          public void onError(Throwable t) {
            patient.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    GatedRuntime.open(model);
    assertThat(patient.get(30, TimeUnit.SECONDS).getOutputsCount()).isEqualTo(1);
    for (CompletableFuture<ModelInferResponse> f : admitted) {
      f.get(30, TimeUnit.SECONDS);
    }
  }

  static RetryInfo retryInfo(StatusRuntimeException e) {
    com.google.rpc.Status status = StatusProto.fromThrowable(e);
    if (status == null) {
      return null;
    }
    for (com.google.protobuf.Any detail : status.getDetailsList()) {
      if (detail.is(RetryInfo.class)) {
        try {
          return detail.unpack(RetryInfo.class);
        } catch (com.google.protobuf.InvalidProtocolBufferException ex) {
          throw new AssertionError(ex);
        }
      }
    }
    return null;
  }
}
