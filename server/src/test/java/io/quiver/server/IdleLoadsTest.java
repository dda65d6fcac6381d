package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.quiver.lifecycle.LoadScheduling;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** Loads under SCHED_IDLE ({@link IdleLoads}), with every policy read back from the kernel. */
class IdleLoadsTest {
  private static final int SCHED_OTHER = 0;
  private static final int SCHED_IDLE = 5;

  @Test
  void zeroMeansNormalAndANegativeBoundIsRefused() {
    assertThat(IdleLoads.create(0)).isSameAs(LoadScheduling.NORMAL);
    assertThatThrownBy(() -> IdleLoads.create(-1)).hasMessageContaining("--model-load-yield-ms");
    assertThatThrownBy(() -> ServerOptions.Lifecycle.defaults().withLoadYieldMillis(-5))
        .hasMessageContaining("--model-load-yield-ms");
    assertThat(ServerOptions.Lifecycle.defaults().loadYieldMillis()).isEqualTo(50);
    assertThat(Main.serveOptions("serve").lifecycle().loadYieldMillis()).isEqualTo(50);
    assertThat(Main.serveOptions("serve", "--model-load-yield-ms=0").lifecycle().loadYieldMillis()).isZero();
    assertThatThrownBy(() -> Main.serveOptions("serve", "--model-load-yield-ms=-1"))
        .isInstanceOf(picocli.CommandLine.ParameterException.class).hasMessageContaining("--model-load-yield-ms")
        .hasMessageContaining("-1");
  }

  @Test
  void aSectionLowersItsThreadAndTheThreadsItStartsUntilItCloses() throws Exception {
    IdleLoads loads = idleLoadsOrSkip(60_000);
    try {
      int[] seen = onFreshThread(() -> {
        int tid = CpuSharing.LibC.INSTANCE.gettid();
        int before = policy(tid);
        int[] child = new int[2];
        CountDownLatch childStarted = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread runtimeThread;
        int inside;
        try (LoadScheduling.Section section = loads.enter()) {
          inside = policy(tid);
          // A thread a runtime would start during the load (an intra-op pool) inherits the policy.
          runtimeThread = new Thread(() -> {
            child[0] = CpuSharing.LibC.INSTANCE.gettid();
            child[1] = policy(child[0]);
            childStarted.countDown();
            await(release);
          });
          runtimeThread.start();
          await(childStarted);
        }
        int after = policy(tid);
        int childAfter = policy(child[0]);
        release.countDown();
        runtimeThread.join();
        return new int[] {before, inside, after, child[1], childAfter};
      });
      // before, inside the section, after it; the started thread at birth and after the section closed
      assertThat(seen).containsExactly(SCHED_OTHER, SCHED_IDLE, SCHED_OTHER, SCHED_IDLE, SCHED_OTHER);
    } finally {
      loads.close();
    }
  }

  @Test
  void aSectionEnteredInsideAnotherChangesNothingAndTheOuterCloseRaises() throws Exception {
    IdleLoads loads = idleLoadsOrSkip(60_000);
    try {
      int[] seen = onFreshThread(() -> {
        int tid = CpuSharing.LibC.INSTANCE.gettid();
        int nestedInside;
        int afterNested;
        try (LoadScheduling.Section outer = loads.enter()) {
          // e.g. an on-demand load whose eviction closes a version: the drain enters a section of its own
          try (LoadScheduling.Section inner = loads.enter()) {
            nestedInside = policy(tid);
          }
          afterNested = policy(tid);
        }
        return new int[] {nestedInside, afterNested, policy(tid)};
      });
      // inside both, after the inner closed (still lowered: the outer is open), after the outer closed
      assertThat(seen).containsExactly(SCHED_IDLE, SCHED_IDLE, SCHED_OTHER);
    } finally {
      loads.close();
    }
  }

