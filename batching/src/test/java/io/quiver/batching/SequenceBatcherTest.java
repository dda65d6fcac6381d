package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.batching.TestSupport.ManualClock;
import io.quiver.batching.TestSupport.Result;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.ModelSignature;
import io.quiver.core.SequenceControl;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelOutput;
import io.quiver.proto.inference.ModelSequenceBatching;
import io.quiver.proto.inference.ModelSequenceBatching.Control;
import io.quiver.proto.inference.ModelSequenceBatching.Control.Kind;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Triton's sequence batcher over a Java accumulator that really computes: OUT = STATE_IN + IN when READY
 * (STATE_OUT = OUT), and CTRL echoes START, END, READY and CORRID per row. Most tests dispatch by hand on a
 * manual clock; one runs live on the compute pool with concurrent clients.
 */
class SequenceBatcherTest {
  final ManualClock clock = new ManualClock();

  /** The accumulator's config: IN/OUT/CTRL for the client; START, END, READY, CORRID and one INT32 state. */
  static ModelConfig config(int maxBatch, ModelSequenceBatching.Builder strategy) {
    ModelSequenceBatching.Builder seq = strategy
        .addControlInput(control("START", Control.newBuilder().setKind(Kind.CONTROL_SEQUENCE_START)
            .addInt32FalseTrue(0).addInt32FalseTrue(1)))
        .addControlInput(control("END", Control.newBuilder().setKind(Kind.CONTROL_SEQUENCE_END)
            .addInt32FalseTrue(0).addInt32FalseTrue(1)))
        .addControlInput(control("READY", Control.newBuilder().setKind(Kind.CONTROL_SEQUENCE_READY)
            .addInt32FalseTrue(0).addInt32FalseTrue(1)))
        .addControlInput(control("CORRID", Control.newBuilder().setKind(Kind.CONTROL_SEQUENCE_CORRID)
            .setDataType(io.quiver.proto.inference.DataType.TYPE_UINT64)))
        .addState(ModelSequenceBatching.State.newBuilder().setInputName("STATE_IN").setOutputName("STATE_OUT")
            .setDataType(io.quiver.proto.inference.DataType.TYPE_INT32).addDims(1));
    return ModelConfig.newBuilder().setName("acc").setMaxBatchSize(maxBatch)
        .addInput(ModelInput.newBuilder().setName("IN").setDataType(io.quiver.proto.inference.DataType.TYPE_INT32).addDims(1))
        .addOutput(ModelOutput.newBuilder().setName("OUT").setDataType(io.quiver.proto.inference.DataType.TYPE_INT32).addDims(1))
        .addOutput(ModelOutput.newBuilder().setName("CTRL").setDataType(io.quiver.proto.inference.DataType.TYPE_INT64).addDims(4))
        .setSequenceBatching(seq)
        .build();
  }

  private static ModelSequenceBatching.ControlInput control(String name, Control.Builder control) {
    return ModelSequenceBatching.ControlInput.newBuilder().setName(name).addControl(control).build();
  }

  static ModelSequenceBatching.Builder direct() {
    return ModelSequenceBatching.newBuilder();
  }

