package io.quiver.control;

import io.quiver.lifecycle.*;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.lifecycle.ModelVersionStatus.State;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.examples.ExampleModels;
import io.quiver.registry.s3.S3ModelRepository;
import io.quiver.registry.s3.S3ProxyFixture;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Models served from a real S3 API (S3Proxy in-process) with the real ONNX Runtime and dynamic batcher. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class S3ModelManagerTest {
  @TempDir Path work;
  private S3ProxyFixture s3;
  private ModelManager manager;

  @BeforeEach
  void startS3() throws Exception {
    s3 = S3ProxyFixture.start();
    s3.createBucket("models");
    Path local = work.resolve("local");
    ExampleModels.writeSimple(local);
    s3.uploadTree("models", "repo/", local);
  }

  @AfterEach
  void stop() {
    if (manager != null) {
      manager.close();
    }
    s3.close();
  }

  private ModelManager start(ModelManagerOptions options) {
    S3ModelRepository repo = S3ModelRepository.create(s3.options("s3://models/repo", work.resolve("cache")));
    manager = new ModelManager(repo, ModelManager.discoverRuntimes(), new DynamicBatcherFactory(), options);
    manager.start();
    return manager;
  }

  @Test
  void start_loadsFromS3_andServesComputedResults() throws Exception {
    start(ModelManagerOptions.defaults());
    assertThat(manager.readyVersions("simple")).containsExactly(1L);
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
    assertThat(work.resolve("cache/simple/1/model.onnx")).exists();
  }

  @Test
  void s3Stopped_loadedModelKeepsServing_andAReloadIsUnavailable() throws Exception {
    start(ModelManagerOptions.defaults());
    try (io.quiver.control.grpc.ControlPlaneServer control = new io.quiver.control.grpc.ControlPlaneServer(
        new io.quiver.lifecycle.ModelLifecycle(manager, new io.quiver.lifecycle.LifecycleOptions(0, work.resolve("staging"))),
        io.quiver.control.grpc.ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1")).start()) {
      io.grpc.ManagedChannel channel = io.grpc.netty.NettyChannelBuilder
          .forAddress("127.0.0.1", control.port()).usePlaintext().build();
      try {
        var stub = io.quiver.proto.control.v1.ModelControlGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
        stub.loadModel(io.quiver.proto.control.v1.LoadModelRequest.newBuilder().setName("simple").build()); // S3 up: fine
        s3.stop();
        assertThatThrownBy(() -> stub.loadModel(io.quiver.proto.control.v1.LoadModelRequest.newBuilder().setName("simple")
            .build())).isInstanceOfSatisfying(io.grpc.StatusRuntimeException.class, e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(io.grpc.Status.Code.UNAVAILABLE);
              assertThat(e.getStatus().getDescription()).contains("unreachable");
            });
      } finally {
        channel.shutdownNow();
      }
    }

    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
    assertThatThrownBy(() -> manager.load("simple")).isInstanceOfSatisfying(InferenceException.class, e -> {
      assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);
      assertThat(e.getMessage()).contains("unreachable").contains(s3.endpoint().getAuthority());
    });
    // Still serving after the failed reload, and the index says why the reload failed.
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
    assertThat(manager.status("simple")).extracting(ModelVersionStatus::state).containsExactly(State.READY);
    assertThat(manager.problem("simple")).contains("unreachable");
  }

  @Test
  void pollMode_picksUpAVersionPutStraightIntoTheBucket() throws Exception {
    start(ModelManagerOptions.defaults().withControlMode(ControlMode.POLL));
    try (RepositoryPoller poller = new RepositoryPoller(manager, null, state -> 0, true, 50)) {
      assertThat(poller.pollOnce()).isZero(); // nothing new yet

      Path next = work.resolve("next");
      ExampleModels.writeSimple(next);
      s3.uploadTree("models", "repo/simple/2/", next.resolve("simple/1"));
      poller.start(); // the background thread finds it

      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (!manager.readyVersions("simple").equals(List.of(2L)) && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(manager.readyVersions("simple")).containsExactly(2L); // latest 1: version 1 drained and unloaded
      assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(2L);
    }
  }
}
