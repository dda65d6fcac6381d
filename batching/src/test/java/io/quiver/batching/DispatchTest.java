package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.batching.TestSupport.ArithmeticRunner;
import io.quiver.batching.TestSupport.ManualClock;
import io.quiver.batching.TestSupport.Req;
import io.quiver.batching.TestSupport.Result;
import io.quiver.core.InferRequest;
import io.quiver.core.Tensor;
import io.quiver.core.spi.TransportExecutor;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelParameter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Who runs what in the thread-less batcher: answers come back as one task per transport thread per
 * batch, cheap batches run on the transport thread that formed them and slow ones never do, a batch
 * slot is not reused before its answers were delivered, an idle model costs no thread, and the
 * adaptive queue delay stops making a lone request wait for partners that do not come.
 */
@Timeout(30)
class DispatchTest {
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    Collections.reverse(toClose);
    for (AutoCloseable c : toClose) {
      c.close();
    }
  }

  /** A real single thread playing an event loop: counts the tasks it is given. */
  static final class TestLoop implements TransportExecutor, AutoCloseable {
    final ScheduledExecutorService thread;
    final AtomicInteger executed = new AtomicInteger();
    volatile Thread owner;

    TestLoop(String name) {
      thread = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        owner = t;
        return t;
      });
    }

    @Override
    public void execute(Runnable task) {
      executed.incrementAndGet();
      thread.execute(task);
    }

    @Override
    public boolean inTransportThread() {
      return Thread.currentThread() == owner;
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
      thread.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
    }

    /** Runs {@code body} on the loop thread and waits for it. */
    void runAndWait(Runnable body) throws Exception {
      thread.submit(body).get(TestSupport.WAIT_MS, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
      thread.shutdownNow();
    }
  }

  /** Records the thread each callback ran on. */
  static final class ThreadRecorder extends Result {
    volatile Thread thread;

    @Override
    public void onSuccess(InferRequest request, Tensor[] outputs) {
      thread = Thread.currentThread();
      super.onSuccess(request, outputs);
    }
  }

  private DynamicBatcher live(ModelConfig config, long inlineMaxNanos, io.quiver.core.spi.ModelRunner... runners) {
    DynamicBatcher b = TestSupport.live(DynamicBatcher.builder().model("m", 1, config,
        TestSupport.identitySignature(config.getMaxBatchSize(), 2)).runners(List.of(runners))
        .inlineMaxNanos(inlineMaxNanos)).build();
    toClose.add(b);
    return b;
  }

  /** A batcher on a manual clock whose dispatch cycles the test runs ({@code doWork}); closed after the test. */
  private DynamicBatcher manual(ModelConfig config, ManualClock clock, io.quiver.core.spi.ModelRunner runner) {
    DynamicBatcher b = DynamicBatcher.builder().model("m", 1, config,
        TestSupport.identitySignature(config.getMaxBatchSize(), 2)).runners(List.of(runner)).clock(clock)
        .compute(TestSupport.POOL).manualDispatch().build();
    toClose.add(b);
    return b;
  }

  private TestLoop loop(String name) {
    TestLoop l = new TestLoop(name);
    toClose.add(l);
    return l;
  }

  private static ModelConfig batching(int maxBatch, long delayMicros) {
    return ModelConfig.newBuilder().setName("m").setMaxBatchSize(maxBatch)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().setMaxQueueDelayMicroseconds(delayMicros)).build();
  }

  @Test
  void answers_comeBackOnTheSubmittingTransportThread_asOneTaskPerBatch() throws Exception {
    TestLoop a = loop("loop-a");
    TestLoop b = loop("loop-b");
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.gate = new CountDownLatch(1);
    DynamicBatcher batcher = live(batching(16, 0), 0, runner); // never inline: every batch on the pool
    // A first request occupies the instance so that the next eight queue up and form one batch.
    List<ThreadRecorder> first = new ArrayList<>();
    a.runAndWait(() -> first.add(submit(batcher, 0, a)));
    runner.entered.await();
    List<ThreadRecorder> results = new ArrayList<>();
    a.runAndWait(() -> {
      for (int i = 1; i <= 4; i++) {
        results.add(submit(batcher, i, a));
      }
    });
    b.runAndWait(() -> {
      for (int i = 5; i <= 8; i++) {
        results.add(submit(batcher, i, b));
      }
    });
    int tasksBeforeA = a.executed.get();
    int tasksBeforeB = b.executed.get();
    runner.gate.countDown();
    first.get(0).await();
    results.forEach(Result::await);

    assertThat(runner.batchRows).containsExactly(1, 8);
    assertThat(first.get(0).thread).isEqualTo(a.owner);
    for (int i = 0; i < 8; i++) {
      assertThat(results.get(i).thread).as("request %d", i + 1).isEqualTo(i < 4 ? a.owner : b.owner);
      assertThat(results.get(i).floats(0)).containsExactly(i + 1, i + 1.5f);
    }
    // Each batch came back as exactly one task per loop: to loop a the first batch's answer and the
    // batch of eight's, to loop b the batch of eight's. No dispatch round was needed for the eight: the
    // instance was busy when they arrived, and its compute thread took them when it finished.
    assertThat(a.executed.get() - tasksBeforeA).isEqualTo(2);
    assertThat(b.executed.get() - tasksBeforeB).isEqualTo(1);
  }

  @Test
  void cheapBatches_runInlineOnTheTransportThread_onceMeasured() throws Exception {
    TestLoop a = loop("loop-a");
    Set<String> runnerThreads = ConcurrentHashMap.newKeySet();
    ArithmeticRunner runner = new ArithmeticRunner() {
      @Override
      public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
        runnerThreads.add(Thread.currentThread().getName());
        return super.run(inputs, outputIndices);
      }
    };
    DynamicBatcher batcher = live(batching(4, 0), TimeUnit.SECONDS.toNanos(1), runner);
    for (int i = 0; i < DynamicBatcher.INLINE_MIN_SAMPLES; i++) { // measured on the pool first
      int id = i;
      ThreadRecorder[] r = new ThreadRecorder[1];
      a.runAndWait(() -> r[0] = submit(batcher, id, a));
      r[0].await();
    }
    assertThat(runnerThreads).noneMatch(name -> name.equals("loop-a"));
    runnerThreads.clear();
    List<ThreadRecorder> results = new ArrayList<>();
    a.runAndWait(() -> {
      for (int i = 0; i < 4; i++) {
        results.add(submit(batcher, 100 + i, a));
      }
    });
    results.forEach(Result::await);
    assertThat(runnerThreads).containsExactly("loop-a");
    assertThat(runner.batchRows.subList(DynamicBatcher.INLINE_MIN_SAMPLES, runner.batchRows.size())).containsExactly(4);
  }

  @Test
  void slowModel_neverRunsOnTheTransportThread() throws Exception {
    TestLoop a = loop("loop-a");
    Set<String> runnerThreads = ConcurrentHashMap.newKeySet();
    ArithmeticRunner runner = new ArithmeticRunner() {
      @Override
      public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
        runnerThreads.add(Thread.currentThread().getName());
        try {
          Thread.sleep(2); // far over the 50 us bound
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return super.run(inputs, outputIndices);
      }
    };
    DynamicBatcher batcher = live(batching(4, 0), TimeUnit.MICROSECONDS.toNanos(50), runner);
    for (int i = 0; i < 3 * DynamicBatcher.INLINE_MIN_SAMPLES; i++) {
      int id = i;
      ThreadRecorder[] r = new ThreadRecorder[1];
      a.runAndWait(() -> r[0] = submit(batcher, id, a));
      r[0].await();
      assertThat(r[0].thread).isEqualTo(a.owner);
    }
    assertThat(runnerThreads).isNotEmpty().noneMatch(name -> name.equals("loop-a"));
  }

  @Test
  void modelParameter_inlineMaxUs_overridesTheServerDefault() {
    ModelConfig config = batching(4, 0).toBuilder().putParameters(BatchingPolicy.PARAM_INLINE_MAX_US,
        ModelParameter.newBuilder().setStringValue("0").build()).build();
    DynamicBatcher batcher = live(config, TimeUnit.SECONDS.toNanos(1), new ArithmeticRunner());
    assertThat(batcher.inlineMaxNanos()).isZero();
  }

  @Test
  void aBatchSlot_isNotReusedBeforeItsAnswersWereDelivered() throws Exception {
    TestLoop a = loop("loop-a");
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher batcher = live(batching(1, 0), 0, runner);
    // Block the loop right after the dispatch round its submissions scheduled: answers to it then
    // queue behind the blocker.
    CountDownLatch loopBlocked = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<ThreadRecorder> results = Collections.synchronizedList(new ArrayList<>());
    toClose.add(0, release::countDown); // runs last (the list is reversed): never leave the loop blocked
    a.execute(() -> {
      for (int i = 0; i < 3; i++) {
        results.add(submit(batcher, i, a));
      }
      a.execute(() -> { // queued behind the dispatch round
        loopBlocked.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
    });
    loopBlocked.await();
    // The instance has two batch slots: two batches run, the third waits for a delivery.
    TestSupport.waitUntil(() -> runner.batchRows.size() == 2);
    Thread.sleep(50); // give a wrong implementation the time to run the third batch
    assertThat(runner.batchRows).hasSize(2);
    release.countDown();
    results.forEach(Result::await);
    assertThat(runner.batchRows).hasSize(3);
    for (int i = 0; i < 3; i++) {
      assertThat(results.get(i).floats(0)).containsExactly(i, i + 0.5f);
    }
  }

  @Test
  void idleModels_costNoThread() {
    int before = Thread.activeCount();
    for (int i = 0; i < 200; i++) {
      live(batching(8, 100), DynamicBatcherBuilder.DEFAULT_INLINE_MAX_NS, new ArithmeticRunner());
    }
    assertThat(Thread.activeCount()).isLessThanOrEqualTo(before + 2); // other tests' threads may come and go
  }

  @Test
  void adaptiveQueueDelay_aLoneRequestStopsWaitingForPartnersThatNeverCome_andWaitsAgainWhenTheyDo() {
    ManualClock clock = new ManualClock();
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(batching(8, 1000), clock, runner);
    // A closed loop of one client: each request waits the full delay and gains no partner.
    for (int i = 0; i < BatchFormer.FRUITLESS_WAITS_TO_SKIP; i++) {
      Result r = submitPlain(b, i);
      b.doWork();
      assertThat(r.isDone()).isFalse();
      clock.advanceMicros(1000);
      TestSupport.pumpUntil(b, r::isDone);
    }
    assertThat(b.skippingQueueDelay()).isTrue();
    // Now a lone request goes at once, without the clock moving.
    Result fast = submitPlain(b, 100);
    TestSupport.pumpUntil(b, fast::isDone);
    // Until the probe: one formation in SKIP_PROBE_PERIOD waits again; a partner arriving during it
    // proves that waiting pays again.
    for (int i = 1; i < BatchFormer.SKIP_PROBE_PERIOD - 1; i++) {
      Result r = submitPlain(b, 200 + i);
      TestSupport.pumpUntil(b, r::isDone);
    }
    Result probe = submitPlain(b, 1000);
    b.doWork();
    assertThat(probe.isDone()).isFalse();
    Result partner = submitPlain(b, 1001);
    clock.advanceMicros(1000);
    TestSupport.pumpUntil(b, () -> probe.isDone() && partner.isDone());
    assertThat(runner.batchRows.get(runner.batchRows.size() - 1)).isEqualTo(2);
    assertThat(b.skippingQueueDelay()).isFalse();
  }

  @Test
  void adaptiveQueueDelay_splitsARoundInTwo_onceAFullWaitHasMeasuredIt() {
    ManualClock clock = new ManualClock();
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(batching(16, 1000), clock, runner);
    // The first round of 8 waits the whole delay: it measures the round.
    List<Result> first = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      first.add(submitPlain(b, i));
      b.doWork();
    }
    assertThat(first).noneMatch(Result::isDone);
    clock.advanceMicros(1000);
    TestSupport.pumpUntil(b, () -> first.stream().allMatch(Result::isDone));
    assertThat(runner.batchRows).containsExactly(8);
    assertThat(b.measuredRoundRows()).isEqualTo(8.0);
    // The next round: three wait, the fourth (half the round) sends all four without the clock moving.
    List<Result> second = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      second.add(submitPlain(b, 10 + i));
      b.doWork();
    }
    assertThat(second).noneMatch(Result::isDone);
    second.add(submitPlain(b, 13));
    TestSupport.pumpUntil(b, () -> second.stream().allMatch(Result::isDone));
    assertThat(runner.batchRows).containsExactly(8, 4);
    // A smaller round than measured still goes once its delay runs out, and the measure follows it.
    Result lone = submitPlain(b, 20);
    b.doWork();
    assertThat(lone.isDone()).isFalse();
    clock.advanceMicros(1000);
    TestSupport.pumpUntil(b, lone::isDone);
    assertThat(b.measuredRoundRows()).isEqualTo(0.75 * 8 + 0.25 * 1);
  }

  @Test
  void adaptiveQueueDelay_doesNotSplitRoundsOfFewerThanFour() {
    ManualClock clock = new ManualClock();
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(batching(16, 1000), clock, runner);
    for (int round = 0; round < 2; round++) {
      List<Result> rs = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        rs.add(submitPlain(b, 10 * round + i));
        b.doWork();
      }
      assertThat(rs).as("round %d waits for its delay", round).noneMatch(Result::isDone);
      clock.advanceMicros(1000);
      TestSupport.pumpUntil(b, () -> rs.stream().allMatch(Result::isDone));
    }
    assertThat(runner.batchRows).containsExactly(3, 3);
  }

  @Test
  void adaptiveQueueDelay_canBeTurnedOff() {
    ManualClock clock = new ManualClock();
    ModelConfig config = batching(8, 1000).toBuilder().putParameters(BatchingPolicy.PARAM_ADAPTIVE_QUEUE_DELAY,
        ModelParameter.newBuilder().setStringValue("false").build()).build();
    DynamicBatcher b = manual(config, clock, new ArithmeticRunner());
    for (int i = 0; i < 2 * BatchFormer.FRUITLESS_WAITS_TO_SKIP; i++) {
      Result r = submitPlain(b, i);
      b.doWork();
      assertThat(r.isDone()).as("request %d waits the full delay", i).isFalse();
      clock.advanceMicros(1000);
      TestSupport.pumpUntil(b, r::isDone);
    }
    assertThat(b.skippingQueueDelay()).isFalse();
    assertThat(b.measuredRoundRows()).isZero(); // and rounds are never measured, so never split
  }

  private static ThreadRecorder submit(DynamicBatcher b, int id, TransportExecutor via) {
    ThreadRecorder r = new ThreadRecorder();
    InferRequest plain = new Req(id).values(1, id, id + 0.5f).build(r);
    b.submit(new InferRequest(plain.modelName(), plain.modelVersion(), plain.id(), plain.inputs(), plain.outputIndices(),
        plain.batchSize(), plain.priority(), plain.timeoutMicros(), plain.deadlineNanos(), r, via));
    return r;
  }

  private static Result submitPlain(DynamicBatcher b, int id) {
    Result r = new Result();
    b.submit(new Req(id).values(1, id, id + 0.5f).build(r));
    return r;
  }
}