  /** The accumulator, computing from the batch tensors the sequence batcher built (inputs in signature order). */
  static final class Accumulator implements ModelRunner {
    final List<Integer> batchRows = Collections.synchronizedList(new ArrayList<>());
    final List<long[][]> controls = Collections.synchronizedList(new ArrayList<>());
    volatile CountDownLatch gate;

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      CountDownLatch g = gate;
      if (g != null) {
        try {
          g.await(TestSupport.WAIT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      // signature order: IN, START, END, READY, CORRID, STATE_IN
      ByteBuffer in = inputs[0].data();
      ByteBuffer start = inputs[1].data();
      ByteBuffer end = inputs[2].data();
      ByteBuffer ready = inputs[3].data();
      ByteBuffer corrid = inputs[4].data();
      ByteBuffer state = inputs[5].data();
      int rows = (int) inputs[0].shape()[0];
      for (Tensor t : inputs) {
        if (!t.data().isDirect() || t.shape()[0] != rows) {
          throw new IllegalStateException("bad batch input " + t);
        }
      }
      batchRows.add(rows);
      ByteBuffer out = le(rows * 4);
      ByteBuffer ctrl = le(rows * 32);
      long[][] seen = new long[rows][];
      for (int r = 0; r < rows; r++) {
        int sum = ready.getInt(r * 4) == 1 ? state.getInt(r * 4) + in.getInt(r * 4) : state.getInt(r * 4);
        out.putInt(r * 4, sum);
        seen[r] = new long[] {start.getInt(r * 4), end.getInt(r * 4), ready.getInt(r * 4), corrid.getLong(r * 8)};
        for (int k = 0; k < 4; k++) {
          ctrl.putLong(r * 32 + k * 8, seen[r][k]);
        }
      }
      controls.add(seen);
      Tensor[] result = new Tensor[outputIndices.length];
      for (int j = 0; j < outputIndices.length; j++) {
        result[j] = switch (outputIndices[j]) {
          case 0 -> new Tensor("OUT", DataType.INT32, new long[] {rows, 1}, out.duplicate());
          case 1 -> new Tensor("CTRL", DataType.INT64, new long[] {rows, 4}, ctrl);
          default -> new Tensor("STATE_OUT", DataType.INT32, new long[] {rows, 1}, out.duplicate());
        };
      }
      return result;
    }

    @Override
    public void close() {}
  }

  static ByteBuffer le(int n) {
    return ByteBuffer.allocateDirect(n).order(ByteOrder.LITTLE_ENDIAN);
  }

  SequenceBatcher batcher(ModelConfig config, ModelRunner... runners) {
    return builder(config, runners).build();
  }

  SequenceBatcher.Builder builder(ModelConfig config, ModelRunner... runners) {
    return SequenceBatcher.builder()
        .model("acc", 1, config, ModelSignature.of(config))
        .runners(List.of(runners))
        .clock(clock)
        .compute(Runnable::run)
        .manualDispatch();
  }

  static InferRequest request(Object id, int value, boolean start, boolean end, Result result) {
    ByteBuffer in = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, value);
    SequenceControl control = id instanceof String s ? SequenceControl.string(s, start, end)
        : SequenceControl.numeric(((Number) id).longValue(), start, end);
    // signature: IN (client), then the server's START, END, READY, CORRID, STATE_IN (null from the client)
    return new InferRequest("acc", 1, "r" + value, new Tensor[] {new Tensor("IN", DataType.INT32, new long[] {1, 1}, in),
        null, null, null, null, null}, new int[] {0, 1}, 1, 0, 0, InferRequest.NO_DEADLINE, result, null, control);
  }

  static int out(Result r) {
    r.await();
    assertThat(r.error).as("error").isNull();
    return r.outputs[0].data().getInt(0);
  }

  static long[] ctrl(Result r) {
    ByteBuffer c = r.outputs[1].data();
    return new long[] {c.getLong(0), c.getLong(8), c.getLong(16), c.getLong(24)};
  }

  @Test
  void sequence_accumulatesItsImplicitState_inOrder() {
    SequenceBatcher b = batcher(config(4, direct()), new Accumulator());
    Result first = new Result();
    Result second = new Result();
    Result third = new Result();
    b.submit(request(7L, 5, true, false, first));
    b.submit(request(7L, 3, false, false, second));
    b.submit(request(7L, 2, false, true, third));
    b.doWork();
    assertThat(out(first)).isEqualTo(5);
    assertThat(out(second)).isEqualTo(8);
    assertThat(out(third)).isEqualTo(10);
    assertThat(ctrl(first)).containsExactly(1, 0, 1, 7);
    assertThat(ctrl(second)).containsExactly(0, 0, 1, 7);
    assertThat(ctrl(third)).containsExactly(0, 1, 1, 7);
    assertThat(b.activeSequences()).isZero(); // END released the slot
    assertThat(b.stats().success().count()).isEqualTo(3);
  }

  @Test
  void sequences_keepTheirOwnState_andShareBatches() {
    Accumulator runner = new Accumulator();
    SequenceBatcher b = batcher(config(4, direct()), runner);
    Result a1 = new Result();
    Result b1 = new Result();
    b.submit(request(1L, 10, true, false, a1));
    b.submit(request(2L, 100, true, false, b1));
    b.doWork();
    Result a2 = new Result();
    Result b2 = new Result();
    b.submit(request(2L, 1, false, true, b2));
    b.submit(request(1L, 2, false, true, a2));
    b.doWork();
    assertThat(out(a1)).isEqualTo(10);
    assertThat(out(b1)).isEqualTo(100);
    assertThat(out(a2)).isEqualTo(12);
    assertThat(out(b2)).isEqualTo(101);
    assertThat(runner.batchRows).containsExactly(2, 2); // each batch holds both sequences, one row per slot
  }

