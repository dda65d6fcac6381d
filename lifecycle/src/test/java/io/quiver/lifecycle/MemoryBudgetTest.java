package io.quiver.lifecycle;

import static io.quiver.lifecycle.LazyTestSupport.infer;
import static io.quiver.lifecycle.LazyTestSupport.isAnswer;
import static io.quiver.lifecycle.LazyTestSupport.model;
import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.registry.LocalModelRepository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Memory accounting per loaded version, the memory budget, least-recently-used eviction and pins. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MemoryBudgetTest {
  private static final long MIB = 1 << 20;

  @TempDir Path root;
  private final JavaIdentityRuntime runtime = new JavaIdentityRuntime();
  private final RecordingListener events = new RecordingListener();
  private ModelManager manager;

  @AfterEach
  void close() {
    if (manager != null) {
      manager.close();
    }
    assertThat(runtime.open).as("runners left open after close").isEmpty();
  }

  /** Everything the lifecycle reports, in order. */
  static final class RecordingListener implements LifecycleListener {
    final List<String> evicted = new CopyOnWriteArrayList<>();
    final List<String> loaded = new CopyOnWriteArrayList<>();
    final List<String> waits = new CopyOnWriteArrayList<>();

    @Override
    public void loadedOnDemand(String model, boolean ok, long nanos, long coldStartNanos, int waiters) {
      loaded.add(model + (ok ? "" : ":failed"));
    }

    @Override
    public void evicted(String model, long bytes, EvictionCause cause) {
      evicted.add(model);
    }

    @Override
    public void waitEnded(String model, String outcome) {
      waits.add(outcome);
    }
  }

  private ModelManager start(ModelManagerOptions options) {
    manager = new ModelManager(new LocalModelRepository(root), List.of(runtime), new WorkerThreadSchedulerFactory(), options);
    manager.setListener(events);
    manager.start();
    return manager;
  }

  private static ModelManagerOptions lazy(long budgetBytes, String... pinned) {
    return ModelManagerOptions.defaults().withControlMode(ControlMode.LAZY).withMemoryBudgetBytes(budgetBytes)
        .withPinnedModels(List.of(pinned));
  }

  private float[] call(String model, float x) throws Exception {
    return infer(manager, model, x, InferRequest.NO_DEADLINE).get(30, TimeUnit.SECONDS);
  }

  @Test
  void accounting_perVersion_runtimeReport_filesFloor_andResidentGrowth() throws Exception {
    model(root, "first", 0, 0, 0);
    model(root, "big", 1, 8, 0);
    model(root, "small", 2, 0, 0);
    start(ModelManagerOptions.explicit("first").withMemoryBudgetBytes(1L << 30));
    // The first load of a runtime in a process includes the runtime's own start: its growth is not charged.
    assertThat(manager.memory("first").get(1L).residentGrowthBytes()).isEqualTo(-1);
    manager.load("big");
    manager.load("small");

    VersionMemory big = manager.memory("big").get(1L);
    assertThat(big.reportedBytes()).isEqualTo(8 * MIB);
    assertThat(big.bytes()).isGreaterThanOrEqualTo(8 * MIB);
    assertThat(big.fileBytes()).isEqualTo(Files.size(root.resolve("big/1/model.identity")));
    // With a budget each load is measured alone. How much of the 8 MiB it wrote shows as resident growth
    // depends on whether the allocator reuses pages the process already holds (under a loaded machine the
    // growth measured anywhere from 61 KB to 8 MiB), so only that it was measured is asserted here.
    assertThat(big.residentGrowthBytes()).isGreaterThanOrEqualTo(0);
    assertThat(big.bytes()).as("the runtime's report counts when it gives one").isEqualTo(8 * MIB);
    VersionMemory small = manager.memory("small").get(1L);
    assertThat(small.reportedBytes()).isEqualTo(-1);
    assertThat(small.bytes()).as("no report: the resident growth, never less than the files")
        .isEqualTo(Math.max(small.fileBytes(), small.residentGrowthBytes())).isPositive();
    long first = manager.memory("first").get(1L).bytes();
    assertThat(manager.memoryUsedBytes()).isEqualTo(first + big.bytes() + small.bytes());

    manager.unload("big");
    assertThat(manager.memoryUsedBytes()).isEqualTo(first + small.bytes());
    assertThat(manager.memory("big")).isEmpty();
  }

  @Test
  void evictionsThatMakeRoomForAnOnDemandLoad_closeTheirRunnersInsideTheOnDemandLoadersSection() throws Exception {
    // Closing an evicted version's sessions is load work: at normal priority it held serving threads' cores.
    List<String> closedWhere = startRecordingWhereRunnersClose();
    assertThat(isAnswer(call("a", 1), 1, 'a')).isTrue();
    assertThat(isAnswer(call("b", 1), 1, 'b')).isTrue();

    assertThat(isAnswer(call("c", 1), 1, 'c')).isTrue();

    assertThat(events.evicted).containsExactly("a");
    assertThat(closedWhere).singleElement().asString().startsWith("inside a load section on quiver-ondemand-");
  }

  @Test
  void evictionsThatMakeRoomForAnExplicitLoad_closeTheirRunnersInsideALoadSection() throws Exception {
    // An operator's load (control plane, Triton's repository API) evicts on a load-pool thread or, once its
    // measured cost is known, on the caller's: either way the closing is load work and yields to serving.
    List<String> closedWhere = startRecordingWhereRunnersClose();
    manager.load("a");
    manager.load("b");
    assertThat(isAnswer(call("a", 1), 1, 'a')).isTrue();
    assertThat(isAnswer(call("b", 1), 1, 'b')).isTrue();

    manager.load("c");
    manager.unload("b");

    assertThat(events.evicted).containsExactly("a");
    assertThat(closedWhere).hasSize(2).allSatisfy(where -> assertThat(where).startsWith("inside a load section on "));
  }

  /**
   * Models a, b and c of 4 MiB under a lazy manager whose budget holds two; its load sections record, for
   * every runner closed, whether a section was open on the closing thread and which thread that was.
   */
  private List<String> startRecordingWhereRunnersClose() throws Exception {
    for (String name : List.of("a", "b", "c")) {
      model(root, name, name.charAt(0), 4, 0);
    }
    // Sections nest as LoadScheduling says: a thread is inside one until its outermost section closes.
    ThreadLocal<int[]> open = ThreadLocal.withInitial(() -> new int[1]);
    LoadScheduling marking = () -> {
      open.get()[0]++;
      return () -> open.get()[0]--;
    };
    List<String> closedWhere = new CopyOnWriteArrayList<>();
    runtime.onClose = () -> closedWhere.add((open.get()[0] > 0 ? "inside" : "outside") + " a load section on "
        + Thread.currentThread().getName());
    start(lazy(9 * MIB).withLoadScheduling(marking)); // two models of 4 MiB fit, a third does not
    return closedWhere;
  }

  @Test
  void loadsBeyondTheBudget_evictTheLeastRecentlyUsed_inOrder() throws Exception {
    for (String name : List.of("a", "b", "c", "d", "e")) {
      model(root, name, name.charAt(0), 4, 0);
    }
    // Three models of 4 MiB fit (with room for their files), a fourth does not.
    start(lazy(13 * MIB));
    assertThat(isAnswer(call("a", 1), 1, 'a')).isTrue();
    assertThat(isAnswer(call("b", 1), 1, 'b')).isTrue();
    assertThat(isAnswer(call("c", 1), 1, 'c')).isTrue();
    assertThat(events.evicted).isEmpty();
    call("a", 2); // a is now the most recently used: b is the least

    assertThat(isAnswer(call("d", 1), 1, 'd')).isTrue();
    assertThat(events.evicted).containsExactly("b");
    assertThat(isAnswer(call("e", 1), 1, 'e')).isTrue();
    assertThat(events.evicted).containsExactly("b", "c");
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(13 * MIB);
    assertThat(manager.status("b").get(0).reason()).contains("evicted").contains("memory budget").contains("next request");

    // A request for an evicted model loads it again (evicting the least recently used, a), and gets a right answer.
    assertThat(isAnswer(call("b", 7), 7, 'b')).isTrue();
    assertThat(events.evicted).containsExactly("b", "c", "a");
    assertThat(runtime.opened("b")).isEqualTo(2);
  }

  @Test
  void pinnedModels_loadAtStart_andAreNeverEvicted() throws Exception {
    model(root, "pinned_flag", 100, 4, 0);
    Files.createDirectories(root.resolve("pinned_config"));
    Files.writeString(root.resolve("pinned_config/config.pbtxt"),
        "parameters { key: \"quiver.pinned\" value { string_value: \"true\" } }\n");
    model(root, "pinned_config", 200, 4, 0);
    for (int i = 0; i < 6; i++) {
      model(root, "m" + i, i, 4, 0);
    }
    start(lazy(17 * MIB, "pinned_flag"));
    assertThat(manager.isReady("pinned_flag", "")).as("a pinned model loads at start in lazy mode").isTrue();
    assertThat(manager.isReady("m0", "")).isFalse();
    assertThat(manager.allReady()).isTrue();
    call("pinned_config", 0);
    assertThat(manager.isPinned("pinned_config")).isTrue();

    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 6; i++) {
        assertThat(isAnswer(call("m" + i, round), round, i)).isTrue();
      }
    }
    assertThat(events.evicted).hasSizeGreaterThanOrEqualTo(10).doesNotContain("pinned_flag", "pinned_config");
    assertThat(manager.isReady("pinned_flag", "")).isTrue();
    assertThat(manager.isReady("pinned_config", "")).isTrue();
    assertThat(runtime.opened("pinned_flag")).isEqualTo(1);
  }

  @Test
  void aBudgetHeldByPinnedModels_refusesALoad_withARetryHint_andEvictsNothing() throws Exception {
    model(root, "p1", 1, 8, 0);
    model(root, "p2", 2, 8, 0);
    model(root, "other", 3, 8, 0);
    start(lazy(20 * MIB, "p1", "p2"));
    // Its file is tiny, so the first load only learns its size by loading; it is then taken back out.
    Throwable failure = org.assertj.core.api.Assertions.catchThrowable(
        () -> infer(manager, "other", 0, InferRequest.NO_DEADLINE).get(30, TimeUnit.SECONDS)).getCause();
    assertThat(failure).isInstanceOfSatisfying(InferenceException.class, e -> {
      assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
      assertThat(e.retryAfterNanos()).isPositive();
      assertThat(e.getMessage()).contains("does not fit the memory budget").contains("pinned: [p1, p2]");
    });
    assertThat(manager.isReady("other", "")).isFalse();
    assertThat(manager.isReady("p1", "")).isTrue();
    assertThat(manager.isReady("p2", "")).isTrue();
    assertThat(events.evicted).isEmpty();
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(20 * MIB);
    // Once measured, a new attempt is refused up front, without opening anything.
    int opened = runtime.opened("other");
    InferenceException again = catchInference(() -> manager.load("other"));
    assertThat(again.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
    assertThat(again.getMessage()).contains("the memory budget of 20.0 MiB is full");
    assertThat(runtime.opened("other")).isEqualTo(opened);
  }

  @Test
  void aModelAloneOverTheBudget_failsToLoad_withAClearReason() throws Exception {
    model(root, "huge", 1, 64, 0);
    model(root, "fine", 2, 4, 0);
    start(ModelManagerOptions.explicit().withMemoryBudgetBytes(32 * MIB));
    manager.load("fine");

    // First load: its files are tiny, so it loads, measures 64 MiB and is taken back out.
    InferenceException first = catchInference(() -> manager.load("huge"));
    assertThat(first.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
    assertThat(first.getMessage()).contains("measured 64.0 MiB").contains("more than the whole memory budget of 32.0 MiB");
    assertThat(manager.isReady("huge", "")).isFalse();
    // Second load: refused before anything is opened, from what it measured.
    int opened = runtime.opened("huge");
    InferenceException second = catchInference(() -> manager.load("huge"));
    assertThat(second.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
    assertThat(second.getMessage()).contains("needs at least 64.0 MiB").contains("more than the whole memory budget");
    assertThat(runtime.opened("huge")).isEqualTo(opened);
    assertThat(manager.isReady("fine", "")).as("the model that fits was not evicted for it").isTrue();
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(32 * MIB);
  }

  @Test
  void startUnderABudget_loadsWhatFits_andTheRestLoadsOnDemand() throws Exception {
    for (int i = 0; i < 5; i++) {
      model(root, "m" + i, i, 4, 0);
    }
    // NONE mode, budget for two: the first loads measure their size; the rest wait for their first request.
    start(ModelManagerOptions.defaults().withMemoryBudgetBytes(9 * MIB));
    assertThat(manager.allReady()).as("models left out for the budget do not hold readiness back").isTrue();
    long resident = manager.loadedModels().stream().filter(m -> manager.isReady(m, "")).count();
    assertThat(resident).isBetween(1L, 2L);
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(9 * MIB);
    for (int i = 0; i < 5; i++) {
      assertThat(isAnswer(call("m" + i, 3), 3, i)).as("m" + i).isTrue();
    }
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(9 * MIB);
  }

  @Test
  void estimatesForVersionsNeverLoaded_followTheMedianRatio_soOneOutlierDoesNotInflateThem() {
    MemoryBudget budget = new MemoryBudget(1L << 30);
    assertThat(budget.estimate(1000, null)).as("nothing learned yet: the files' size").isEqualTo(1000);
    for (long cost : new long[] {3000, 3000, 3000, 40_000}) { // ratios 3, 3, 3 and one outlier of 40
      budget.tryReserve(cost);
      budget.loaded(cost, VersionMemory.of(1000, cost, -1));
    }
    assertThat(budget.estimate(1000, null)).as("median ratio 3 (the mean would be 12.25)").isEqualTo(3000);
    assertThat(budget.estimate(1000, 500L)).as("its own measurement, never under its files").isEqualTo(1000);
    assertThat(budget.estimate(1000, 7000L)).isEqualTo(7000);
    // Only the last loads count: a run of cheap loads replaces what was learned before.
    for (int i = 0; i < MemoryBudget.RATIO_WINDOW; i++) {
      budget.tryReserve(1000);
      budget.loaded(1000, VersionMemory.of(1000, 1000, -1));
    }
    assertThat(budget.estimate(1000, null)).isEqualTo(1000);
  }

  @Test
  void aVersionNeverLoaded_whoseGuessDoesNotFitBesidePinnedModels_loadsAtItsFilesSize_andStaysWhenItFits() throws Exception {
    model(root, "pinned", 1, 8, 0);
    // Models whose cost is 4× their files teach the estimator a ratio of about 4.
    for (String name : List.of("l1", "l2", "l3")) {
      model(root, name, name.charAt(1), 4, 0);
      pad(name, MIB);
    }
    model(root, "wide", 7, 0, 0);
    pad("wide", 7 * MIB / 2); // guessed at about 14 MiB; what it really holds is its 3.5 MiB of files
    start(ModelManagerOptions.explicit("pinned").withMemoryBudgetBytes(21 * MIB).withPinnedModels(List.of("pinned")));
    for (String name : List.of("l1", "l2", "l3")) {
      manager.load(name);
    }
    // The first two loads already needed the fallback (the pinned model's ratio, 64, was all there was to learn
    // from). Evicting l1-l3 leaves 13 MiB beside the pinned model: less than the guess, more than the files.
    manager.load("wide");
    assertThat(manager.isReady("wide", "")).isTrue();
    assertThat(isAnswer(call("wide", 2), 2, 7)).isTrue();
    assertThat(manager.isReady("pinned", "")).isTrue();
    assertThat(events.evicted).as("least recently used first; the pinned model never").containsExactly("l1", "l2", "l3");
    assertThat(manager.memoryUsedBytes()).isLessThanOrEqualTo(21 * MIB);
  }

  @Test
  void aVersionWhoseFilesChanged_isJudgedAfresh_notByWhatItsOldFilesMeasured() throws Exception {
    model(root, "m", 1, 64, 0);
    start(ModelManagerOptions.explicit().withMemoryBudgetBytes(32 * MIB));
    assertThat(catchInference(() -> manager.load("m")).code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
    assertThat(catchInference(() -> manager.load("m")).getMessage()).contains("reported by its runtime when it last loaded");
    // New files under the same version number, for a model that fits: the old figures no longer apply.
    JavaIdentityRuntime.write(root.resolve("m").resolve("1"), "identity FP32 4\noffset 1\nmemory_mb 4\n");
    manager.load("m");
    assertThat(manager.isReady("m", "")).isTrue();
    assertThat(isAnswer(call("m", 2), 2, 1)).isTrue();
    assertThat(manager.memory("m").get(1L).reportedBytes()).isEqualTo(4 * MIB);
  }

  @Test
  void aVersionWhoseDeclaredConfigChanged_isJudgedAfresh_notByWhatItsOldConfigMeasured() throws Exception {
    model(root, "m", 1, 20, 0);
    Files.writeString(root.resolve("m").resolve("config.pbtxt"), "instance_group [{ count: 2, kind: KIND_CPU }]\n");
    start(ModelManagerOptions.explicit().withMemoryBudgetBytes(32 * MIB));
    assertThat(catchInference(() -> manager.load("m")).getMessage()).contains("measured 40.0 MiB once loaded");
    assertThat(catchInference(() -> manager.load("m")).getMessage()).contains("needs at least 40.0 MiB");
    // One instance instead of two: the same files, a new config, and half the cost.
    Files.writeString(root.resolve("m").resolve("config.pbtxt"), "instance_group [{ count: 1, kind: KIND_CPU }]\n");
    manager.load("m");
    assertThat(isAnswer(call("m", 2), 2, 1)).isTrue();
    assertThat(manager.memory("m").get(1L).reportedBytes()).isEqualTo(20 * MIB);
  }

  /** Adds a file of {@code bytes} to the model's version 1 (counted in its files' size; the runtime ignores it). */
  private void pad(String model, long bytes) throws java.io.IOException {
    Files.write(root.resolve(model).resolve("1").resolve("padding.bin"), new byte[(int) bytes]);
  }

  private static InferenceException catchInference(Runnable r) {
    try {
      r.run();
    } catch (InferenceException e) {
      return e;
    }
    throw new AssertionError("expected an InferenceException");
  }
}
