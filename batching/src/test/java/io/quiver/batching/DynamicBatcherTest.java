package io.quiver.batching;

import static io.quiver.batching.TestSupport.pumpUntil;
import static io.quiver.batching.TestSupport.waitUntil;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.batching.TestSupport.ArithmeticRunner;
import io.quiver.batching.TestSupport.ManualClock;
import io.quiver.batching.TestSupport.Req;
import io.quiver.batching.TestSupport.Result;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelQueuePolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Each policy rule of the dynamic batcher, driven deterministically: a manual clock, the dispatch
 * duty cycle run on the test thread, and runners that really compute (OUT = IN + OPT, NEG = -OUT).
 */
@Timeout(20)
class DynamicBatcherTest {
  private final ManualClock clock = new ManualClock();
  private final List<DynamicBatcher> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() {
    for (DynamicBatcher b : toClose) {
      b.close();
    }
  }

  private static ModelConfig config(int maxBatch, Consumer<ModelDynamicBatching.Builder> batching) {
    ModelConfig.Builder c = ModelConfig.newBuilder().setName("m").setMaxBatchSize(maxBatch);
    if (batching != null) {
      ModelDynamicBatching.Builder db = ModelDynamicBatching.newBuilder();
      batching.accept(db);
      c.setDynamicBatching(db);
    }
    return c.build();
  }

  private DynamicBatcher manual(ModelConfig config, ModelRunner... runners) {
    return build(config, false, runners);
  }

  private DynamicBatcher build(ModelConfig config, boolean live, ModelRunner... runners) {
    ModelSignature signature = TestSupport.identitySignature(config.getMaxBatchSize(), 2);
    DynamicBatcherBuilder builder = DynamicBatcher.builder().model("m", 1, config, signature).runners(List.of(runners))
        .clock(clock);
    DynamicBatcher b = (live ? TestSupport.live(builder) : builder.compute(TestSupport.POOL).manualDispatch()).build();
    toClose.add(b);
    return b;
  }

  private static Result submit(DynamicBatcher b, Req req) {
    Result r = new Result();
    b.submit(req.build(r));
    return r;
  }

  private static Result submit(DynamicBatcher b, int id) {
    return submit(b, new Req(id).values(1, id, id + 0.5f));
  }

  private static void idleCycles(DynamicBatcher b) {
    for (int i = 0; i < 5; i++) {
      b.doWork();
    }
  }

