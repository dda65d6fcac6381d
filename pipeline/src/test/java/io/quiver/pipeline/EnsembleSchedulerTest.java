package io.quiver.pipeline;

import static io.quiver.pipeline.TestModels.ensemble;
import static io.quiver.pipeline.TestModels.floats;
import static io.quiver.pipeline.TestModels.fp32;
import static io.quiver.pipeline.TestModels.step;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.pipeline.TestModels.Compute;
import io.quiver.pipeline.TestModels.Gate;
import io.quiver.pipeline.TestModels.Model;
import io.quiver.pipeline.TestModels.Router;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The ensemble scheduler over step schedulers that really compute, on the test's thread. */
class EnsembleSchedulerTest {
  static final int W = 4;
  final Router router = new Router();
  final PipelineSchedulerFactory factory = new PipelineSchedulerFactory((n, v, c, s, i) -> {
    throw new AssertionError("only ensembles here");
  }, (e, v, steps) -> StepListener.NONE).routeThrough(router);

  Model model(String name, InferenceScheduler scheduler, ModelSignature signature) {
    return router.add(new Model(name, 1, signature, TestModels.configOf(name, signature), scheduler));
  }

  Compute compute(String name, java.util.function.DoubleUnaryOperator f) {
    ModelSignature s = fp32("IN", "OUT", W, 8);
    Compute c = new Compute(s, f);
    model(name, c, s);
    return c;
  }

  Gate gate(String name, java.util.function.DoubleUnaryOperator f) {
    ModelSignature s = fp32("IN", "OUT", W, 8);
    Gate g = new Gate(s, f);
    model(name, g, s);
    return g;
  }

  InferenceScheduler load(ModelConfig config) {
    return factory.create(config.getName(), 1, config, io.quiver.core.ModelSignature.of(config), List.of());
  }

  /** A pipeline: x → plus_one → times_two → y. */
  ModelConfig pipeline() {
    return ensemble("pipe", 8, W, List.of("x"), List.of("y"),
        step("plus_one", new String[] {"IN", "x"}, new String[] {"OUT", "h"}),
        step("times_two", new String[] {"IN", "h"}, new String[] {"OUT", "y"}));
  }

  static final class Answer implements InferCallback {
    final CompletableFuture<Tensor[]> outputs = new CompletableFuture<>();
    volatile Thread thread;

    @Override
    public void onSuccess(InferRequest request, Tensor[] out) {
      thread = Thread.currentThread();
      Tensor[] copies = new Tensor[out.length];
      for (int i = 0; i < out.length; i++) {
        copies[i] = io.quiver.pipeline.EnsembleRun.copy(out[i]);
      }
      outputs.complete(copies);
    }

    @Override
    public void onFailure(InferRequest request, InferenceException error) {
      thread = Thread.currentThread();
      outputs.completeExceptionally(error);
    }

    Tensor[] get() throws Exception {
      return outputs.get(10, TimeUnit.SECONDS);
    }

    InferenceException error() {
      assertThat(outputs).isCompletedExceptionally();
      return (InferenceException) outputs.handle((ok, e) -> e).join();
    }
  }

  static InferRequest request(InferenceScheduler ensemble, Answer answer, long deadline, float... values) {
    return request(ensemble, answer, deadline, null, values);
  }

  static InferRequest request(InferenceScheduler ensemble, Answer answer, long deadline, int[] outputs, float... values) {
    ModelSignature s = ((EnsembleScheduler) io.quiver.core.spi.SchedulerDecorator.find(ensemble, EnsembleScheduler.class))
        .plan().signature;
    int rows = values.length / W;
    return new InferRequest("ens", 1, "id-1", new Tensor[] {fp32(s.inputs().get(0).name(), rows, values)},
        outputs == null ? s.allOutputIndices() : outputs, rows, 0, 0, deadline, answer);
  }

