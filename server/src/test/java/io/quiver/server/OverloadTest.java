package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ServerLiveRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Far above the saturating load (hundreds of requests in flight against a queue of 4): excess requests
 * are rejected at once with RESOURCE_EXHAUSTED, admitted ones complete, health answers throughout, and
 * everything finishes within a bounded time. No latency pass/fail beyond that bound: the figures are
 * printed for the record.
 */
class OverloadTest {
  static final int REQUESTS = 20_000;
  static final int IN_FLIGHT = 512;
  static final long BOUND_SECONDS = 60;

  @TempDir Path repository;

  @Test
  void overload_rejectsFast_completesAdmitted_healthAnswers_nothingHangs() throws Exception {
    Path model = ExampleModels.writeIdentityFp32(repository);
    Path config = model.resolve(ExampleModels.CONFIG_FILE);
    Files.writeString(config, Files.readString(config).replace("max_queue_delay_microseconds: 100",
        "max_queue_delay_microseconds: 500\n  default_queue_policy { max_queue_size: 4 }"));
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.NONE, List.of())) {
      ManagedChannel second = NettyChannelBuilder.forAddress("127.0.0.1", fixture.server.port()).usePlaintext().build();
      try {
        run(fixture, List.of(fixture.channel, second));
      } finally {
        second.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  private void run(ServerFixture fixture, List<ManagedChannel> channels) throws Exception {
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(Tensors.input("INPUT0", "FP32", 1, 16)).addRawInputContents(Tensors.floats(new float[16])).build();
    Semaphore window = new Semaphore(IN_FLIGHT);
    CountDownLatch answered = new CountDownLatch(REQUESTS);
    LongAdder ok = new LongAdder();
    LongAdder rejected = new LongAdder();
    LongAdder wrong = new LongAdder();
    Map<Status.Code, AtomicInteger> other = new ConcurrentHashMap<>();
    AtomicLong slowestRejectionNanos = new AtomicLong();
    AtomicLong slowestAdmittedNanos = new AtomicLong();

    AtomicInteger healthChecks = new AtomicInteger();
    AtomicInteger healthFailures = new AtomicInteger();
    AtomicLong slowestHealthNanos = new AtomicLong();
    Thread prober = new Thread(() -> {
      var health = HealthGrpc.newBlockingStub(channels.get(1));
      var live = GRPCInferenceServiceGrpc.newBlockingStub(channels.get(0));
      while (answered.getCount() > 0) {
        long t0 = System.nanoTime();
        try {
          boolean serving = health.withDeadlineAfter(5, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance())
              .getStatus() == HealthCheckResponse.ServingStatus.SERVING;
          boolean isLive = live.withDeadlineAfter(5, TimeUnit.SECONDS).serverLive(ServerLiveRequest.getDefaultInstance()).getLive();
          if (!serving || !isLive) {
            healthFailures.incrementAndGet();
          }
        } catch (StatusRuntimeException e) {
          healthFailures.incrementAndGet();
        }
        slowestHealthNanos.accumulateAndGet(System.nanoTime() - t0, Math::max);
        healthChecks.incrementAndGet();
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "health-prober");
    prober.start();

    long start = System.nanoTime();
    for (int i = 0; i < REQUESTS; i++) {
      assertThat(window.tryAcquire(BOUND_SECONDS, TimeUnit.SECONDS)).as("a request slot within the bound").isTrue();
      long sent = System.nanoTime();
      GRPCInferenceServiceGrpc.newStub(channels.get(i & 1)).withDeadlineAfter(BOUND_SECONDS, TimeUnit.SECONDS)
          .modelInfer(request, new StreamObserver<>() {
            @Override
            public void onNext(ModelInferResponse value) {
              if (!value.getRawOutputContents(0).equals(request.getRawInputContents(0))) {
                wrong.increment(); // counted, not asserted: an AssertionError here would vanish into gRPC's executor
              }
            }

            @Override
            public void onError(Throwable t) {
              Status.Code code = Status.fromThrowable(t).getCode();
              if (code == Status.Code.RESOURCE_EXHAUSTED) {
                rejected.increment();
                slowestRejectionNanos.accumulateAndGet(System.nanoTime() - sent, Math::max);
              } else {
                other.computeIfAbsent(code, c -> new AtomicInteger()).incrementAndGet();
              }
              done();
            }

            @Override
            public void onCompleted() {
              ok.increment();
              slowestAdmittedNanos.accumulateAndGet(System.nanoTime() - sent, Math::max);
              done();
            }

            private void done() {
              window.release();
              answered.countDown();
            }
          });
    }
    assertThat(answered.await(BOUND_SECONDS, TimeUnit.SECONDS)).as("every request answered within the bound").isTrue();
    long elapsed = System.nanoTime() - start;
    prober.join(10_000);
    System.out.printf("overload: %d requests, %d in flight, %.1f s: %d served, %d rejected (slowest rejection %.1f ms,"
            + " slowest admitted %.1f ms), other %s; %d health checks, %d failed, slowest %.1f ms%n",
        REQUESTS, IN_FLIGHT, elapsed / 1e9, ok.sum(), rejected.sum(), slowestRejectionNanos.get() / 1e6,
        slowestAdmittedNanos.get() / 1e6, other, healthChecks.get(), healthFailures.get(), slowestHealthNanos.get() / 1e6);
    assertThat(other).as("only OK or RESOURCE_EXHAUSTED").isEmpty();
    assertThat(wrong.sum()).as("identity answers equal their input").isZero();
    assertThat(ok.sum()).as("admitted requests complete").isPositive();
    assertThat(rejected.sum()).as("the queue bound rejects the excess").isPositive();
    assertThat(ok.sum() + rejected.sum()).isEqualTo(REQUESTS);
    assertThat(healthChecks.get()).isPositive();
    assertThat(healthFailures.get()).as("health answered during the overload").isZero();
    assertThat(GRPCInferenceServiceGrpc.newBlockingStub(channels.get(0)).withDeadlineAfter(5, TimeUnit.SECONDS)
        .modelInfer(request).getRawOutputContents(0)).isEqualTo(request.getRawInputContents(0));
  }
}
