package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import io.quiver.proto.inference.ServerReadyRequest;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Start-up modes and graceful shutdown of a whole server. */
class LifecycleTest {
  @TempDir Path repository;

  @Test
  void explicitMode_loadsOnlyTheNamedModels() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.EXPLICIT, List.of("simple"))) {
      assertThat(ready(fixture, "simple")).isTrue();
      assertThat(ready(fixture, "identity_fp32")).isFalse();
      assertThat(fixture.stub().serverReady(ServerReadyRequest.getDefaultInstance()).getReady()).isTrue();
      assertThat(fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsList())
          .anyMatch(m -> m.getName().equals("identity_fp32") && !m.getState().equals("READY"));

      fixture.stub().repositoryModelLoad(RepositoryModelLoadRequest.newBuilder().setModelName("identity_fp32").build());
      assertThat(ready(fixture, "identity_fp32")).isTrue();
      assertThat(health(fixture, "identity_fp32")).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
      assertThat(fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_fp32")
          .addInputs(input("INPUT0", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build())
          .getRawOutputContentsCount()).isEqualTo(1);

      fixture.stub().repositoryModelUnload(
          RepositoryModelUnloadRequest.newBuilder().setModelName("identity_fp32").build());
      assertThat(ready(fixture, "identity_fp32")).isFalse();
      assertThat(health(fixture, "identity_fp32")).isEqualTo(HealthCheckResponse.ServingStatus.NOT_SERVING);
      assertThat(ready(fixture, "simple")).isTrue();
    }
  }

  private static HealthCheckResponse.ServingStatus health(ServerFixture fixture, String service) {
    return HealthGrpc.newBlockingStub(fixture.channel)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  @Test
  void shutdown_answersEveryInFlightRequest() throws Exception {
    ExampleModels.writeMlpClassifier(repository);
    ServerFixture fixture = new ServerFixture(repository);
    int requests = 400;
    CountDownLatch answered = new CountDownLatch(requests);
    AtomicInteger ok = new AtomicInteger();
    ConcurrentHashMap<Status.Code, AtomicInteger> failures = new ConcurrentHashMap<>();
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("mlp_classifier")
        .addInputs(input("features", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build();
    for (int i = 0; i < requests; i++) {
      fixture.async.withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(request, new StreamObserver<>() {
        @Override public void onNext(ModelInferResponse value) { ok.incrementAndGet(); }
        @Override public void onError(Throwable t) {
          failures.computeIfAbsent(Status.fromThrowable(t).getCode(), c -> new AtomicInteger()).incrementAndGet();
          answered.countDown();
        }
        @Override public void onCompleted() { answered.countDown(); }
      });
    }
    // Close once the server is demonstrably serving this burst, so that requests are in flight.
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (ok.get() == 0 && answered.getCount() > 0 && System.nanoTime() < until) {
      Thread.onSpinWait();
    }
    fixture.server.close();
    assertThat(answered.await(30, TimeUnit.SECONDS)).as("every request answered").isTrue();
    // Requests that reached the server before shutdown finish; later ones are refused as UNAVAILABLE.
    assertThat(ok.get()).isGreaterThan(0);
    assertThat(failures.keySet()).allMatch(code -> code == Status.Code.UNAVAILABLE);
    fixture.channel.shutdownNow();
  }

  private static boolean ready(ServerFixture fixture, String name) {
    return fixture.stub().modelReady(ModelReadyRequest.newBuilder().setName(name).build()).getReady();
  }
}
