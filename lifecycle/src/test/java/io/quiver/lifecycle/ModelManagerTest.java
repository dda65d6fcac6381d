package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.lifecycle.ModelVersionStatus.State;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.registry.LocalModelRepository;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ModelManagerTest {
  private static final String IDENTITY = "identity FP32 4";

  @TempDir Path root;
  private final JavaIdentityRuntime runtime = new JavaIdentityRuntime();
  private final WorkerThreadSchedulerFactory schedulers = new WorkerThreadSchedulerFactory();
  private ModelManager manager;

  @AfterEach
  void closeManager() {
    if (manager != null) {
      manager.close();
    }
    assertThat(runtime.open).as("runners left open after close").isEmpty();
  }

  private void model(String name, String config, long... versions) throws Exception {
    Path dir = Files.createDirectories(root.resolve(name));
    if (config != null) {
      Files.writeString(dir.resolve("config.pbtxt"), config);
    }
    for (long v : versions) {
      JavaIdentityRuntime.write(dir.resolve(Long.toString(v)), IDENTITY);
    }
  }

  private ModelManager manager(ModelManagerOptions options) {
    manager = new ModelManager(new LocalModelRepository(root), List.of(runtime), schedulers, options);
    return manager;
  }

  private static InferenceException thrown(Runnable r) {
    try {
      r.run();
    } catch (InferenceException e) {
      return e;
    }
    throw new AssertionError("expected an InferenceException");
  }

  /** Runs one FP32 [4] request through the version's scheduler and returns OUTPUT0's values. */
  private static float[] infer(LoadedVersion version, float... values) throws Exception {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      data.putFloat(v);
    }
    data.flip();
    CompletableFuture<Tensor[]> result = new CompletableFuture<>();
    InferRequest request = new InferRequest(version.name(), version.version(), "req",
        new Tensor[] {new Tensor("INPUT0", DataType.FP32, new long[] {values.length}, data)}, new int[] {0}, 1, 0, 0,
        InferRequest.NO_DEADLINE, new InferCallback() {
          @Override
          public void onSuccess(InferRequest r, Tensor[] outputs) {
            result.complete(outputs);
          }

          @Override
          public void onFailure(InferRequest r, InferenceException error) {
            result.completeExceptionally(error);
          }
        });
    version.scheduler().submit(request);
    ByteBuffer out = result.get(10, TimeUnit.SECONDS)[0].data();
    float[] floats = new float[out.remaining() / 4];
    for (int i = 0; i < floats.length; i++) {
      floats[i] = out.getFloat();
    }
    return floats;
  }

  private static ModelVersionStatus status(List<ModelVersionStatus> index, String name, String version) {
    return index.stream().filter(s -> s.name().equals(name) && s.version().equals(version)).findFirst()
        .orElseThrow(() -> new AssertionError("no index row " + name + "/" + version + " in " + index));
  }

  @Test
  void start_noneMode_loadsEveryModel_andACorruptOneDoesNotStopTheOthers() throws Exception {
    model("good_a", null, 1);
    model("good_b", "name: \"good_b\"\nmax_batch_size: 8\n", 1);
    model("corrupt", null);
    JavaIdentityRuntime.write(root.resolve("corrupt/1"), "this is not a model");
    manager(ModelManagerOptions.defaults()).start();

    assertThat(manager.isReady("good_a", "")).isTrue();
    assertThat(manager.isReady("good_b", "1")).isTrue();
    assertThat(manager.isReady("corrupt", "")).isFalse();
    assertThat(manager.allReady()).as("a failed model keeps the server unready").isFalse();
    ModelVersionStatus corrupt = status(manager.index(), "corrupt", "1");
    assertThat(corrupt.state()).isEqualTo(State.UNAVAILABLE);
    assertThat(corrupt.reason()).contains("is not a java-identity model");
    assertThat(infer(acquireAndRelease("good_a"), 1, 2, 3, 4)).containsExactly(1, 2, 3, 4);

    InferenceException e = thrown(() -> manager.acquire("corrupt", ""));
    assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);
    assertThat(e.getMessage()).contains("UNAVAILABLE").contains("not a java-identity model");
  }

  @Test
  void everyLoad_runsInsideOneLoadSchedulingSection_onItsLoadThread_failedOnesToo() throws Exception {
    model("good", null, 1);
    model("corrupt", null);
    JavaIdentityRuntime.write(root.resolve("corrupt/1"), "this is not a model");
    List<String> events = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    LoadScheduling recording = () -> {
      Thread entered = Thread.currentThread();
      events.add("enter on " + entered.getName());
      return () -> events.add("close on " + (Thread.currentThread() == entered ? "the same thread" : Thread.currentThread().getName()));
    };
    manager(ModelManagerOptions.defaults().withLoadScheduling(recording)).start();

    assertThat(manager.isReady("good", "1")).isTrue();
    assertThat(manager.isReady("corrupt", "")).isFalse();
    assertThat(events).hasSize(4);
    assertThat(events.stream().filter(e -> e.startsWith("enter on quiver-model-load-"))).hasSize(2);
    assertThat(events.stream().filter(e -> e.equals("close on the same thread"))).hasSize(2);
  }

  @Test
  void aVersionLoadedAgainUnchanged_reusesItsCompletedConfig_andChangedFilesOrConfigCompleteItAgain() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.explicit()).start();
    manager.load("m");
    manager.unload("m");
    manager.load("m");
    assertThat(runtime.opened("m")).isEqualTo(2);
    assertThat(runtime.completed("m")).as("the same files and config: completed once").isEqualTo(1);
    assertThat(infer(acquireAndRelease("m"), 1, 2, 3, 4)).containsExactly(1, 2, 3, 4);

    // New files (a wider tensor): the reload completes the config again and serves the new shape.
    JavaIdentityRuntime.write(root.resolve("m").resolve("1"), "identity FP32 8");
    manager.load("m");
    assertThat(runtime.completed("m")).isEqualTo(2);
    assertThat(acquireAndRelease("m").config().getInput(0).getDimsList()).containsExactly(8L);
    assertThat(infer(acquireAndRelease("m"), 1, 2, 3, 4, 5, 6, 7, 8)).containsExactly(1, 2, 3, 4, 5, 6, 7, 8);

    // A new declared config, same files: completed again, and what it declares holds.
    Files.writeString(root.resolve("m").resolve("config.pbtxt"), "max_batch_size: 0\nparameters { key: \"note\" value { string_value: \"v2\" } }\n");
    manager.unload("m");
    manager.load("m");
    assertThat(runtime.completed("m")).isEqualTo(3);
    assertThat(acquireAndRelease("m").config().getParametersMap()).containsKey("note");
  }

  private LoadedVersion acquireAndRelease(String model) {
    LoadedVersion v = manager.acquire(model, "");
    v.release();
    return v;
  }

  @Test
  void start_explicitMode_loadsOnlyTheNamedModels() throws Exception {
    model("a", null, 1);
    model("b", null, 1);
    model("c", null, 1);
    manager(ModelManagerOptions.explicit("b")).start();

    assertThat(manager.isReady("b", "")).isTrue();
    assertThat(manager.isReady("a", "")).isFalse();
    assertThat(manager.allReady()).isTrue();
    assertThat(manager.index()).containsExactly(
        new ModelVersionStatus("a", "", State.UNAVAILABLE, "not loaded"),
        new ModelVersionStatus("b", "1", State.READY, ""),
        new ModelVersionStatus("c", "", State.UNAVAILABLE, "not loaded"));
    assertThat(thrown(() -> manager.acquire("a", "")).code()).isEqualTo(ErrorCode.NOT_FOUND);

    manager.load("a");
    assertThat(manager.isReady("a", "1")).isTrue();
  }

  @Test
  void allReady_isFalseBeforeStart_andTrueForAnEmptyRepository() {
    manager(ModelManagerOptions.defaults());
    assertThat(manager.allReady()).isFalse();
    manager.start();
    assertThat(manager.allReady()).isTrue();
    assertThat(manager.index()).isEmpty();
  }

  @Test
  void versionPolicy_latest2_servesTheTwoHighest() throws Exception {
    model("m", "version_policy { latest { num_versions: 2 } }", 1, 2, 3);
    manager(ModelManagerOptions.defaults()).start();

    assertThat(manager.readyVersions("m")).containsExactly(2L, 3L);
    assertThat(manager.isReady("m", "1")).isFalse();
    assertThat(thrown(() -> manager.acquire("m", "1")).code()).isEqualTo(ErrorCode.NOT_FOUND);
  }

  @Test
  void versionPolicy_specific_servesThoseListed_andReportsAnAbsentOne() throws Exception {
    model("m", "version_policy { specific { versions: [ 1, 3, 9 ] } }", 1, 2, 3);
    manager(ModelManagerOptions.defaults()).start();

    assertThat(manager.readyVersions("m")).containsExactly(1L, 3L);
    ModelVersionStatus nine = status(manager.index(), "m", "9");
    assertThat(nine.state()).isEqualTo(State.UNAVAILABLE);
    assertThat(nine.reason()).contains("version 9").contains("not in the repository");
    assertThat(thrown(() -> manager.acquire("m", "9")).code()).isEqualTo(ErrorCode.UNAVAILABLE);
  }

  @Test
  void versionPolicy_all_servesEveryVersion() throws Exception {
    model("m", "version_policy { all { } }", 1, 2, 5);
    manager(ModelManagerOptions.defaults()).start();
    assertThat(manager.readyVersions("m")).containsExactly(1L, 2L, 5L);
    assertThat(manager.allReady()).isTrue();
  }

  @Test
  void acquire_defaultVersionIsHighestReady_andUnknownsAreNotFound() throws Exception {
    model("m", "version_policy { all { } }", 1, 4);
    manager(ModelManagerOptions.defaults()).start();

    LoadedVersion latest = manager.acquire("m", "");
    LoadedVersion alsoLatest = manager.acquire("m", null);
    LoadedVersion one = manager.acquire("m", "1");
    assertThat(latest.version()).isEqualTo(4);
    assertThat(latest.versionLabel()).isEqualTo("4");
    assertThat(alsoLatest).isSameAs(latest);
    assertThat(one.version()).isEqualTo(1);
    assertThat(latest.inFlight()).isEqualTo(2);
    latest.release();
    alsoLatest.release();
    one.release();
    assertThat(latest.inFlight()).isZero();
    assertThatThrownBy(latest::release).isInstanceOf(IllegalStateException.class);

    assertThat(thrown(() -> manager.acquire("nope", "")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(thrown(() -> manager.acquire(null, "")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(thrown(() -> manager.acquire("m", "3")).getMessage()).contains("no version '3'").contains("[1, 4]");
    assertThat(thrown(() -> manager.acquire("m", "x1")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(manager.isReady("nope", "")).isFalse();
    assertThat(manager.isReady("m", "banana")).isFalse();
    assertThat(manager.readyVersions("nope")).isEmpty();
  }

  @Test
  void loadedVersion_carriesTheCompletedConfig() throws Exception {
    model("m", "max_batch_size: 4\ninstance_group [ { count: 3 kind: KIND_CPU } ]", 1);
    manager(ModelManagerOptions.defaults()).start();
    LoadedVersion v = manager.acquire("m", "1");
    v.release();

    assertThat(v.config().getPlatform()).isEqualTo(JavaIdentityRuntime.PLATFORM);
    assertThat(v.config().getInput(0).getName()).isEqualTo("INPUT0");
    assertThat(v.config().getVersionPolicy().getLatest().getNumVersions()).isEqualTo(1);
    assertThat(v.signature().maxBatchSize()).isEqualTo(4);
    assertThat(v.runtimeName()).isEqualTo(JavaIdentityRuntime.NAME);
    assertThat(runtime.open).hasSize(3);
    assertThat(runtime.open).extracting(r -> r.instance.index()).containsExactlyInAnyOrder(0, 1, 2);
  }

  @Test
  void acquire_whileAVersionLoads_isUnavailableNamingTheState() throws Exception {
    model("slow", null);
    JavaIdentityRuntime.write(root.resolve("slow/1"), IDENTITY + "\nload_delay_ms 800\n");
    manager(ModelManagerOptions.explicit());
    manager.start();
    ExecutorService control = Executors.newSingleThreadExecutor();
    try {
      Future<?> load = control.submit(() -> manager.load("slow"));
      while (manager.index().stream().noneMatch(s -> s.name().equals("slow") && s.state() == State.LOADING)) {
        Thread.sleep(5);
      }
      InferenceException e = thrown(() -> manager.acquire("slow", "1"));
      assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);
      assertThat(e.getMessage()).contains("LOADING");
      assertThat(manager.isReady("slow", "")).isFalse();
      load.get(10, TimeUnit.SECONDS);
      assertThat(manager.isReady("slow", "1")).isTrue();
    } finally {
      control.shutdownNow();
    }
  }

  @Test
  void unload_waitsForAHeldVersion_beforeClosingItsRunners() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.defaults()).start();
    LoadedVersion held = manager.acquire("m", "");
    JavaIdentityRuntime.IdentityRunner runner = runtime.open.iterator().next();

    CountDownLatch unloaded = new CountDownLatch(1);
    Thread unloader = new Thread(() -> {
      manager.unload("m");
      unloaded.countDown();
    });
    unloader.start();
    // The model stops taking new requests at once...
    while (manager.isReady("m", "")) {
      Thread.sleep(1);
    }
    assertThat(thrown(() -> manager.acquire("m", "")).code()).isIn(ErrorCode.UNAVAILABLE, ErrorCode.NOT_FOUND);
    assertThat(status(manager.index(), "m", "1").state()).isEqualTo(State.UNLOADING);
    // ...but the request already holding it still runs to completion on an open runner.
    assertThat(unloaded.await(300, TimeUnit.MILLISECONDS)).isFalse();
    assertThat(runner.closed).isFalse();
    assertThat(infer(held, 5, 6, 7, 8)).containsExactly(5, 6, 7, 8);
    held.release();

    assertThat(unloaded.await(10, TimeUnit.SECONDS)).isTrue();
    assertThat(runner.closed).isTrue();
    assertThat(runtime.open).isEmpty();
    assertThat(schedulers.created.get(0).closed).isTrue();
    assertThat(status(manager.index(), "m", "")).isEqualTo(new ModelVersionStatus("m", "", State.UNAVAILABLE, "not loaded"));
    assertThat(thrown(() -> manager.acquire("m", "")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(thrown(() -> manager.unload("m")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(manager.allReady()).as("an unloaded model is no longer required").isTrue();
  }

  @Test
  void unload_afterDrainTimeout_closesAnyway() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.defaults().withDrainTimeoutMillis(50)).start();
    LoadedVersion leaked = manager.acquire("m", "");
    manager.unload("m");
    assertThat(runtime.open).isEmpty();
    assertThatThrownBy(() -> infer(leaked, 1, 2, 3, 4))
        .isInstanceOf(InferenceException.class)
        .hasFieldOrPropertyWithValue("code", ErrorCode.UNAVAILABLE);
    leaked.release();
  }

  @Test
  void load_configWithUnknownField_failsNamingTheField() throws Exception {
    model("seq", "name: \"seq\"\nmodel_transaction_policy { decoupled: true }\n", 1);
    manager(ModelManagerOptions.defaults()).start();

    ModelVersionStatus row = status(manager.index(), "seq", "");
    assertThat(row.state()).isEqualTo(State.UNAVAILABLE);
    assertThat(row.reason()).contains("model_transaction_policy").contains("config.pbtxt:2:");
    InferenceException e = thrown(() -> manager.load("seq"));
    assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(e.getMessage()).contains("'model_transaction_policy'");
  }

  @ParameterizedTest
  @ValueSource(strings = {"../m", "..", "a/b", "a\\b", ".m", "m\u0000"})
  void load_andUnload_pathTraversalNames_areInvalidArgument(String name) throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.explicit()).start();
    assertThat(thrown(() -> manager.load(name)).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(thrown(() -> manager.unload(name)).code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(manager.index()).containsExactly(new ModelVersionStatus("m", "", State.UNAVAILABLE, "not loaded"));
  }

  @Test
  void options_rejectPathTraversalStartupModels() {
    assertThatThrownBy(() -> ModelManagerOptions.explicit("../etc"))
        .isInstanceOf(InferenceException.class)
        .hasMessageContaining("model name must not");
  }

  @Test
  void load_unknownModel_isNotFound_andLeavesNoTrace() throws Exception {
    manager(ModelManagerOptions.explicit()).start();
    assertThat(thrown(() -> manager.load("ghost")).code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(manager.index()).isEmpty();
  }

  @Test
  void load_modelWithoutVersions_isNotFound_andIndexedWithTheReason() throws Exception {
    model("empty", null);
    manager(ModelManagerOptions.defaults()).start();
    ModelVersionStatus row = status(manager.index(), "empty", "");
    assertThat(row.reason()).contains("no version to serve").contains("latest 1");
    assertThat(thrown(() -> manager.load("empty")).code()).isEqualTo(ErrorCode.NOT_FOUND);
  }

  @Test
  void load_withNoMatchingRuntime_namesWhatWasLookedFor() throws Exception {
    Files.createDirectories(root.resolve("tf/1"));
    Files.writeString(root.resolve("tf/1/model.savedmodel"), "x");
    Files.createDirectories(root.resolve("plat/1"));
    Files.writeString(root.resolve("plat/config.pbtxt"), "platform: \"tensorflow_savedmodel\"");
    manager(ModelManagerOptions.explicit()).start();

    assertThat(thrown(() -> manager.load("tf")).getMessage())
        .contains("model.identity (java-identity)").contains("no platform or backend");
    assertThat(thrown(() -> manager.load("plat")).getMessage())
        .contains("no runtime handles platform 'tensorflow_savedmodel'");
  }

  @Test
  void load_gpuInstances_failWithTheRuntimesReason() throws Exception {
    model("gpu", "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 1 ] } ]", 1);
    manager(ModelManagerOptions.explicit()).start();
    assertThat(thrown(() -> manager.load("gpu")).getMessage()).contains("CPU only").contains("GPU 1");
    assertThat(runtime.open).isEmpty();
  }

  @Test
  void load_newVersion_takesOver_andTheOldOneIsUnloaded() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.defaults()).start();
    LoadedVersion v1 = manager.acquire("m", "");
    v1.release();

    JavaIdentityRuntime.write(root.resolve("m/2"), IDENTITY);
    manager.load("m");

    assertThat(manager.readyVersions("m")).containsExactly(2L);
    assertThat(v1.isRetired()).isTrue();
    assertThat(runtime.open).hasSize(1);
    assertThat(runtime.open.iterator().next()).isNotIn(v1.runners());
  }

  @Test
  void load_corruptNewVersion_leavesTheServingOneUntouched() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.defaults()).start();
    JavaIdentityRuntime.write(root.resolve("m/2"), "garbage");

    InferenceException e = thrown(() -> manager.load("m"));
    assertThat(e.getMessage()).contains("no version could be loaded").contains("version 2");
    assertThat(manager.readyVersions("m")).containsExactly(1L);
    LoadedVersion serving = manager.acquire("m", "");
    serving.release();
    assertThat(serving.version()).isEqualTo(1);
    assertThat(serving.isRetired()).isFalse();
    manager.acquire("m", "1").release();
    assertThat(status(manager.index(), "m", "2").state()).isEqualTo(State.UNAVAILABLE);
  }

  @Test
  void load_changedConfig_reloadsTheSameVersion_andUnchangedConfigKeepsIt() throws Exception {
    model("m", "max_batch_size: 2", 1);
    manager(ModelManagerOptions.defaults()).start();
    LoadedVersion before = manager.acquire("m", "1");
    before.release();

    manager.load("m");
    LoadedVersion same = manager.acquire("m", "1");
    same.release();
    assertThat(same).as("unchanged config: nothing reloaded").isSameAs(before);

    Files.writeString(root.resolve("m/config.pbtxt"), "max_batch_size: 8");
    manager.load("m");
    LoadedVersion after = manager.acquire("m", "1");
    after.release();
    assertThat(after).isNotSameAs(before);
    assertThat(after.signature().maxBatchSize()).isEqualTo(8);
    assertThat(before.isRetired()).isTrue();
    assertThat(runtime.open).hasSize(1);
  }

  @Test
  void acquire_underConcurrentVersionSwaps_neverFailsAndEveryHoldIsReleased() throws Exception {
    model("m", null, 1);
    manager(ModelManagerOptions.defaults()).start();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong served = new AtomicLong();
    List<Thread> clients = new ArrayList<>();
    List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
    for (int t = 0; t < 3; t++) {
      Thread client = new Thread(() -> {
        while (!stop.get()) {
          try {
            LoadedVersion v = manager.acquire("m", "");
            try {
              assertThat(v.isRetired() && v.inFlight() == 0).isFalse();
              assertThat(infer(v, 1, 2, 3, 4)).containsExactly(1, 2, 3, 4);
              served.incrementAndGet();
            } finally {
              v.release();
            }
          } catch (Throwable e) {
            failures.add(e);
          }
        }
      });
      client.start();
      clients.add(client);
    }
    for (long version = 2; version <= 21; version++) {
      long before = served.get();
      while (served.get() < before + 50 && failures.isEmpty()) {
        Thread.sleep(1); // let requests run against each version before swapping it out
      }
      JavaIdentityRuntime.write(root.resolve("m/" + version), IDENTITY);
      manager.load("m");
      assertThat(manager.readyVersions("m")).containsExactly(version);
    }
    stop.set(true);
    for (Thread client : clients) {
      client.join();
    }
    assertThat(failures).isEmpty();
    assertThat(served.get()).isPositive();
    assertThat(runtime.open).hasSize(1);
    LoadedVersion last = manager.acquire("m", "");
    assertThat(last.inFlight()).isEqualTo(1);
    last.release();
  }

  @Test
  void close_unloadsEverything_isIdempotent_andRefusesLaterWork() throws Exception {
    model("a", null, 1);
    model("b", "instance_group [ { count: 2 } ]", 1);
    manager(ModelManagerOptions.defaults()).start();
    assertThat(runtime.open).hasSize(3);

    manager.close();
    manager.close();

    assertThat(runtime.open).isEmpty();
    assertThat(schedulers.created).allMatch(s -> s.closed);
    assertThat(manager.allReady()).isFalse();
    assertThat(thrown(() -> manager.acquire("a", "")).code()).isEqualTo(ErrorCode.UNAVAILABLE);
    assertThat(thrown(() -> manager.load("a")).code()).isEqualTo(ErrorCode.UNAVAILABLE);
  }

  @Test
  void start_twice_isFailedPrecondition() {
    manager(ModelManagerOptions.defaults()).start();
    assertThat(thrown(() -> manager.start()).code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
  }

  @Test
  void discoverRuntimes_returnsAnImmutableList() {
    assertThatThrownBy(() -> ModelManager.discoverRuntimes().add(runtime)).isInstanceOf(UnsupportedOperationException.class);
  }
}
