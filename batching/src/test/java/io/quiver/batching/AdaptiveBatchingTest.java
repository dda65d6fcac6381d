package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.quiver.batching.TestSupport.ManualClock;
import io.quiver.batching.TestSupport.Req;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelParameter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The latency-target controller, alone and driving a batcher whose runner's cost grows with the batch. */
@Timeout(30)
class AdaptiveBatchingTest {
  private static final long US = 1000;
  private static final long TARGET_NS = 1000 * US;

  private static long cost(int rows) {
    return 50 * US + 100 * US * rows;
  }

  @Test
  void costModel_learnsTheLinearCost_capsTheBatch_andSetsTheDelayFromIt() {
    AdaptiveBatchController c = new AdaptiveBatchController(TARGET_NS, 32, 3000 * US);
    long[] fast = new long[32];
    Arrays.fill(fast, 100 * US); // comfortably under the target
    for (int i = 0; i < 400; i++) {
      int rows = 1 + i % 8;
      c.onBatch(rows, cost(rows), false, fast, rows);
    }
    assertThat(c.predictNanos(10)).isCloseTo(1050 * US, within(1.0 * US));
    // a batch alone must fit in the target: b <= (1000 - 50) / 100
    assertThat(c.maxRows()).isEqualTo(9);
    assertThat(c.delayNanos()).isZero(); // target - 2 * t(9) < 0
  }

  @Test
  void delay_isWhatTheTargetLeavesAfterTwoBatches() {
    AdaptiveBatchController c = new AdaptiveBatchController(TARGET_NS, 4, 3000 * US);
    long[] fast = new long[4];
    for (int i = 0; i < 100; i++) {
      int rows = 1 + i % 4;
      c.onBatch(rows, 10 * US + 10 * US * rows, false, fast, 1);
    }
    assertThat(c.maxRows()).isEqualTo(4);
    assertThat(c.delayNanos()).isCloseTo(1000 * US - 2 * 50 * US, within(2 * US));
  }

  @Test
  void p99OverTarget_withBatchesNotFull_cutsTheMaxMultiplicatively() {
    AdaptiveBatchController c = new AdaptiveBatchController(100_000 * US, 32, 3000 * US);
    long[] slow = new long[4];
    Arrays.fill(slow, 150_000 * US);
    for (int i = 0; i < AdaptiveBatchController.PERIOD / 4; i++) {
      c.onBatch(4, cost(4), false, slow, 4);
    }
    assertThat(c.lastP99Nanos()).isEqualTo(150_000 * US);
    assertThat(c.maxRows()).isEqualTo(22); // 32 * 0.7
    for (int i = 0; i < 20 * AdaptiveBatchController.PERIOD; i++) {
      c.onBatch(4, cost(4), false, slow, 4);
    }
    assertThat(c.maxRows()).isEqualTo(1);
  }

  @Test
  void p99OverTarget_withFullBatches_isOverload_andRaisesTheMaxForThroughput() {
    AdaptiveBatchController c = new AdaptiveBatchController(100_000 * US, 32, 3000 * US);
    long[] slow = new long[4];
    Arrays.fill(slow, 150_000 * US);
    for (int i = 0; i < AdaptiveBatchController.PERIOD / 4; i++) {
      c.onBatch(4, cost(4), false, slow, 4); // cut to 22
    }
    for (int i = 0; i < AdaptiveBatchController.PERIOD / 4; i++) {
      c.onBatch(4, cost(4), true, slow, 4);
    }
    assertThat(c.maxRows()).isEqualTo(22 + 22 / 8);
  }

  @Test
  void p99UnderLowWatermark_raisesTheMaxAdditively() {
    AdaptiveBatchController c = new AdaptiveBatchController(100_000 * US, 32, 3000 * US);
    long[] slow = new long[4];
    Arrays.fill(slow, 150_000 * US);
    for (int i = 0; i < AdaptiveBatchController.PERIOD / 4; i++) {
      c.onBatch(4, cost(4), false, slow, 4);
    }
    long[] fast = new long[4];
    for (int i = 0; i < 3 * AdaptiveBatchController.PERIOD / 4; i++) {
      c.onBatch(4, cost(4), false, fast, 4);
    }
    assertThat(c.maxRows()).isEqualTo(22 + 3);
  }

  /** Result of one simulated run: latencies in arrival order and the batch sizes that ran. */
  private record Run(long[] latencies, List<Integer> batches, int finalMax, long finalDelayNanos) {
    long p99(int from) {
      long[] tail = Arrays.copyOfRange(latencies, from, latencies.length);
      Arrays.sort(tail);
      return tail[(int) Math.ceil(tail.length * 0.99) - 1];
    }

    double meanBatch(int fromBatch) {
      return batches.subList(fromBatch, batches.size()).stream().mapToInt(Integer::intValue).average().orElse(0);
    }
  }

  /** 200 us + 20 us per row: one row at a time serves 4.5k/s, 32 rows 38k/s. */
  private static long simulatedCost(int rows) {
    return 200 * US + 20 * US * rows;
  }

