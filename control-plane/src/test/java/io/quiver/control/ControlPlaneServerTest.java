package io.quiver.control;

import io.quiver.lifecycle.*;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.control.grpc.ControlPlaneServer;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.VersionState;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.proto.control.v1.WatchModelsRequest;
import io.quiver.registry.LocalModelRepository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane end to end: a real gRPC server on a loopback port over a manager with the real
 * ONNX Runtime and dynamic batcher, the example model {@code simple} in a local repository.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ControlPlaneServerTest {
  @TempDir Path repo;
  @TempDir Path work;
  private ModelManager manager;
  private ModelLifecycle lifecycle;
  private ControlPlaneServer control;
  private ManagedChannel channel;
  private ModelControlGrpc.ModelControlBlockingStub stub;

  @BeforeEach
  void writeRepository() throws Exception {
    ExampleModels.writeSimple(repo);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (control != null) {
      control.close();
    }
    if (lifecycle != null) {
      lifecycle.close();
    }
  }

  private void start(ModelManagerOptions options) throws Exception {
    manager = new ModelManager(new LocalModelRepository(repo), ModelManager.discoverRuntimes(), new DynamicBatcherFactory(),
        options);
    lifecycle = new ModelLifecycle(manager, new LifecycleOptions(0, work.resolve("staging")));
    lifecycle.start();
    control = new ControlPlaneServer(lifecycle, ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1")
        .withMaxUploadBytes(1 << 20)).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", control.port()).usePlaintext().build();
    stub = ModelControlGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  private void restart(ModelManagerOptions options) throws Exception {
    stop();
    channel = null;
    control = null;
    manager = null;
    lifecycle = null;
    start(options);
  }

  /** The bytes of the example model {@code simple} (a fresh copy, as a new version would be uploaded). */
  private byte[] simpleModelBytes() throws Exception {
    Path dir = Files.createTempDirectory(work, "gen");
    ExampleModels.writeSimple(dir);
    return Files.readAllBytes(dir.resolve("simple/1/model.onnx"));
  }

  private static String sha256(byte[] data) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
  }

  /** Streams one file in 100-byte chunks (64 KiB for large files); {@code sha} is put on the last chunk. */
  private UploadModelResponse upload(UploadHeader header, String path, byte[] data, String sha) throws Exception {
    CompletableFuture<UploadModelResponse> result = new CompletableFuture<>();
    StreamObserver<UploadModelRequest> out = ModelControlGrpc.newStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
        .uploadModel(new StreamObserver<>() {
          @Override
          public void onNext(UploadModelResponse value) {
            result.complete(value);
          }

          @Override
          public void onError(Throwable t) {
            result.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    out.onNext(UploadModelRequest.newBuilder().setHeader(header).build());
    int step = data.length > 10_000 ? 65_536 : 100;
    for (int off = 0; off < data.length; off += step) {
      int end = Math.min(data.length, off + step);
      FileChunk.Builder chunk = FileChunk.newBuilder().setPath(path).setData(ByteString.copyFrom(data, off, end - off));
      if (end == data.length) {
        chunk.setSha256(sha);
      }
      out.onNext(UploadModelRequest.newBuilder().setChunk(chunk).build());
    }
    out.onCompleted();
    try {
      return result.get(60, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw (Exception) e.getCause();
    }
  }

  private static Status.Code code(Throwable t) {
    return Status.fromThrowable(t).getCode();
  }

  private ModelStatus list(String name) {
    return stub.listModels(ListModelsRequest.newBuilder().setName(name).build()).getModels(0);
  }

  // ---------------------------------------------------------------------------------------------

  @Test
  void listModels_showsVersionsStatesAndReasons() throws Exception {
    ExampleModels.writeCorruptModel(repo, "corrupt");
    start(ModelManagerOptions.defaults());
    Map<String, ModelStatus> models = new java.util.TreeMap<>();
    stub.listModels(ListModelsRequest.getDefaultInstance()).getModelsList().forEach(m -> models.put(m.getName(), m));
    assertThat(models.keySet()).containsExactly("corrupt", "simple");
    assertThat(models.get("simple").getVersionsList()).extracting(VersionStatus::getVersion, VersionStatus::getState)
        .containsExactly(org.assertj.core.groups.Tuple.tuple(1L, VersionState.READY));
    VersionStatus corrupt = models.get("corrupt").getVersions(0);
    assertThat(corrupt.getState()).isEqualTo(VersionState.FAILED);
    assertThat(corrupt.getReason()).contains("ONNX Runtime cannot load");
  }

  @Test
  void upload_newVersion_isServed() throws Exception {
    start(ModelManagerOptions.defaults());
    byte[] model = simpleModelBytes();
    UploadModelResponse response = upload(UploadHeader.newBuilder().setName("simple").setLoad(true).build(), "model.onnx",
        model, sha256(model));
    assertThat(response.getVersion()).isEqualTo(2);
    assertThat(response.getBytes()).isEqualTo(model.length);
    assertThat(repo.resolve("simple/2/model.onnx")).hasBinaryContent(model);
    assertThat(manager.readyVersions("simple")).containsExactly(2L);
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(2L);
  }

  @Test
  void upload_badChecksumOrTooLargeOrUnsafePath_isRejected_andWritesNothing() throws Exception {
    start(ModelManagerOptions.defaults());
    byte[] model = simpleModelBytes();
    UploadHeader header = UploadHeader.newBuilder().setName("simple").setVersion(5).build();
    assertThatThrownBy(() -> upload(header, "model.onnx", model, sha256(new byte[1])))
        .satisfies(e -> assertThat(code(e)).isEqualTo(Status.Code.INVALID_ARGUMENT))
        .hasMessageContaining("sha256");
    byte[] big = new byte[(1 << 20) + 1];
    assertThatThrownBy(() -> upload(header, "model.onnx", big, sha256(big)))
        .satisfies(e -> assertThat(code(e)).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
    assertThatThrownBy(() -> upload(header, "../escape.onnx", model, sha256(model)))
        .satisfies(e -> assertThat(code(e)).isEqualTo(Status.Code.INVALID_ARGUMENT));
    assertThat(repo.resolve("simple/5")).doesNotExist();
    assertThat(repo.resolve("escape.onnx")).doesNotExist();
    try (var staged = Files.list(work.resolve("staging"))) {
      assertThat(staged).isEmpty();
    }
  }

  @Test
  void setMonitoringReference_withoutMonitoring_isUnimplemented_andABadNameIsInvalid() throws Exception {
    start(ModelManagerOptions.defaults());
    var request = io.quiver.proto.control.v1.SetMonitoringReferenceRequest.newBuilder().setName("simple").setVersion("1")
        .setCaptureRows(10).build();
    assertThatThrownBy(() -> stub.setMonitoringReference(request))
        .satisfies(e -> assertThat(code(e)).isEqualTo(Status.Code.UNIMPLEMENTED))
        .hasMessageContaining("no model monitoring");
    assertThatThrownBy(() -> stub.setMonitoringReference(request.toBuilder().setName("../x").build()))
        .satisfies(e -> assertThat(code(e)).isEqualTo(Status.Code.INVALID_ARGUMENT));
  }

  @Test
  void upload_corruptNewVersion_isTakenBackOut_andTheOldOneKeepsServing() throws Exception {
    start(ModelManagerOptions.defaults());
    String configBefore = Files.readString(repo.resolve("simple/config.pbtxt"));
    byte[] junk = "not an onnx model".getBytes();
    UploadHeader header = UploadHeader.newBuilder().setName("simple").setLoad(true)
        .setConfigPbtxt(configBefore + "\n# a new config that must not stay\n").build();
    assertThatThrownBy(() -> upload(header, "model.onnx", junk, sha256(junk)))
        .satisfies(e -> assertThat(code(e)).isNotEqualTo(Status.Code.OK))
        .hasMessageContaining("version 2 was uploaded but failed to load, so it was taken out of the repository again");
    assertThat(manager.readyVersions("simple")).containsExactly(1L);
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
    assertThat(list("simple").getVersionsList()).extracting(VersionStatus::getVersion, VersionStatus::getState)
        .containsExactly(org.assertj.core.groups.Tuple.tuple(1L, VersionState.READY));
    // Nothing left for a poll or a restart to meet again: no version 2, the config as it was.
    assertThat(repo.resolve("simple/2")).doesNotExist();
    assertThat(Files.readString(repo.resolve("simple/config.pbtxt"))).isEqualTo(configBefore);
    restart(ModelManagerOptions.defaults());
    assertThat(list("simple").getVersionsList()).extracting(VersionStatus::getVersion).containsExactly(1L);
    // The same version number can be uploaded again, now with a good model.
    byte[] model = simpleModelBytes();
    assertThat(upload(UploadHeader.newBuilder().setName("simple").setLoad(true).build(), "model.onnx", model,
        sha256(model)).getVersion()).isEqualTo(2);
    assertThat(manager.readyVersions("simple")).containsExactly(2L);
  }

  @Test
  void upload_corruptFirstVersionOfANewModel_leavesNoModelBehind() throws Exception {
    start(ModelManagerOptions.defaults());
    byte[] junk = "not an onnx model".getBytes();
    assertThatThrownBy(() -> upload(UploadHeader.newBuilder().setName("fresh").setLoad(true).build(), "model.onnx", junk,
        sha256(junk))).satisfies(e -> assertThat(code(e)).isNotEqualTo(Status.Code.OK));
    assertThat(repo.resolve("fresh")).doesNotExist();
    assertThat(manager.isLoaded("fresh")).isFalse();
    assertThat(lifecycle.desiredState().current().getModelsMap()).doesNotContainKey("fresh");
  }

  @Test
  void loadModel_answersWhatHappened_andReloadsChangedFiles() throws Exception {
    start(ModelManagerOptions.defaults());
    var first = stub.loadModel(LoadModelRequest.newBuilder().setName("simple").build());
    assertThat(first.getChangesList()).extracting(c -> c.getChange()).containsExactly("unchanged");
    assertThat(first.getModel().getVersions(0).getMemoryBytes()).isGreaterThan(0);
    // Replace the model file in place (same version number), as an operator copying a retrained model would.
    Path file = repo.resolve("simple/1/model.onnx");
    byte[] bytes = Files.readAllBytes(file);
    Files.write(file, bytes);
    Files.setLastModifiedTime(file, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 5_000));
    var second = stub.loadModel(LoadModelRequest.newBuilder().setName("simple").build());
    assertThat(second.getChangesList()).extracting(c -> c.getChange() + ":" + c.getReason())
        .containsExactly("reloaded:model files changed");
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
  }

  @Test
  void hotSwap_underConcurrentLoad_failsNoRequest() throws Exception {
    start(ModelManagerOptions.defaults());
    byte[] model = simpleModelBytes();
    int total = 6_000;
    Semaphore inFlight = new Semaphore(256);
    AtomicLong ok = new AtomicLong();
    AtomicLong failed = new AtomicLong();
    AtomicReference<Throwable> firstFailure = new AtomicReference<>();
    java.util.Set<Long> versionsSeen = java.util.concurrent.ConcurrentHashMap.newKeySet();
    AtomicBoolean swapsDone = new AtomicBoolean();
    ExecutorService clients = Executors.newFixedThreadPool(2);
    AtomicLong issued = new AtomicLong();
    CompletableFuture<?>[] loops = new CompletableFuture<?>[2];
    for (int c = 0; c < 2; c++) {
      loops[c] = CompletableFuture.runAsync(() -> {
        // Keep issuing until the swaps are done and at least `total` requests went out.
        while (!swapsDone.get() || issued.get() < total) {
          inFlight.acquireUninterruptibly();
          issued.incrementAndGet();
          LoadedVersion v;
          try {
            v = manager.acquire("simple", "");
          } catch (RuntimeException e) {
            failed.incrementAndGet();
            firstFailure.compareAndSet(null, e);
            inFlight.release();
            continue;
          }
          LoadedVersion held = v;
          int[] a = OnnxTestSupport.seq(3);
          int[] b = OnnxTestSupport.seq(1);
          try {
            OnnxTestSupport.submitSimple(held, a, b).whenComplete((out, error) -> {
              if (error == null && OnnxTestSupport.ints(out[0])[15] == a[15] + b[15]) {
                ok.incrementAndGet();
                versionsSeen.add(held.version());
              } else {
                failed.incrementAndGet();
                firstFailure.compareAndSet(null, error);
              }
              held.release();
              inFlight.release();
            });
          } catch (RuntimeException e) {
            failed.incrementAndGet();
            firstFailure.compareAndSet(null, e);
            held.release();
            inFlight.release();
          }
        }
      }, clients);
    }
    for (int i = 0; i < 3; i++) {
      upload(UploadHeader.newBuilder().setName("simple").setLoad(true).build(), "model.onnx", model, sha256(model));
    }
    swapsDone.set(true);
    CompletableFuture.allOf(loops).get(60, TimeUnit.SECONDS);
    inFlight.acquire(256); // every request answered
    clients.shutdown();

    assertThat(firstFailure.get()).isNull();
    assertThat(failed.get()).isZero();
    assertThat(ok.get()).isEqualTo(issued.get()).isGreaterThanOrEqualTo(total);
    assertThat(manager.readyVersions("simple")).containsExactly(4L);
    assertThat(versionsSeen).contains(4L);
  }

  @Test
  void trafficSplit_90_10_landsWithinTolerance_sticksPerId_andPinsExplicitVersions() throws Exception {
    Files.createDirectories(repo.resolve("simple/2"));
    Files.copy(repo.resolve("simple/1/model.onnx"), repo.resolve("simple/2/model.onnx"));
    start(ModelManagerOptions.explicit());
    stub.loadModel(LoadModelRequest.newBuilder().setName("simple").setAll(true).build());
    ModelStatus status = stub.setTraffic(SetTrafficRequest.newBuilder().setName("simple")
        .addWeights(TrafficWeight.newBuilder().setVersion(1).setWeight(90))
        .addWeights(TrafficWeight.newBuilder().setVersion(2).setWeight(10))
        .putLabels("stable", 1).putLabels("canary", 2).build()).getModel();
    assertThat(status.getVersionsList()).extracting(VersionStatus::getWeight).containsExactly(90, 10);
    assertThat(status.getVersions(1).getLabelsList()).containsExactly("canary");

    int n = 20_000;
    int toTwo = 0;
    for (int i = 0; i < n; i++) {
      String id = "request-" + i;
      LoadedVersion v = manager.acquire("simple", "", id);
      toTwo += v.version() == 2 ? 1 : 0;
      LoadedVersion again = manager.acquire("simple", "", id);
      assertThat(again.version()).as("same id, same version").isEqualTo(v.version());
      v.release();
      again.release();
    }
    // Binomial(20000, 0.1): sd ≈ 42; allow 5 sd.
    assertThat(toTwo).isBetween(2_000 - 212, 2_000 + 212);

    LoadedVersion pinned = manager.acquire("simple", "1", "request-7");
    assertThat(pinned.version()).isEqualTo(1);
    pinned.release();
    LoadedVersion canary = manager.acquire("simple", "canary");
    assertThat(canary.version()).isEqualTo(2);
    canary.release();
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isIn(1L, 2L);
  }

  @Test
  void restart_convergesToTheStoredDesiredState() throws Exception {
    Files.createDirectories(repo.resolve("simple/2"));
    Files.copy(repo.resolve("simple/1/model.onnx"), repo.resolve("simple/2/model.onnx"));
    ExampleModels.writeIdentityFp32(repo);
    start(ModelManagerOptions.defaults()); // loads both models, latest version only
    stub.loadModel(LoadModelRequest.newBuilder().setName("simple").addVersions(1).addVersions(2).build());
    stub.setTraffic(SetTrafficRequest.newBuilder().setName("simple")
        .addWeights(TrafficWeight.newBuilder().setVersion(1).setWeight(3))
        .addWeights(TrafficWeight.newBuilder().setVersion(2).setWeight(1)).build());
    stub.unloadModel(UnloadModelRequest.newBuilder().setName("identity_fp32").build());
    assertThat(repo.resolve(".quiver-desired-state.json")).exists();

    restart(ModelManagerOptions.explicit()); // a fresh server that on its own would load nothing
    assertThat(manager.readyVersions("simple")).containsExactly(1L, 2L);
    assertThat(manager.traffic("simple").weights()).isEqualTo(Map.of(1L, 3, 2L, 1));
    assertThat(manager.isLoaded("identity_fp32")).isFalse();

    restart(ModelManagerOptions.defaults()); // NONE mode loads everything, then the desired state unloads what was unloaded
    assertThat(manager.readyVersions("simple")).containsExactly(1L, 2L);
    assertThat(manager.isLoaded("identity_fp32")).isFalse();
  }

  @Test
  void desiredStateWrittenByAnotherServer_isPickedUpByThePoller() throws Exception {
    start(ModelManagerOptions.defaults());
    Files.createDirectories(repo.resolve("simple/2"));
    Files.copy(repo.resolve("simple/1/model.onnx"), repo.resolve("simple/2/model.onnx"));
    // Another replica records that version 1 and 2 should both serve.
    DesiredStateStore other = new DesiredStateStore(new LocalModelRepository(repo));
    other.update(s -> s.toBuilder().putModels("simple", io.quiver.proto.control.v1.DesiredModel.newBuilder()
        .setLoaded(true).setAll(true).build()).build());
    RepositoryPoller poller = lifecycle.poller() != null ? lifecycle.poller()
        : new RepositoryPoller(manager, lifecycle.desiredState(), lifecycle::converge, false, 1_000);
    assertThat(poller.pollOnce()).isPositive();
    assertThat(manager.readyVersions("simple")).containsExactly(1L, 2L);
    assertThat(poller.pollOnce()).isZero(); // unchanged manifest: nothing to do
  }

  @Test
  void unload_ofAModelInUse_waitsForItsInFlightRequests() throws Exception {
    start(ModelManagerOptions.defaults());
    LoadedVersion held = manager.acquire("simple", "");
    ListenableFuture<?> unload = ModelControlGrpc.newFutureStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS)
        .unloadModel(UnloadModelRequest.newBuilder().setName("simple").build());
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!manager.status("simple").get(0).state().equals(ModelVersionStatus.State.UNLOADING)
        && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(manager.status("simple").get(0).state()).isEqualTo(ModelVersionStatus.State.UNLOADING);
    assertThat(unload.isDone()).as("unload waits while a request holds the version").isFalse();
    // The held request still completes on the draining version.
    int[] a = OnnxTestSupport.seq(5);
    assertThat(OnnxTestSupport.ints(OnnxTestSupport.submitSimple(held, a, a).get(30, TimeUnit.SECONDS)[0])[0]).isEqualTo(10);
    held.release();
    unload.get(30, TimeUnit.SECONDS);
    assertThat(manager.isLoaded("simple")).isFalse();
  }

  @Test
  void watchModels_streamsTheCurrentStateThenChanges() throws Exception {
    start(ModelManagerOptions.explicit());
    Iterator<ModelEvent> events = ModelControlGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .watchModels(WatchModelsRequest.newBuilder().setName("simple").build());
    ModelEvent first = events.next();
    assertThat(first.getSequence()).isEqualTo(1);
    assertThat(first.getModel().getVersionsList()).isEmpty(); // not loaded yet
    stub.loadModel(LoadModelRequest.newBuilder().setName("simple").build());
    ModelEvent event;
    do {
      event = events.next();
    } while (!(event.getModel().getVersionsCount() == 1
        && event.getModel().getVersions(0).getState() == VersionState.READY));
    assertThat(event.getSequence()).isGreaterThan(1);
  }

  @Test
  void errors_carryClearCodes() throws Exception {
    start(ModelManagerOptions.explicit());
    assertThatThrownBy(() -> stub.loadModel(LoadModelRequest.newBuilder().setName("nope").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    assertThatThrownBy(() -> stub.unloadModel(UnloadModelRequest.newBuilder().setName("../x").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
    assertThatThrownBy(() -> stub.setTraffic(SetTrafficRequest.newBuilder().setName("simple").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    List<ModelStatus> all = stub.listModels(ListModelsRequest.getDefaultInstance()).getModelsList();
    assertThat(all).extracting(ModelStatus::getReason).containsExactly("not loaded");
  }
}