  @Test
  void preferredSize_reached_dispatchesAtOnceWithoutWaitingForDelay() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.addPreferredBatchSize(4).setMaxQueueDelayMicroseconds(1_000_000)), runner);
    List<Result> results = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      results.add(submit(b, i));
    }
    idleCycles(b);
    assertThat(runner.batchRows).isEmpty();
    assertThat(b.queuedRequests()).isEqualTo(3);

    results.add(submit(b, 3));
    pumpUntil(b, () -> results.stream().allMatch(Result::isDone));

    assertThat(runner.batchRows).containsExactly(4);
    for (int i = 0; i < 4; i++) {
      assertThat(results.get(i).floats(0)).containsExactly(i, i + 0.5f);
      assertThat(results.get(i).floats(1)).containsExactly(-(float) i, -(i + 0.5f));
    }
  }

  @Test
  void preferredSize_largestReachable_isSentAndTheRestWaits() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.addPreferredBatchSize(2).addPreferredBatchSize(4)
        .setMaxQueueDelayMicroseconds(1_000_000)), runner);
    List<Result> results = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      results.add(submit(b, i));
    }
    pumpUntil(b, () -> results.subList(0, 4).stream().allMatch(Result::isDone));
    idleCycles(b);
    assertThat(runner.batchRows).containsExactly(4);
    assertThat(results.get(4).isDone()).isFalse();

    clock.advanceMicros(1_000_000);
    pumpUntil(b, () -> results.get(4).isDone());
    assertThat(runner.batchRows).containsExactly(4, 1);
  }

  @Test
  void maxBatch_full_dispatchesAtOnceAndCountsRows() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(4, db -> db.setMaxQueueDelayMicroseconds(1_000_000)), runner);
    Result r0 = submit(b, new Req(0).values(2, 0, 1, 2, 3));
    Result r1 = submit(b, new Req(1).values(1, 10, 11));
    Result r2 = submit(b, new Req(2).values(1, 20, 21));
    Result r3 = submit(b, new Req(3).values(2, 30, 31, 32, 33)); // does not fit beside 4 rows: waits
    pumpUntil(b, () -> r0.isDone() && r1.isDone() && r2.isDone());
    idleCycles(b);
    assertThat(runner.batchRows).containsExactly(4);
    assertThat(r3.isDone()).isFalse();
    assertThat(r0.floats(0)).containsExactly(0, 1, 2, 3);
    assertThat(r0.outputs[0].shape()).containsExactly(2, 2);
    assertThat(r2.floats(1)).containsExactly(-20, -21);

    clock.advanceMicros(1_000_000);
    pumpUntil(b, r3::isDone);
    assertThat(runner.batchRows).containsExactly(4, 2);
    assertThat(r3.floats(0)).containsExactly(30, 31, 32, 33);
  }

  @Test
  void queueDelay_expires_dispatchesPartialBatchExactlyAtTheDelay() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.addPreferredBatchSize(4).setMaxQueueDelayMicroseconds(500)), runner);
    Result r0 = submit(b, 0);
    Result r1 = submit(b, 1);
    idleCycles(b);
    clock.advanceMicros(499);
    idleCycles(b);
    assertThat(runner.batchRows).isEmpty();

    clock.advanceMicros(1);
    pumpUntil(b, () -> r0.isDone() && r1.isDone());
    assertThat(runner.batchRows).containsExactly(2);
  }

  @Test
  void zeroQueueDelay_dispatchesWhateverIsQueued() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.addPreferredBatchSize(8)), runner);
    Result r0 = submit(b, 0);
    Result r1 = submit(b, 1);
    pumpUntil(b, () -> r0.isDone() && r1.isDone());
    assertThat(runner.batchRows).containsExactly(2);
  }

  @Test
  void noDynamicBatching_runsEachRequestAloneThroughTheSamePath() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, null), runner);
    Result r0 = submit(b, new Req(0).values(2, 0, 1, 2, 3));
    Result r1 = submit(b, new Req(1).values(1, 10, 11));
    Result r2 = submit(b, new Req(2).values(3, 20, 21, 22, 23, 24, 25));
    pumpUntil(b, () -> r0.isDone() && r1.isDone() && r2.isDone());
    assertThat(runner.batchRows).containsExactly(2, 1, 3);
    assertThat(r2.floats(0)).containsExactly(20, 21, 22, 23, 24, 25);
    assertThatThrownBy(() -> submit(b, new Req(9).values(9, new float[18])))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
  }

  @Test
  void modelWithoutBatchDimension_runsOneRequestPerBatch() {
    ArithmeticRunner runner = new ArithmeticRunner();
    // No dynamic_batching: with max_batch_size 0 the config rules (SchedulingRules) allow none.
    DynamicBatcher b = manual(config(0, null), runner);
    Result r0 = submit(b, new Req(0).values(1, 1, 2).unbatched());
    Result r1 = submit(b, new Req(1).values(1, 3, 4).unbatched());
    pumpUntil(b, () -> r0.isDone() && r1.isDone());
    assertThat(runner.batchRows).containsExactly(1, 1);
    assertThat(r1.floats(0)).containsExactly(3, 4);
    assertThat(r1.outputs[0].shape()).containsExactly(1, 2);
  }

  @Test
  void priority_higherLevelIsServedFirst_andDefaultLevelAppliesToZero() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(2, db -> db.setPriorityLevels(3).setDefaultPriorityLevel(2)), runner);
    List<Result> all = new ArrayList<>();
    all.add(submit(b, new Req(1).values(1, 31, 0).priority(3)));
    all.add(submit(b, new Req(2).values(1, 32, 0).priority(3)));
    all.add(submit(b, new Req(3).values(1, 21, 0))); // priority 0: default level 2
    all.add(submit(b, new Req(4).values(1, 11, 0).priority(1)));
    all.add(submit(b, new Req(5).values(1, 12, 0).priority(1)));
    pumpUntil(b, () -> all.stream().allMatch(Result::isDone));
    // level 1 first, then level 2 (with room for one more row, the next level's request joins), then level 3
    assertThat(runner.batchFirst).containsExactly(11f, 21f, 32f);
    assertThat(runner.batchRows).containsExactly(2, 2, 1);
  }

  /**
   * Background work (batch jobs, issue 19): every batcher has one extra level below the configured
   * ones, served only when no configured level has a request waiting (it may fill the rest of a batch),
   * with its own queue bound, so it can neither delay nor crowd out online requests.
   */
  @Test
  void backgroundPriority_isServedAfterEveryConfiguredLevel_andHasItsOwnQueueBound() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(2, db -> db.setPriorityLevels(2).setDefaultPriorityLevel(1)
        .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setMaxQueueSize(2))), runner);
    assertThat(b.policy().backgroundLevel()).isEqualTo(3);
    assertThat(b.policy().level(3).maxQueueSize()).isEqualTo(BatchingPolicy.DEFAULT_BACKGROUND_MAX_QUEUE_SIZE);
    List<Result> all = new ArrayList<>();
    for (int i = 0; i < 3; i++) { // more than a configured level holds: the background bound is its own
      all.add(submit(b, new Req(90 + i).values(1, 90 + i, 0).priority(InferRequest.BACKGROUND_PRIORITY)));
    }
    all.add(submit(b, new Req(21).values(1, 21, 0).priority(2)));
    all.add(submit(b, new Req(11).values(1, 11, 0))); // default level 1
    all.add(submit(b, new Req(22).values(1, 22, 0).priority(2)));
    pumpUntil(b, () -> all.stream().allMatch(Result::isDone));
    // level 1 and the first level-2 request, then level 2 with the first background request filling
    // the batch, then the rest of the background work.
    assertThat(runner.batchFirst).containsExactly(11f, 22f, 91f);
    assertThat(runner.batchRows).containsExactly(2, 2, 2);
    assertThat(all.get(0).floats(0)).containsExactly(90f, 0f);
    assertThat(all).allSatisfy(r -> assertThat(r.error).isNull());

    ModelConfig bounded = config(2, db -> {}).toBuilder()
        .putParameters(BatchingPolicy.PARAM_BACKGROUND_MAX_QUEUE_SIZE,
            io.quiver.proto.inference.ModelParameter.newBuilder().setStringValue("1").build())
        .build();
    DynamicBatcher small = manual(bounded, new ArithmeticRunner());
    Result queued = submit(small, new Req(1).priority(InferRequest.BACKGROUND_PRIORITY));
    assertThatThrownBy(() -> submit(small, new Req(2).priority(InferRequest.BACKGROUND_PRIORITY)))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
          assertThat(e.getMessage()).contains("level 2", "1 requests");
        });
    Result online = submit(small, new Req(3)); // the online level is not crowded out
    pumpUntil(small, () -> queued.isDone() && online.isDone());
    assertThat(queued.error).isNull();
    assertThat(online.error).isNull();
  }

  @Test
  void priority_outsideLevels_isInvalidArgument_butIgnoredWithoutLevels() {
    DynamicBatcher b = manual(config(2, db -> db.setPriorityLevels(2).setDefaultPriorityLevel(1)), new ArithmeticRunner());
    assertThatThrownBy(() -> submit(b, new Req(1).priority(3)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    assertThatThrownBy(() -> submit(b, new Req(1).priority(-1)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    assertThat(b.inFlightRequests()).isZero();

    DynamicBatcher plain = manual(config(2, db -> {}), new ArithmeticRunner());
    Result r = submit(plain, new Req(1).priority(7));
    pumpUntil(plain, r::isDone);
    assertThat(r.error).isNull();
  }

  @Test
  void batchLargerThanMax_isInvalidArgumentAtSubmit() {
    DynamicBatcher b = manual(config(4, db -> {}), new ArithmeticRunner());
    assertThatThrownBy(() -> submit(b, new Req(1).values(5, new float[10])))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
          assertThat(e.getMessage()).contains("batch size 5", "max_batch_size=4");
        });
  }

  @Test
  void differentShapesOrOptionalPresence_neverShareABatch() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.setMaxQueueDelayMicroseconds(1_000_000)), runner);
    Result a = submit(b, new Req("1").values(1, 1, 2));
    Result a2 = submit(b, new Req("2").values(1, 3, 4));
    Result wide = submit(b, new Req("3").values(1, 5, 6, 7));
    Result narrow = submit(b, new Req("4").values(1, 8, 9));
    Result withOpt = submit(b, new Req("5").values(1, 1, 1).opt(10, 20));
    Result withOpt2 = submit(b, new Req("6").values(1, 2, 2).opt(30, 40));
    clock.advanceMicros(1_000_000);
    pumpUntil(b, () -> List.of(a, a2, wide, narrow, withOpt, withOpt2).stream().allMatch(Result::isDone));
    assertThat(runner.batchRows).containsExactly(2, 1, 1, 2);
    assertThat(wide.floats(0)).containsExactly(5, 6, 7);
    assertThat(narrow.floats(0)).containsExactly(8, 9);
    assertThat(withOpt.floats(0)).containsExactly(11, 21);
    assertThat(withOpt2.floats(1)).containsExactly(-32, -42);
  }

  @Test
  void outputs_eachRequestGetsOnlyItsOwn_runnerIsAskedForTheUnion() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(8, db -> db.addPreferredBatchSize(2)), runner);
    Result onlyNeg = submit(b, new Req(1).values(1, 1, 2).outputs(1));
    Result onlyOut = submit(b, new Req(2).values(1, 3, 4).outputs(0));
    pumpUntil(b, () -> onlyNeg.isDone() && onlyOut.isDone());
    assertThat(runner.outputRequests).hasSize(1);
    assertThat(runner.outputRequests.get(0)).containsExactly(0, 1);
    assertThat(onlyNeg.outputs).hasSize(1);
    assertThat(onlyNeg.outputs[0].name()).isEqualTo("NEG");
    assertThat(onlyNeg.floats(0)).containsExactly(-1, -2);
    assertThat(onlyOut.outputs[0].name()).isEqualTo("OUT");
    assertThat(onlyOut.floats(0)).containsExactly(3, 4);
  }

  @Test
  void queuePolicyTimeout_reject_failsWithDeadlineExceededBeforeRunning() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(4, db -> db.setMaxQueueDelayMicroseconds(1_000_000)
        .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setDefaultTimeoutMicroseconds(100).setAllowTimeoutOverride(true))),
        runner);
    Result r = submit(b, 1);
    Result shorter = submit(b, new Req(2).values(1, 2, 2).timeoutMicros(40));
    Result longer = submit(b, new Req(3).values(1, 3, 3).timeoutMicros(5_000)); // an override may only shorten
    idleCycles(b);
    clock.advanceMicros(40);
    pumpUntil(b, shorter::isDone);
    assertThat(shorter.error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(r.isDone()).as("r done early: " + r.error + " rows " + runner.batchRows).isFalse();
    clock.advanceMicros(60);
    pumpUntil(b, () -> r.isDone() && longer.isDone());
    assertThat(r.error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(r.error.getMessage()).contains("queue policy");
    assertThat(longer.error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(runner.batchRows).isEmpty();
    assertThat(b.stats().fail().count()).isEqualTo(3);
    assertThat(b.inFlightRequests()).isZero();
    assertThat(b.queuedRequests()).isZero();
  }

  @Test
  void queuePolicyTimeout_delay_keepsTheRequestButServesItAfterOnTimeOnes() {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.gate = new CountDownLatch(1);
    DynamicBatcher b = manual(config(2, db -> db.setDefaultQueuePolicy(ModelQueuePolicy.newBuilder()
        .setDefaultTimeoutMicroseconds(100).setTimeoutAction(ModelQueuePolicy.TimeoutAction.DELAY))), runner);
    Result blocker = submit(b, new Req(1).values(2, 1, 0, 1, 0)); // occupies the only instance
    pumpUntil(b, () -> runner.entered.getCount() == 0);
    Result late = submit(b, new Req(2).values(1, 2, 0));
    clock.advanceMicros(150); // `late` is past its queue timeout
    Result fresh1 = submit(b, new Req(3).values(1, 3, 0));
    Result fresh2 = submit(b, new Req(4).values(1, 4, 0));
    idleCycles(b);
    assertThat(late.isDone()).isFalse(); // DELAY keeps it
    runner.gate.countDown();
    pumpUntil(b, () -> List.of(blocker, late, fresh1, fresh2).stream().allMatch(Result::isDone));
    assertThat(runner.batchFirst).containsExactly(1f, 3f, 2f);
    assertThat(late.floats(0)).containsExactly(2, 0);
  }

  @Test
  void grpcDeadline_passed_failsWithDeadlineExceededEvenUnderDelayPolicy() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(4, db -> db.setMaxQueueDelayMicroseconds(1_000_000)
        .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setTimeoutAction(ModelQueuePolicy.TimeoutAction.DELAY))),
        runner);
    Result alreadyLate = submit(b, new Req(1).values(1, 1, 1).deadline(clock.nanoTime()));
    Result soon = submit(b, new Req(2).values(1, 2, 2).deadline(clock.nanoTime() + 200_000));
    Result patient = submit(b, new Req(3).values(1, 3, 3));
    pumpUntil(b, alreadyLate::isDone);
    assertThat(alreadyLate.error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(soon.isDone()).isFalse();
    clock.advanceMicros(200);
    pumpUntil(b, soon::isDone);
    assertThat(soon.error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(soon.error.getMessage()).contains("deadline");
    clock.advanceMicros(1_000_000);
    pumpUntil(b, patient::isDone);
    assertThat(patient.error).isNull();
    assertThat(runner.batchRows).containsExactly(1);
  }

  @Test
  void cancelled_isDroppedBeforeItRuns_andAnsweredWithCancelled() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = manual(config(4, db -> db.setMaxQueueDelayMicroseconds(1_000)), runner);
    Result kept = submit(b, 1);
    Result gone = new Result();
    InferRequest request = new Req(2).values(1, 2, 2).build(gone);
    b.submit(request);
    idleCycles(b);
    request.cancel();
    clock.advanceMicros(1_000);
    pumpUntil(b, () -> kept.isDone() && gone.isDone());
    assertThat(gone.error.code()).isEqualTo(ErrorCode.CANCELLED);
    assertThat(gone.calls.get()).isEqualTo(1);
    assertThat(runner.batchRows).containsExactly(1);
    assertThat(kept.floats(0)).containsExactly(1, 1.5f);
  }

  @Test
  void fullQueue_rejectsAtOnceWithRetryHint_withoutBlocking() {
    // Manual dispatch and no pumping: nothing ever drains the queue, so a submit that waited for
    // space would never return and the test would hit its timeout.
    DynamicBatcher b = manual(config(4, db -> db.setPriorityLevels(2).setDefaultPriorityLevel(2)
        .putPriorityQueuePolicy(1, ModelQueuePolicy.newBuilder().setMaxQueueSize(1).build())
        .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setMaxQueueSize(3))), new ArithmeticRunner());
    List<Result> accepted = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      accepted.add(submit(b, i));
    }
    Result refused = new Result();
    assertThatThrownBy(() -> b.submit(new Req(9).build(refused)))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
          assertThat(e.retryAfterNanos()).isGreaterThanOrEqualTo(DynamicBatcher.MIN_RETRY_AFTER_NS);
          assertThat(e.getMessage()).contains("level 2", "3 requests");
        });
    accepted.add(submit(b, new Req(10).priority(1))); // level 1 has its own bound
    assertThatThrownBy(() -> submit(b, new Req(11).priority(1)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED));
    assertThat(refused.calls.get()).isZero();
    assertThat(b.rejectedRequests()).isEqualTo(2);
    assertThat(b.queuedRequests()).isEqualTo(4);

    pumpUntil(b, () -> accepted.stream().allMatch(Result::isDone));
    assertThat(b.queuedRequests()).isZero();
    accepted.add(submit(b, 20)); // room again
    pumpUntil(b, () -> accepted.stream().allMatch(Result::isDone));
  }

  @Test
  void defaultQueueBound_appliesWhenMaxQueueSizeIsZero_andIsSettableByParameter() {
    ModelConfig c = config(4, db -> {}).toBuilder().putParameters(BatchingPolicy.PARAM_DEFAULT_MAX_QUEUE_SIZE,
        io.quiver.proto.inference.ModelParameter.newBuilder().setStringValue("2").build()).build();
    DynamicBatcher b = manual(c, new ArithmeticRunner());
    Result r1 = submit(b, 1);
    Result r2 = submit(b, 2);
    assertThatThrownBy(() -> submit(b, 3)).isInstanceOf(InferenceException.class);
    pumpUntil(b, () -> r1.isDone() && r2.isDone());
    assertThat(BatchingPolicy.from(config(4, db -> {})).level(1).maxQueueSize())
        .isEqualTo(BatchingPolicy.DEFAULT_MAX_QUEUE_SIZE);
  }

  @Test
  void preserveOrdering_completesInDispatchOrderAcrossInstances() {
    ArithmeticRunner slow = new ArithmeticRunner();
    slow.gate = new CountDownLatch(1);
    ArithmeticRunner fast = new ArithmeticRunner();
    DynamicBatcher b = manual(config(1, db -> db.setPreserveOrdering(true)), slow, fast);
    Result first = submit(b, 1);
    pumpUntil(b, () -> slow.entered.getCount() == 0);
    Result second = submit(b, 2);
    pumpUntil(b, () -> fast.batchRows.size() == 1);
    waitUntil(() -> fast.running.get() == 0);
    idleCycles(b);
    assertThat(second.isDone()).as("second waits for first").isFalse();
    slow.gate.countDown();
    pumpUntil(b, () -> first.isDone() && second.isDone());
    assertThat(first.order).isLessThan(second.order);
    assertThat(second.floats(0)).containsExactly(2, 2.5f);
  }

  @Test
  void withoutPreserveOrdering_aFastInstanceAnswersFirst() {
    ArithmeticRunner slow = new ArithmeticRunner();
    slow.gate = new CountDownLatch(1);
    ArithmeticRunner fast = new ArithmeticRunner();
    DynamicBatcher b = manual(config(1, db -> {}), slow, fast);
    Result first = submit(b, 1);
    pumpUntil(b, () -> slow.entered.getCount() == 0);
    Result second = submit(b, 2);
    pumpUntil(b, second::isDone);
    assertThat(first.isDone()).isFalse();
    assertThat(second.floats(0)).as("answered by the fast instance").containsExactly(2, 2.5f);
    assertThat(fast.batchRows).containsExactly(1);
    slow.gate.countDown();
    pumpUntil(b, first::isDone);
    assertThat(first.floats(0)).containsExactly(1, 1.5f);
    assertThat(second.order).isLessThan(first.order);
  }

  @Test
  void anInstanceNeverRunsTwoBatchesAtOnce() {
    ArithmeticRunner runner = new ArithmeticRunner();
    DynamicBatcher b = build(config(2, db -> {}), true, runner);
    List<Result> results = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      results.add(submit(b, i));
    }
    results.forEach(Result::await);
    assertThat(runner.maxConcurrent.get()).isEqualTo(1);
  }

  @Test
  void runnerException_failsThatBatchOnly_andTheWorkerKeepsGoing() {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.failOn = 666f;
    runner.rejectOn = 777f;
    DynamicBatcher b = manual(config(4, db -> {}), runner);
    Result broken = submit(b, new Req(1).values(1, 666, 0));
    pumpUntil(b, broken::isDone);
    Result rejected = submit(b, new Req(2).values(1, 777, 0));
    pumpUntil(b, rejected::isDone);
    Result fine = submit(b, new Req(3).values(1, 5, 6));
    pumpUntil(b, fine::isDone);
    assertThat(broken.error.code()).isEqualTo(ErrorCode.INTERNAL);
    assertThat(broken.error.getMessage()).contains("boom");
    assertThat(rejected.error.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(fine.floats(0)).containsExactly(5, 6);
    assertThat(b.stats().fail().count()).isEqualTo(2);
    assertThat(b.stats().success().count()).isEqualTo(1);
    assertThat(b.stats().executionCount()).isEqualTo(1);
  }

  @Test
  void statistics_countRequestsExecutionsBatchSizesAndTimes() {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.clock = clock;
    runner.costNanos = rows -> 100_000L; // 100 us per batch
    DynamicBatcher b = manual(config(4, db -> db.addPreferredBatchSize(2).setMaxQueueDelayMicroseconds(1_000_000)), runner);
    Result r1 = submit(b, 1);
    clock.advanceMicros(30);
    Result r2 = submit(b, 2);
    pumpUntil(b, () -> r1.isDone() && r2.isDone());
    Result late = submit(b, new Req(3).deadline(clock.nanoTime()));
    pumpUntil(b, late::isDone);

    InferenceStats s = b.stats();
    assertThat(s.success().count()).isEqualTo(2);
    assertThat(s.fail().count()).isEqualTo(1);
    assertThat(s.executionCount()).isEqualTo(1);
    assertThat(s.inferenceCount()).isEqualTo(2);
    assertThat(s.batchCount(2)).isEqualTo(1);
    assertThat(s.batchCount(1)).isZero();
    assertThat(s.queue().nanos()).isEqualTo(30_000L); // r1 waited 30 us, r2 none
    assertThat(s.computeInfer().nanos()).isEqualTo(2 * 100_000L); // each request is charged the batch
    assertThat(s.batchInferNanos(2)).isEqualTo(100_000L);
    assertThat(s.success().nanos()).isEqualTo(130_000L + 100_000L);
  }

  @Test
  void close_answersEveryAcceptedRequest_thenRejects_andIsIdempotent() throws Exception {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.gate = new CountDownLatch(1);
    DynamicBatcher b = build(config(4, db -> db.setMaxQueueDelayMicroseconds(10_000_000)), true, runner);
    List<Result> accepted = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      accepted.add(submit(b, i));
    }
    runner.entered.await();
    Thread closer = new Thread(b::close);
    closer.start();
    // Keep submitting until close() is seen: whatever was accepted must still be answered.
    for (int i = 100; ; i++) {
      try {
        accepted.add(submit(b, i));
      } catch (InferenceException e) {
        assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);
        break;
      }
      Thread.yield();
    }
    runner.gate.countDown();
    closer.join(TestSupport.WAIT_MS);
    assertThat(closer.isAlive()).isFalse();
    for (Result r : accepted) {
      assertThat(r.isDone()).isTrue();
      assertThat(r.calls.get()).isEqualTo(1);
      assertThat(r.error).isNull(); // queued requests are still run, without waiting for the delay
    }
    assertThat(b.inFlightRequests()).isZero();
    b.close();
    b.close();
  }

  @Test
  void close_afterShutdownTimeout_failsQueuedRequestsWithUnavailable() throws Exception {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.gate = new CountDownLatch(1);
    DynamicBatcher b = TestSupport.live(DynamicBatcher.builder().model("m", 1, config(2, db -> {}),
        TestSupport.identitySignature(2, 2)).runners(List.of(runner)).clock(clock).shutdownTimeoutNanos(0)).build();
    toClose.add(b);
    Result running = submit(b, 1);
    runner.entered.await();
    List<Result> queued = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      queued.add(submit(b, 10 + i));
    }
    Thread closer = new Thread(b::close);
    closer.start();
    queued.forEach(Result::await); // answered while the running batch still blocks
    for (Result r : queued) {
      assertThat(r.error.code()).isEqualTo(ErrorCode.UNAVAILABLE);
    }
    assertThat(running.isDone()).isFalse();
    runner.gate.countDown();
    closer.join(TestSupport.WAIT_MS);
    assertThat(running.await().error).isNull();
  }

  @Test
  void live_withRealClock_batchesArrivalsWhileTheInstanceIsBusy() {
    ArithmeticRunner runner = new ArithmeticRunner();
    runner.gate = new CountDownLatch(1);
    DynamicBatcher b = TestSupport.live(DynamicBatcher.builder().model("m", 1,
        config(8, db -> db.setMaxQueueDelayMicroseconds(100)), TestSupport.identitySignature(8, 2))
        .runners(List.of(runner))).build();
    toClose.add(b);
    Result first = submit(b, 0);
    try {
      runner.entered.await();
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
    List<Result> rest = new ArrayList<>();
    for (int i = 1; i <= 8; i++) {
      rest.add(submit(b, i));
    }
    runner.gate.countDown();
    first.await();
    rest.forEach(Result::await);
    assertThat(runner.batchRows).containsExactly(1, 8);
    for (int i = 1; i <= 8; i++) {
      assertThat(rest.get(i - 1).floats(0)).containsExactly(i, i + 0.5f);
    }
  }
}