  /**
   * Identity over FP32 that takes {@link #simulatedCost} of manual-clock time: it returns once the
   * test has moved the clock past its finish time.
   */
  private static final class TimedRunner implements ModelRunner {
    final ManualClock clock;
    final List<Integer> batchRows = Collections.synchronizedList(new ArrayList<>());
    final AtomicInteger started = new AtomicInteger();
    volatile long busyUntil = Long.MIN_VALUE;

    TimedRunner(ManualClock clock) {
      this.clock = clock;
    }

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      int rows = (int) inputs[0].shape()[0];
      batchRows.add(rows);
      long until = clock.nanoTime() + simulatedCost(rows);
      busyUntil = until;
      started.incrementAndGet();
      while (clock.nanoTime() < until) {
        Thread.yield();
      }
      Tensor[] out = new Tensor[outputIndices.length];
      for (int k = 0; k < out.length; k++) {
        out[k] = new Tensor("OUT", DataType.FP32, inputs[0].shape().clone(), TestSupport.floats(new float[rows * 2]));
      }
      return out;
    }

    @Override
    public void close() {}
  }

  /**
   * Open-loop arrivals, one every 100 us of the manual clock (10k/s: more than one row at a time can
   * serve); the test moves time in 20 us steps and, at each step, lets the runner finish when its
   * time is up before going on, so the whole run is deterministic.
   */
  private static Run simulate(long targetUs, int requests) {
    ManualClock clock = new ManualClock();
    TimedRunner runner = new TimedRunner(clock);
    ModelConfig.Builder config = ModelConfig.newBuilder().setName("m").setMaxBatchSize(32)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().setMaxQueueDelayMicroseconds(3000));
    if (targetUs > 0) {
      config.putParameters(BatchingPolicy.PARAM_LATENCY_TARGET_US,
          ModelParameter.newBuilder().setStringValue(Long.toString(targetUs)).build());
    } else { // the static policy as Triton has it: a fixed wait (no adaptive queue delay)
      config.putParameters(BatchingPolicy.PARAM_ADAPTIVE_QUEUE_DELAY, ModelParameter.newBuilder().setStringValue("false").build());
    }
    DynamicBatcher batcher = DynamicBatcher.builder().model("m", 1, config.build(), TestSupport.identitySignature(32, 2))
        .runners(List.of(runner)).clock(clock).compute(TestSupport.POOL).manualDispatch().build();
    long[] latencies = new long[requests];
    AtomicInteger failures = new AtomicInteger();
    InferCallback record = new InferCallback() {
      @Override
      public void onSuccess(InferRequest request, Tensor[] outputs) {
        latencies[Integer.parseInt(request.id())] = clock.nanoTime() - request.enqueueNanos();
      }

      @Override
      public void onFailure(InferRequest request, InferenceException error) {
        failures.incrementAndGet();
      }
    };
    try {
      int submitted = 0;
      for (int step = 0; submitted < requests || batcher.inFlightRequests() > 0; step++) {
        clock.advanceMicros(20);
        if (runner.started.get() > 0 && clock.nanoTime() >= runner.busyUntil) {
          TestSupport.waitUntil(batcher::quiescent); // its time is up: let it finish and come back
        }
        if (step % 5 == 0 && submitted < requests) {
          batcher.submit(new Req(submitted++).values(1, 1, 1).build(record));
        }
        long dispatched = batcher.dispatchedBatches();
        batcher.doWork();
        if (batcher.dispatchedBatches() > dispatched) {
          TestSupport.waitUntil(() -> runner.started.get() == batcher.dispatchedBatches()); // it read the clock
        }
      }
      assertThat(failures.get()).isZero();
      return new Run(latencies, new ArrayList<>(runner.batchRows), batcher.effectiveMaxBatchSize(),
          batcher.effectiveQueueDelayNanos());
    } finally {
      batcher.close();
    }
  }

  @Test
  void latencyTarget_keepsP99UnderTarget_whereTheStaticPolicyMissesIt_whileStillBatching() {
    int n = 3000;
    Run fixed = simulate(0, n);
    Run adaptive = simulate(TARGET_NS / US, n);
    System.out.printf("fixed p99=%d mean=%.2f batches=%s%nadaptive p99=%d mean=%.2f max=%d tail=%s%n", fixed.p99(n / 2),
        fixed.meanBatch(fixed.batches().size() / 2), fixed.batches().subList(0, 20), adaptive.p99(n / 2),
        adaptive.meanBatch(adaptive.batches().size() / 2), adaptive.finalMax(),
        adaptive.batches().subList(adaptive.batches().size() - 30, adaptive.batches().size()));

    // Triton's fixed wait: the full 3 ms delay for 30 requests, then 0.8 ms of compute.
    assertThat(fixed.p99(n / 2)).isGreaterThan(3 * TARGET_NS);
    // With it: the delay shrinks to what the target leaves, batches stay big enough for the load.
    assertThat(adaptive.p99(n / 2)).isLessThanOrEqualTo(TARGET_NS);
    assertThat(adaptive.meanBatch(adaptive.batches().size() / 2)).isGreaterThan(1.5);
    // t(32) = 840 us: two of those already exceed the target, so nothing is left for waiting.
    assertThat(adaptive.finalDelayNanos()).isZero();
    assertThat(fixed.finalDelayNanos()).isEqualTo(3000 * US);
  }
}
