package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.quiver.lifecycle.LoadScheduling;
import java.util.ArrayList;
import java.util.List;
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
      CompletableFuture<int[]> seen = new CompletableFuture<>();
      Thread load = new Thread(() -> {
        try {
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
          seen.complete(new int[] {before, inside, after, child[1], childAfter});
        } catch (Throwable e) {
          seen.completeExceptionally(e);
        }
      });
      load.start();
      // before, inside the section, after it; the started thread at birth and after the section closed
      assertThat(seen.get(10, TimeUnit.SECONDS)).containsExactly(SCHED_OTHER, SCHED_IDLE, SCHED_OTHER, SCHED_IDLE, SCHED_OTHER);
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
        Thread spinner = new Thread(() -> {
          long x = 0;
          while (!stop.get()) {
            x += System.nanoTime() & 1;
          }
          if (x == 42) {
            System.out.print("");
          }
        }, "spinner-" + i);
        spinner.setDaemon(true);
        spinner.start();
        spinners.add(spinner);
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
