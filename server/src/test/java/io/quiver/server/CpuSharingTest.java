package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import io.quiver.lifecycle.ControlMode;
import io.quiver.server.CpuSharing.EventLoopPolicy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The event loops' CPU policy, read back from the kernel (/proc/thread-self/stat). */
class CpuSharingTest {
  private static final int SCHED_OTHER = 0;
  private static final int SCHED_BATCH = 3;

  @TempDir Path repository;

  @Test
  void autoBatchesOnlyWhereLoopsAndComputeThreadsOutnumberTheCores() {
    assertThat(EventLoopPolicy.AUTO.batch(2, 2, 2)).isTrue();
    assertThat(EventLoopPolicy.AUTO.batch(16, 16, 16)).isTrue();
    assertThat(EventLoopPolicy.AUTO.batch(16, 4, 12)).isFalse();
    assertThat(EventLoopPolicy.BATCH.batch(16, 1, 1)).isTrue();
    assertThat(EventLoopPolicy.NORMAL.batch(1, 8, 8)).isFalse();
    assertThat(ServerOptions.Execution.defaults().eventLoopPolicy()).isEqualTo(EventLoopPolicy.AUTO);
    assertThat(EventLoopPolicy.parse(" Batch ")).isEqualTo(EventLoopPolicy.BATCH);
    assertThatThrownBy(() -> EventLoopPolicy.parse("fifo"))
        .hasMessageContaining("--event-loop-scheduling").hasMessageContaining("'fifo'");
  }

  @Test
  void aThreadSetsItsOwnPolicyAndCanSetItBack() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self/stat")), "Linux only");
    CompletableFuture<List<Integer>> seen = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        List<Integer> policies = new ArrayList<>();
        policies.add(currentPolicy());
        assertThat(CpuSharing.applyToCurrentThread(true)).isTrue();
        policies.add(currentPolicy());
        assertThat(CpuSharing.applyToCurrentThread(false)).isTrue();
        policies.add(currentPolicy());
        seen.complete(policies);
      } catch (Throwable e) {
        seen.completeExceptionally(e);
      }
    });
    t.start();
    assertThat(seen.get(10, TimeUnit.SECONDS)).containsExactly(SCHED_OTHER, SCHED_BATCH, SCHED_OTHER);
    // The test's own thread was never touched: the policy is per thread.
    assertThat(currentPolicy()).isEqualTo(SCHED_OTHER);
  }

  @Test
  void theServersEventLoopsRunUnderThePolicyItWasGiven() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self/stat")), "Linux only");
    assertThat(loopPolicies(EventLoopPolicy.BATCH)).containsOnly(SCHED_BATCH).hasSize(2);
    assertThat(loopPolicies(EventLoopPolicy.NORMAL)).containsOnly(SCHED_OTHER).hasSize(2);
  }

  private List<Integer> loopPolicies(EventLoopPolicy policy) throws Exception {
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, 0, 1024 * 1024, false)
        .withExecution(ServerOptions.Execution.defaults().withEventLoopPolicy(policy));
    try (ServerFixture fixture = new ServerFixture(options)) {
      List<Integer> policies = new ArrayList<>();
      for (EventExecutor loop : fixture.server.eventLoops()) {
        policies.add(loop.submit(CpuSharingTest::currentPolicy).get(10, TimeUnit.SECONDS));
      }
      return policies;
    }
  }

  @Test
  void backgroundWorkSuspendsTheBatchPolicyUntilTheLastPieceEnds() throws Exception {
    assumeTrue(Files.exists(Path.of("/proc/thread-self/stat")), "Linux only");
    NioEventLoopGroup loops = new NioEventLoopGroup(2, CpuSharing.batchThreads("test-loop"));
    try {
      CpuSharing.LoopScheduling scheduling = new CpuSharing.LoopScheduling(loops, true);
      assertThat(policies(loops)).containsExactly(SCHED_BATCH, SCHED_BATCH);
      scheduling.backgroundWorkStarted();
      assertThat(policies(loops)).containsExactly(SCHED_OTHER, SCHED_OTHER);
      scheduling.backgroundWorkStarted(); // a second job
      scheduling.backgroundWorkEnded();
      assertThat(policies(loops)).as("one job still runs").containsExactly(SCHED_OTHER, SCHED_OTHER);
      scheduling.backgroundWorkEnded();
      assertThat(policies(loops)).containsExactly(SCHED_BATCH, SCHED_BATCH);
      assertThatThrownBy(scheduling::backgroundWorkEnded).isInstanceOf(IllegalStateException.class);

      // Loops started under the default policy stay there whatever runs.
      CpuSharing.LoopScheduling normal = new CpuSharing.LoopScheduling(loops, false);
      for (EventExecutor loop : loops) {
        loop.submit(() -> CpuSharing.applyToCurrentThread(false)).get(10, TimeUnit.SECONDS);
      }
      normal.backgroundWorkStarted();
      normal.backgroundWorkEnded();
      assertThat(policies(loops)).containsExactly(SCHED_OTHER, SCHED_OTHER);
    } finally {
      loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
    }
  }

  /** Each loop's policy, read on the loop after every task queued before. */
  private static List<Integer> policies(Iterable<EventExecutor> loops) throws Exception {
    List<Integer> policies = new ArrayList<>();
    for (EventExecutor loop : loops) {
      policies.add(loop.submit(CpuSharingTest::currentPolicy).get(10, TimeUnit.SECONDS));
    }
    return policies;
  }

  /** Field 41 of /proc/thread-self/stat: the calling thread's scheduling policy. */
  private static int currentPolicy() throws IOException {
    String stat = Files.readString(Path.of("/proc/thread-self/stat"), StandardCharsets.US_ASCII);
    // Fields after the command name (in parentheses, which may hold spaces) start at field 3.
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Integer.parseInt(fields[41 - 3]);
  }
}