  @Test
  void aLoadStarvedPastItsBoundIsRaisedWhileItStillRuns() throws Exception {
    IdleLoads loads = idleLoadsOrSkip(20);
    int cores = Runtime.getRuntime().availableProcessors();
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> spinners = new ArrayList<>();
    try {
      // Normal-policy threads that keep every core busy: a SCHED_IDLE load beside them waits for a core.
      for (int i = 0; i < cores + 1; i++) {
        spinners.add(spin("spinner-" + i, stop, null));
      }
      CompletableFuture<Integer> tidOf = new CompletableFuture<>();
      CountDownLatch done = new CountDownLatch(1);
      Thread load = new Thread(() -> {
        try (LoadScheduling.Section section = loads.enter()) {
          tidOf.complete(CpuSharing.LibC.INSTANCE.gettid());
          while (done.getCount() > 0) {
            Thread.onSpinWait(); // a load that wants the CPU throughout
          }
        }
      }, "load");
      load.setDaemon(true);
      load.start();
      int tid = tidOf.get(30, TimeUnit.SECONDS);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      int policy = policy(tid);
      while (policy == SCHED_IDLE && System.nanoTime() < deadline) {
        Thread.sleep(10);
        policy = policy(tid);
      }
      assertThat(policy).as("the starved load's policy while it is still in its section").isEqualTo(SCHED_OTHER);
      assertThat(IdleLoads.runQueueWaitNanos(tid)).as("its run-queue wait").isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(20));
      done.countDown();
      load.join(30_000);
      assertThat(load.isAlive()).isFalse();
    } finally {
      stop.set(true);
      for (Thread spinner : spinners) {
        spinner.join(10_000);
      }
      loads.close();
    }
  }

  @Test
  void theJitsCompilerThreadsFollowTheLoadsAndAreRaisedOnceTheLingerHasPassed() throws Exception {
    LoadScheduling created = IdleLoads.create(60_000, 1500);
    assumeTrue(created instanceof IdleLoads, "SCHED_IDLE cannot be left again here (no CAP_SYS_NICE), or not Linux");
    IdleLoads loads = (IdleLoads) created;
    try {
      assumeTrue(!compilerThreadPolicies().isEmpty(), "this JVM has no JIT compiler threads (interpreter only)");
      assertThat(compilerThreadPolicies()).containsOnly(SCHED_OTHER);
      try (LoadScheduling.Section section = loads.enter()) {
        assertThat(awaitCompilerThreads(SCHED_IDLE)).containsOnly(SCHED_IDLE);
      }
      // The last section closed: they stay lowered for the linger (the compilations the load set off) ...
      assertThat(loads.compilerThreadsLowered()).isTrue();
      assertThat(compilerThreadPolicies()).containsOnly(SCHED_IDLE);
      // ... and a load that starts meanwhile keeps them there; once the linger passes after it, they are raised.
      try (LoadScheduling.Section again = loads.enter()) {
        assertThat(compilerThreadPolicies()).containsOnly(SCHED_IDLE);
      }
      assertThat(awaitCompilerThreads(SCHED_OTHER)).containsOnly(SCHED_OTHER);
      assertThat(loads.compilerThreadsLowered()).isFalse();
    } finally {
      loads.close();
    }
    assertThat(compilerThreadPolicies()).containsOnly(SCHED_OTHER);
  }

  @Test
  void aStarvingCompilerThreadIsRaisedWhileLoadsStillRun() throws Exception {
    IdleLoads loads = idleLoadsOrSkip(200); // a compiler thread is judged over 1 s windows: seen lowered first
    int cores = Runtime.getRuntime().availableProcessors();
    AtomicBoolean stop = new AtomicBoolean();
    List<Thread> threads = new ArrayList<>();
    try {
      for (int i = 0; i < cores + 1; i++) { // normal-policy threads that keep every core busy
        threads.add(spin("spinner-" + i, stop, null));
      }
      // A thread with a compiler thread's name (the JVM names its own "C2 CompilerThread0" and so on), busy
      // throughout as a compiler with a long queue would be.
      CompletableFuture<Integer> compilerTid = new CompletableFuture<>();
      threads.add(spin("C2 CompilerThread7", stop, compilerTid));
      int tid = compilerTid.get(30, TimeUnit.SECONDS);
      CountDownLatch done = new CountDownLatch(1);
      Thread load = new Thread(() -> {
        try (LoadScheduling.Section section = loads.enter()) {
          await(done);
        }
      }, "load");
      load.setDaemon(true);
      load.start();
      assertThat(awaitPolicy(tid, SCHED_IDLE)).as("lowered when the load's section opened").isEqualTo(SCHED_IDLE);
      assertThat(awaitPolicy(tid, SCHED_OTHER)).as("raised once it starved, the load still running").isEqualTo(SCHED_OTHER);
      assertThat(loads.compilerThreadsLowered()).as("the period goes on for the others").isTrue();
      done.countDown();
      load.join(30_000);
    } finally {
      stop.set(true);
      for (Thread t : threads) {
        t.join(10_000);
      }
      loads.close();
    }
  }

  private static Thread spin(String name, AtomicBoolean stop, CompletableFuture<Integer> tid) {
    Thread thread = new Thread(() -> {
      if (tid != null) {
        tid.complete(CpuSharing.LibC.INSTANCE.gettid());
      }
      long x = 0;
      while (!stop.get()) {
        x += System.nanoTime() & 1;
      }
      if (x == 42) {
        System.out.print("");
      }
    }, name);
    thread.setDaemon(true);
    thread.start();
    return thread;
  }

  private static int awaitPolicy(int tid, int wanted) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    int policy = policy(tid);
    while (policy != wanted && System.nanoTime() < end) {
      Thread.sleep(2);
      policy = policy(tid);
    }
    return policy;
  }

  /** The policy of each of the JVM's compiler threads alive now. */
  private static List<Integer> compilerThreadPolicies() throws java.io.IOException {
    List<Integer> policies = new ArrayList<>();
    try (java.util.stream.Stream<java.nio.file.Path> tasks = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/task"))) {
      for (java.nio.file.Path task : tasks.toList()) {
        try {
          if (java.nio.file.Files.readString(task.resolve("comm")).contains("CompilerThre")) {
            policies.add(policy(Integer.parseInt(task.getFileName().toString())));
          }
        } catch (java.io.IOException | com.sun.jna.LastErrorException e) {
          // the JVM let that compiler thread go meanwhile
        }
      }
    }
    return policies;
  }

  /** The compiler threads' policies once all of them have {@code wanted}, or as they are after 10 s. */
  private static List<Integer> awaitCompilerThreads(int wanted) throws Exception {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    List<Integer> policies = compilerThreadPolicies();
    while (!policies.stream().allMatch(p -> p == wanted) && System.nanoTime() < end) {
      Thread.sleep(10);
      policies = compilerThreadPolicies();
    }
    return policies;
  }

  /** Runs {@code body} on a new thread (one at the normal policy, as a load-pool thread starts) and returns what it returned. */
  private static int[] onFreshThread(Callable<int[]> body) throws Exception {
    CompletableFuture<int[]> result = new CompletableFuture<>();
    Thread thread = new Thread(() -> {
      try {
        result.complete(body.call());
      } catch (Throwable e) {
        result.completeExceptionally(e);
      }
    });
    thread.start();
    return result.get(10, TimeUnit.SECONDS);
  }

  private static IdleLoads idleLoadsOrSkip(long maxWaitMillis) {
    LoadScheduling created = IdleLoads.create(maxWaitMillis);
    assumeTrue(created instanceof IdleLoads, "SCHED_IDLE cannot be left again here (no CAP_SYS_NICE), or not Linux");
    return (IdleLoads) created;
  }

  private static int policy(int tid) {
    return CpuSharing.LibC.INSTANCE.sched_getscheduler(tid);
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