  @Test
  void direct_slotWithoutARequest_isSentNotReady() {
    Accumulator runner = new Accumulator();
    SequenceBatcher b = batcher(config(4, direct()), runner);
    Result a1 = new Result();
    Result b1 = new Result();
    b.submit(request(1L, 1, true, false, a1));
    b.submit(request(2L, 1, true, false, b1));
    b.doWork();
    Result b2 = new Result();
    b.submit(request(2L, 5, false, false, b2)); // only the sequence in slot 1 has a request
    b.doWork();
    assertThat(out(b2)).isEqualTo(6);
    long[][] last = runner.controls.get(runner.controls.size() - 1);
    assertThat(last).hasDimensions(2, 4);
    assertThat(last[0]).containsExactly(0, 0, 0, 0); // slot 0: READY false, no id
    assertThat(last[1]).containsExactly(0, 0, 1, 2);
    // slot 0's state was not disturbed by the not-ready row
    Result a2 = new Result();
    b.submit(request(1L, 1, false, true, a2));
    b.doWork();
    assertThat(out(a2)).isEqualTo(2);
  }

  @Test
  void requestWithoutStart_forAnUnknownSequence_failsNamingTheStartFlag() {
    SequenceBatcher b = batcher(config(4, direct()), new Accumulator());
    Result r = new Result();
    b.submit(request(42L, 1, false, false, r));
    b.doWork();
    r.await();
    assertThat(r.error.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(r.error.getMessage()).contains("sequence 42").contains("must specify the START flag");
    assertThat(b.stats().fail().count()).isEqualTo(1);

    // after END the id is unknown again
    Result s = new Result();
    Result late = new Result();
    b.submit(request(43L, 1, true, true, s));
    b.doWork();
    b.submit(request(43L, 1, false, false, late));
    b.doWork();
    assertThat(out(s)).isEqualTo(1);
    assertThat(late.await().error.getMessage()).contains("must specify the START flag");
  }

  @Test
  void submit_refusesWhatCanNeverRun() {
    SequenceBatcher b = batcher(config(4, direct()), new Accumulator());
    InferRequest noSequence = new InferRequest("acc", 1, "x", request(1L, 1, true, false, new Result()).inputs(),
        new int[] {0}, 1, 0, 0, InferRequest.NO_DEADLINE, new Result());
    assertThatThrownBy(() -> b.submit(noSequence))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("needs a sequence_id");
    assertThatThrownBy(() -> b.submit(request("text-id", 1, true, false, new Result())))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("numeric sequence ids");
    InferRequest two = new InferRequest("acc", 1, "x", new Tensor[] {new Tensor("IN", DataType.INT32, new long[] {2, 1},
        ByteBuffer.allocate(8)), null, null, null, null, null}, new int[] {0}, 2, 0, 0, InferRequest.NO_DEADLINE,
        new Result(), null, SequenceControl.numeric(1, true, false));
    assertThatThrownBy(() -> b.submit(two)).hasMessageContaining("must specify batch-size 1");
    assertThatThrownBy(() -> SequenceControl.numeric(0, true, false)).hasMessageContaining("sequence_id 0");
  }

  @Test
  void sequencesOverCapacity_waitInTheBacklog_untilASlotFrees() {
    SequenceBatcher b = batcher(config(1, direct()), new Accumulator()); // one instance, one slot
    Result a1 = new Result();
    Result b1 = new Result();
    b.submit(request(1L, 1, true, false, a1));
    b.submit(request(2L, 50, true, false, b1));
    b.doWork();
    assertThat(out(a1)).isEqualTo(1);
    assertThat(b1.isDone()).isFalse();
    assertThat(b.backlogSequences()).isEqualTo(1);
    Result a2 = new Result();
    b.submit(request(1L, 1, false, true, a2));
    b.doWork();
    b.doWork();
    assertThat(out(a2)).isEqualTo(2);
    assertThat(out(b1)).isEqualTo(50); // got the freed slot, with a fresh state
    assertThat(b.backlogSequences()).isZero();
  }

  @Test
  void idleSequence_isReleased_afterMaxSequenceIdle() {
    ModelSequenceBatching.Builder idle = direct().setMaxSequenceIdleMicroseconds(1000);
    SequenceBatcher b = batcher(config(1, idle), new Accumulator());
    Result a1 = new Result();
    Result waiting = new Result();
    b.submit(request(1L, 1, true, false, a1));
    b.submit(request(2L, 9, true, false, waiting));
    b.doWork();
    assertThat(out(a1)).isEqualTo(1);
    clock.advanceMicros(999);
    b.doWork();
    assertThat(waiting.isDone()).isFalse();
    clock.advanceMicros(2);
    b.doWork();
    b.doWork();
    assertThat(out(waiting)).isEqualTo(9); // sequence 1 was released: its slot went to the backlog
    Result late = new Result();
    b.submit(request(1L, 1, false, false, late));
    b.doWork();
    assertThat(late.await().error.getMessage()).contains("must specify the START flag");
  }

  @Test
  void startAgain_onAnActiveSequence_resetsItsState() {
    SequenceBatcher b = batcher(config(2, direct()), new Accumulator());
    Result r1 = new Result();
    Result r2 = new Result();
    Result r3 = new Result();
    b.submit(request(5L, 4, true, false, r1));
    b.doWork();
    b.submit(request(5L, 6, true, false, r2));
    b.doWork();
    b.submit(request(5L, 1, false, true, r3));
    b.doWork();
    assertThat(out(r1)).isEqualTo(4);
    assertThat(out(r2)).isEqualTo(6);
    assertThat(out(r3)).isEqualTo(7);
  }

  @Test
  void oldest_batchesTheOldestReadySequences_upToMaxBatchSize() {
    Accumulator runner = new Accumulator();
    ModelSequenceBatching.Builder oldest = ModelSequenceBatching.newBuilder()
        .setOldest(ModelSequenceBatching.StrategyOldest.newBuilder().setMaxCandidateSequences(4));
    SequenceBatcher b = batcher(config(2, oldest), runner);
    Result[] r = new Result[3];
    for (int i = 0; i < 3; i++) {
      r[i] = new Result();
      b.submit(request((long) (i + 1), 10 * (i + 1), true, false, r[i]));
      clock.advanceMicros(1);
    }
    b.doWork();
    assertThat(out(r[0])).isEqualTo(10);
    assertThat(out(r[1])).isEqualTo(20);
    assertThat(out(r[2])).isEqualTo(30);
    assertThat(runner.batchRows).containsExactly(2, 1); // the two oldest first, compact rows
    assertThat(runner.controls.get(0)[0][3]).isEqualTo(1);
    assertThat(runner.controls.get(0)[1][3]).isEqualTo(2);
  }

  @Test
  void oldest_waitsForTheQueueDelay_unlessAtAPreferredSize() {
    Accumulator runner = new Accumulator();
    ModelSequenceBatching.Builder oldest = ModelSequenceBatching.newBuilder()
        .setOldest(ModelSequenceBatching.StrategyOldest.newBuilder().setMaxCandidateSequences(4)
            .setMaxQueueDelayMicroseconds(500).addPreferredBatchSize(2));
    SequenceBatcher b = batcher(config(4, oldest), runner);
    Result first = new Result();
    b.submit(request(1L, 1, true, false, first));
    b.doWork();
    assertThat(first.isDone()).isFalse();
    clock.advanceMicros(501);
    b.doWork();
    assertThat(out(first)).isEqualTo(1);
    Result x = new Result();
    Result y = new Result();
    b.submit(request(2L, 2, true, false, x));
    b.submit(request(3L, 3, true, false, y));
    b.doWork(); // two ready: a preferred size, sent at once
    assertThat(out(x) + out(y)).isEqualTo(5);
  }

  @Test
  void cancelledRequest_cancelsItsSequence() {
    SequenceBatcher b = batcher(config(1, direct()), new Accumulator());
    Result a1 = new Result();
    b.submit(request(1L, 1, true, false, a1));
    b.doWork();
    Result a2 = new Result();
    Result a3 = new Result();
    InferRequest cancelled = request(1L, 2, false, false, a2);
    b.submit(cancelled);
    b.submit(request(1L, 3, false, false, a3));
    cancelled.cancel();
    b.doWork();
    assertThat(a2.await().error.code()).isEqualTo(ErrorCode.CANCELLED);
    assertThat(a3.await().error.code()).isEqualTo(ErrorCode.CANCELLED);
    assertThat(b.activeSequences()).isZero();
  }

  @Test
  void stringCorrelationIds_reachAStringCorridControl() {
    ModelConfig numeric = config(2, direct());
    ModelSequenceBatching.Builder seq = numeric.getSequenceBatching().toBuilder();
    seq.getControlInputBuilder(3).getControlBuilder(0).setDataType(io.quiver.proto.inference.DataType.TYPE_STRING);
    ModelConfig strings = numeric.toBuilder().setSequenceBatching(seq).build();
    AtomicReference<String> seen = new AtomicReference<>();
    ModelRunner runner = new ModelRunner() {
      final Accumulator inner = new Accumulator();

      @Override
      public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
        ByteBuffer id = inputs[4].data();
        byte[] bytes = new byte[id.getInt(0)];
        id.get(4, bytes);
        seen.set(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
        inputs[4] = new Tensor("CORRID", DataType.UINT64, new long[] {1, 1}, le(8));
        return inner.run(inputs, outputIndices);
      }

      @Override
      public void close() {}
    };
    SequenceBatcher b = batcher(strings, runner);
    Result r = new Result();
    b.submit(request("session-7", 3, true, true, r));
    b.doWork();
    assertThat(out(r)).isEqualTo(3);
    assertThat(seen.get()).isEqualTo("session-7");
  }

  @Test
  void live_concurrentSequencesFromManyThreads_eachSeesOnlyItsOwnSums() throws Exception {
    ModelConfig config = config(4, direct());
    SequenceBatcher b = SequenceBatcher.builder()
        .model("acc", 1, config, ModelSignature.of(config))
        .runners(List.of(new Accumulator(), new Accumulator()))
        .compute(TestSupport.POOL)
        .timer(TestSupport.TIMER)
        .build();
    int sequences = 24;
    int steps = 20;
    ExecutorService clients = Executors.newFixedThreadPool(6);
    try {
      List<java.util.concurrent.Future<int[]>> results = new ArrayList<>();
      for (int s = 0; s < sequences; s++) {
        long id = 1000 + s;
        results.add(clients.submit(() -> {
          int[] sums = new int[steps];
          for (int k = 0; k < steps; k++) {
            Result r = new Result();
            b.submit(request(id, k + 1, k == 0, k == steps - 1, r));
            sums[k] = out(r);
          }
          return sums;
        }));
      }
      for (java.util.concurrent.Future<int[]> f : results) {
        int[] sums = f.get(TestSupport.WAIT_MS, TimeUnit.MILLISECONDS);
        int expected = 0;
        for (int k = 0; k < steps; k++) {
          expected += k + 1;
          assertThat(sums[k]).isEqualTo(expected);
        }
      }
    } finally {
      clients.shutdownNow();
      b.close();
    }
    assertThat(b.stats().success().count()).isEqualTo((long) sequences * steps);
    assertThat(b.activeSequences()).isZero();
    assertThat(b.inFlightRequests()).isZero();
  }

  @Test
  void close_runsWhatIsQueued_andAnswersEveryRequest() {
    Accumulator runner = new Accumulator();
    SequenceBatcher b = builder(config(1, direct()), runner).shutdownTimeoutNanos(0).build();
    Result a = new Result();
    Result c = new Result();
    b.submit(request(1L, 1, true, false, a));
    b.submit(request(2L, 2, true, false, c)); // backlogged behind sequence 1, which never ends
    b.doWork();
    b.close();
    assertThat(out(a)).isEqualTo(1);
    // Its sequence never got a slot before the shutdown timeout: UNAVAILABLE, as close() documents.
    assertThat(c.await().error).isNotNull().hasFieldOrPropertyWithValue("code", ErrorCode.UNAVAILABLE);
    assertThatThrownBy(() -> b.submit(request(3L, 1, true, false, new Result())))
        .hasFieldOrPropertyWithValue("code", ErrorCode.UNAVAILABLE);
  }
}