  @Test
  void pipeline_runsTheStepsInOrder_andCopiesWhatTheNextStepReads() throws Exception {
    compute("plus_one", x -> x + 1); // scribbles over its outputs after each answer
    compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4, 5, 6, 7, 8));

    Tensor[] out = answer.get();
    assertThat(out[0].name()).isEqualTo("y");
    assertThat(out[0].shape()).containsExactly(2, W);
    assertThat(floats(out[0])).containsExactly(4, 6, 8, 10, 12, 14, 16, 18);
    assertThat(ensemble.stats().success().count()).isEqualTo(1);
    assertThat(ensemble.stats().queue().nanos()).isEqualTo(2000); // the steps' queue times, summed
    assertThat(ensemble.inFlightRequests()).isZero();
    assertThat(router.models.values()).allSatisfy(m -> assertThat(m.held.get()).isZero());
  }

  @Test
  void fanOut_sendsBothBranchesBeforeEitherAnswers() throws Exception {
    compute("features", x -> x - 1);
    Gate left = gate("left", x -> x * 10);
    Gate right = gate("right", x -> x * 100);
    InferenceScheduler ensemble = load(ensemble("fan", 8, W, List.of("x"), List.of("a", "b"),
        step("features", new String[] {"IN", "x"}, new String[] {"OUT", "f"}),
        step("left", new String[] {"IN", "f"}, new String[] {"OUT", "a"}),
        step("right", new String[] {"IN", "f"}, new String[] {"OUT", "b"})));
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));

    // Both heads hold a request at the same time: the branches run in parallel, not one after the other.
    assertThat(left.waiting()).isEqualTo(1);
    assertThat(right.waiting()).isEqualTo(1);
    assertThat(answer.outputs).isNotDone();
    right.releaseAll(); // the second branch finishes first: its output is kept (copied)
    assertThat(answer.outputs).isNotDone();
    left.releaseAll(); // the last one answers the request with its own outputs, inside its callback

    Tensor[] out = answer.get();
    assertThat(floats(out[0])).containsExactly(0, 10, 20, 30);
    assertThat(floats(out[1])).containsExactly(0, 100, 200, 300);
  }

  @Test
  void requestedOutputs_runOnlyTheStepsTheyNeed() throws Exception {
    Compute features = compute("features", x -> x - 1);
    Compute left = compute("left", x -> x * 10);
    Compute right = compute("right", x -> x * 100);
    InferenceScheduler ensemble = load(ensemble("fan", 8, W, List.of("x"), List.of("a", "b"),
        step("features", new String[] {"IN", "x"}, new String[] {"OUT", "f"}),
        step("left", new String[] {"IN", "f"}, new String[] {"OUT", "a"}),
        step("right", new String[] {"IN", "f"}, new String[] {"OUT", "b"})));
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, new int[] {1}, 1, 2, 3, 4));

    Tensor[] out = answer.get();
    assertThat(out).hasSize(1);
    assertThat(out[0].name()).isEqualTo("b");
    assertThat(floats(out[0])).containsExactly(0, 100, 200, 300);
    assertThat(features.submitted.get()).isEqualTo(1);
    assertThat(right.submitted.get()).isEqualTo(1);
    assertThat(left.submitted.get()).isZero();
  }

  @Test
  void deadline_passedBetweenSteps_failsBeforeTheNextStep_namingIt() throws Exception {
    Gate first = gate("plus_one", x -> x + 1);
    Compute second = compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(30);
    ensemble.submit(request(ensemble, answer, deadline, 1, 2, 3, 4));
    assertThat(first.waiting()).isEqualTo(1);
    while (System.nanoTime() - deadline <= 0) {
      Thread.sleep(5);
    }
    // The first step answers after the deadline (its scheduler did not check it): the second never starts.
    first.deadlineUnchecked = true;
    first.releaseAll();

    InferenceException error = answer.error();
    assertThat(error.code()).isEqualTo(ErrorCode.DEADLINE_EXCEEDED);
    assertThat(error.getMessage()).contains("ensemble 'pipe' version 1", "step 1 (model 'times_two')");
    assertThat(second.submitted.get()).isZero();
    assertThat(ensemble.stats().fail().count()).isEqualTo(1);
  }

  @Test
  void cancellation_reachesTheStepInQueue_andNothingAfterItRuns() throws Exception {
    Gate first = gate("plus_one", x -> x + 1);
    Compute second = compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();
    InferRequest request = request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4);
    ensemble.submit(request);
    request.cancel(); // the client went away while step 0 waits in its model's queue
    first.releaseAll(); // the step's scheduler sees its request cancelled (linked to the ensemble request)

    InferenceException error = answer.error();
    assertThat(error.code()).isEqualTo(ErrorCode.CANCELLED);
    assertThat(error.getMessage()).contains("step 0 (model 'plus_one')");
    assertThat(second.submitted.get()).isZero();
    assertThat(router.models.values()).allSatisfy(m -> assertThat(m.held.get()).isZero());
  }

  @Test
  void failingStep_failsTheRequest_namingTheStep_andKeepsItsCode() throws Exception {
    compute("plus_one", x -> x + 1);
    InferenceScheduler failing = new Compute(fp32("IN", "OUT", W, 8), x -> x) {
      @Override
      public void submit(InferRequest request) {
        request.callback().onFailure(request, InferenceException.internal("the runtime fell over", null));
      }
    };
    model("times_two", failing, fp32("IN", "OUT", W, 8));
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));

    InferenceException error = answer.error();
    assertThat(error.code()).isEqualTo(ErrorCode.INTERNAL);
    assertThat(error.getMessage()).isEqualTo(
        "ensemble 'pipe' version 1: step 1 (model 'times_two') failed: the runtime fell over");
  }

  @Test
  void firstStepRefused_isThrownAtSubmit_withItsRetryHint() {
    InferenceScheduler full = new Compute(fp32("IN", "OUT", W, 8), x -> x) {
      @Override
      public void submit(InferRequest request) {
        throw InferenceException.resourceExhausted(7_000_000, "queue full");
      }
    };
    model("plus_one", full, fp32("IN", "OUT", W, 8));
    compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();

    assertThatThrownBy(() -> ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4)))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
          assertThat(e.retryAfterNanos()).isEqualTo(7_000_000);
          assertThat(e.getMessage()).contains("step 0 (model 'plus_one')", "queue full");
        });
    assertThat(answer.outputs).isNotDone();
    assertThat(ensemble.inFlightRequests()).isZero();
  }

  @Test
  void stepModelUnloaded_failsWithItsStatus_namingTheStep() throws Exception {
    compute("plus_one", x -> x + 1);
    compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    router.models.remove("times_two");
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));

    InferenceException error = answer.error();
    assertThat(error.code()).isEqualTo(ErrorCode.NOT_FOUND);
    assertThat(error.getMessage()).contains("step 1 (model 'times_two')", "unknown model 'times_two'");
  }

  @Test
  void hotSwap_ofAStepModel_reachesTheNextRequest_andAnIncompatibleOneIsNamed() throws Exception {
    compute("plus_one", x -> x + 1);
    Compute old = compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Model step = router.models.get("times_two");
    // A new version with its own (compatible) signature object and another function.
    ModelSignature newSignature = fp32("IN", "OUT", W, 16);
    Compute swapped = new Compute(newSignature, x -> x * 3);
    step.version = 2;
    step.signature = newSignature;
    step.scheduler = swapped;
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));
    assertThat(floats(answer.get()[0])).containsExactly(6, 9, 12, 15);
    assertThat(old.submitted.get()).isZero();

    // Version 3 renames its input: the graph no longer fits, and the error says where.
    step.version = 3;
    step.signature = fp32("INPUT", "OUT", W, 16);
    step.scheduler = new Compute(step.signature, x -> x);
    Answer broken = new Answer();
    ensemble.submit(request(ensemble, broken, InferRequest.NO_DEADLINE, 1, 2, 3, 4));
    assertThat(broken.error().getMessage()).contains("step 1 (model 'times_two')",
        "input_map names input 'IN', which the model does not have");
  }

  @Test
  void ensembleOfAnEnsemble_runsTheInnerOneAsAStep() throws Exception {
    compute("plus_one", x -> x + 1);
    compute("times_two", x -> x * 2);
    ModelConfig innerConfig = pipeline();
    InferenceScheduler inner = load(innerConfig);
    router.add(new Model("pipe", 1, ModelSignature.of(innerConfig), innerConfig, inner));
    InferenceScheduler outer = load(ensemble("outer", 8, W, List.of("in"), List.of("out"),
        step("pipe", new String[] {"x", "in"}, new String[] {"y", "mid"}),
        step("plus_one", new String[] {"IN", "mid"}, new String[] {"OUT", "out"})));
    Answer answer = new Answer();
    outer.submit(request(outer, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));

    assertThat(floats(answer.get()[0])).containsExactly(5, 7, 9, 11); // (x + 1) * 2 + 1
    assertThat(inner.stats().success().count()).isEqualTo(1);
  }

  @Test
  void admissionLimit_refusesOverTheLimit_beforeAnyStepRuns_withARetryHint() throws Exception {
    Gate first = gate("plus_one", x -> x + 1);
    compute("times_two", x -> x * 2);
    ModelConfig limited = pipeline().toBuilder()
        .putParameters(AdmissionLimit.PARAMETER, ModelParameter.newBuilder().setStringValue("1").build()).build();
    InferenceScheduler ensemble = load(limited);
    assertThat(ensemble).isInstanceOf(AdmissionLimit.class);
    Answer a = new Answer();
    ensemble.submit(request(ensemble, a, InferRequest.NO_DEADLINE, 1, 2, 3, 4));

    assertThatThrownBy(() -> ensemble.submit(request(ensemble, new Answer(), InferRequest.NO_DEADLINE, 1, 2, 3, 4)))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED);
          assertThat(e.retryAfterNanos()).isPositive();
          assertThat(e.getMessage()).contains("model 'pipe' version 1 has 1 requests in flight",
              "quiver.max_inflight_requests");
        });
    assertThat(first.waiting()).isEqualTo(1); // the refused request started no step

    first.releaseAll();
    assertThat(floats(a.get()[0])).containsExactly(4, 6, 8, 10);
    Answer b = new Answer(); // the slot is free again
    ensemble.submit(request(ensemble, b, InferRequest.NO_DEADLINE, 0, 0, 0, 0));
    first.releaseAll();
    assertThat(floats(b.get()[0])).containsExactly(2, 2, 2, 2);
    assertThat(((AdmissionLimit) ensemble).rejectedRequests()).isEqualTo(1);
  }

  @Test
  void close_waitsForAcceptedRequests_thenRefusesNewOnes() throws Exception {
    Gate first = gate("plus_one", x -> x + 1);
    compute("times_two", x -> x * 2);
    InferenceScheduler ensemble = load(pipeline());
    Answer answer = new Answer();
    ensemble.submit(request(ensemble, answer, InferRequest.NO_DEADLINE, 1, 2, 3, 4));
    CompletableFuture<Void> closed = CompletableFuture.runAsync(ensemble::close);
    Thread.sleep(20);
    assertThat(closed).isNotDone();
    first.releaseAll();
    closed.get(10, TimeUnit.SECONDS);
    assertThat(floats(answer.get()[0])).containsExactly(4, 6, 8, 10);
    assertThatThrownBy(() -> ensemble.submit(request(ensemble, new Answer(), InferRequest.NO_DEADLINE, 1, 2, 3, 4)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE));
  }
}
