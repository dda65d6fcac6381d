package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.batching.TestSupport.ArithmeticRunner;
import io.quiver.batching.TestSupport.Req;
import io.quiver.batching.TestSupport.Result;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelQueuePolicy;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Many producers against live batchers (the shared compute pool, the real clock): nothing lost, nothing duplicated, nothing mixed up. */
@Timeout(60)
class DynamicBatcherStressTest {
  private static final int PRODUCERS = 8;
  private static final int PER_PRODUCER = 1500;

  @Test
  void manyProducers_everyRequestAnsweredOnceWithItsOwnData() throws Exception {
    ModelConfig config = ModelConfig.newBuilder().setName("m").setMaxBatchSize(8)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().addPreferredBatchSize(4).addPreferredBatchSize(8)
            .setMaxQueueDelayMicroseconds(200).setPriorityLevels(2).setDefaultPriorityLevel(2).setPreserveOrdering(false)
            .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setMaxQueueSize(512)))
        .build();
    ArithmeticRunner a = new ArithmeticRunner();
    ArithmeticRunner b = new ArithmeticRunner();
    DynamicBatcher batcher = TestSupport.live(DynamicBatcher.builder().model("m", 1, config,
        TestSupport.identitySignature(8, 2)).runners(List.of(a, b))).build();
    int total = PRODUCERS * PER_PRODUCER;
    Result[] results = new Result[total];
    ConcurrentLinkedQueue<Integer> answered = new ConcurrentLinkedQueue<>();
    AtomicInteger retries = new AtomicInteger();
    CountDownLatch start = new CountDownLatch(1);
    Thread[] producers = new Thread[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
      int first = p * PER_PRODUCER;
      producers[p] = new Thread(() -> {
        try {
          start.await();
        } catch (InterruptedException e) {
          return;
        }
        for (int id = first; id < first + PER_PRODUCER; id++) {
          int rows = 1 + id % 3;
          float[] values = new float[rows * 2];
          for (int i = 0; i < values.length; i++) {
            values[i] = id * 10 + i;
          }
          Req req = new Req(id).values(rows, values).priority(id % 5 == 0 ? 1 : 0);
          if (id % 7 == 0) {
            float[] opt = new float[rows * 2];
            java.util.Arrays.fill(opt, 0.25f);
            req.opt(opt);
          }
          Result r = new Result(answered);
          results[id] = r;
          while (true) {
            try {
              batcher.submit(req.build(r));
              break;
            } catch (InferenceException e) {
              assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
              retries.incrementAndGet();
              Thread.yield();
            }
          }
        }
      });
      producers[p].start();
    }
    start.countDown();
    for (Thread t : producers) {
      t.join();
    }
    for (int id = 0; id < total; id++) {
      Result r = results[id].await();
      assertThat(r.calls.get()).isEqualTo(1);
      int rows = 1 + id % 3;
      float[] out = r.floats(0);
      assertThat(out).hasSize(rows * 2);
      float extra = id % 7 == 0 ? 0.25f : 0f;
      for (int i = 0; i < out.length; i++) {
        assertThat(out[i]).isEqualTo(id * 10 + i + extra);
      }
      assertThat(r.outputs[0].shape()).containsExactly(rows, 2);
    }
    assertThat(answered).hasSize(total);
    assertThat(answered.stream().distinct().count()).isEqualTo(total);
    batcher.close();
    assertThat(batcher.inFlightRequests()).isZero();
    assertThat(batcher.queuedRequests()).isZero();
    assertThat(batcher.stats().success().count()).isEqualTo(total);
    assertThat(batcher.stats().fail().count()).isZero();
    long rowsRun = a.batchRows.stream().mapToLong(Integer::longValue).sum() + b.batchRows.stream().mapToLong(Integer::longValue).sum();
    assertThat(batcher.stats().inferenceCount()).isEqualTo(rowsRun);
    assertThat(a.maxConcurrent.get()).isEqualTo(1);
    assertThat(b.maxConcurrent.get()).isEqualTo(1);
    assertThat(a.batchRows).allSatisfy(rows -> assertThat(rows).isBetween(1, 8));
    assertThat(rejectedEqualsRetries(batcher, retries)).isTrue();
  }

  @Test
  void preserveOrdering_underLoad_answersInSubmissionOrderAcrossInstances() {
    ModelConfig config = ModelConfig.newBuilder().setName("m").setMaxBatchSize(4)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().setPreserveOrdering(true)).build();
    DynamicBatcher batcher = TestSupport.live(DynamicBatcher.builder().model("m", 1, config,
        TestSupport.identitySignature(4, 2))
        .runners(List.of(new ArithmeticRunner(), new ArithmeticRunner(), new ArithmeticRunner()))).build();
    int total = 3000;
    ConcurrentLinkedQueue<Integer> answered = new ConcurrentLinkedQueue<>();
    Result[] results = new Result[total];
    for (int id = 0; id < total; id++) {
      results[id] = new Result(answered);
      Req req = new Req(id).values(1, id, id);
      while (true) {
        try {
          batcher.submit(req.build(results[id]));
          break;
        } catch (InferenceException e) {
          Thread.yield();
        }
      }
    }
    for (Result r : results) {
      r.await();
    }
    batcher.close();
    assertThat(answered).containsExactlyElementsOf(java.util.stream.IntStream.range(0, total).boxed().toList());
  }

  private static boolean rejectedEqualsRetries(DynamicBatcher batcher, AtomicInteger retries) {
    return batcher.rejectedRequests() == retries.get();
  }
}
