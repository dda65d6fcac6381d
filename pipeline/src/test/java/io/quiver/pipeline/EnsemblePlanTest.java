package io.quiver.pipeline;

import static io.quiver.pipeline.TestModels.ensemble;
import static io.quiver.pipeline.TestModels.fp32;
import static io.quiver.pipeline.TestModels.step;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import io.quiver.pipeline.TestModels.Compute;
import io.quiver.pipeline.TestModels.Model;
import io.quiver.pipeline.TestModels.Router;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every way an ensemble's graph can fail to fit its step models, each error naming the step and tensor. */
class EnsemblePlanTest {
  static final int W = 4;
  final Router router = new Router();

  @BeforeEach
  void stepModels() {
    add("a", fp32("IN", "OUT", W, 8));
    add("b", fp32("IN", "OUT", W, 8));
    add("small_batch", fp32("IN", "OUT", W, 2));
    add("no_batch", fp32("IN", "OUT", W, 0));
    add("ints", new ModelSignature(8, List.of(new TensorSpec("IN", DataType.INT32, new long[] {W})),
        List.of(new TensorSpec("OUT", DataType.INT32, new long[] {W}))));
    add("wide", fp32("IN", "OUT", 2 * W, 8));
  }

  void add(String name, ModelSignature signature) {
    router.add(new Model(name, 1, signature, TestModels.configOf(name, signature), new Compute(signature, x -> x)));
  }

  EnsemblePlan build(ModelConfig config) {
    return EnsemblePlan.build(config.getName(), 1, config, ModelSignature.of(config), router);
  }

  AbstractThrowableAssert<?, ? extends Throwable> assertInvalid(ModelConfig config) {
    return assertThatThrownBy(() -> build(config)).isInstanceOfSatisfying(InferenceException.class,
        e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
  }

  @Test
  void validGraph_buildsItsTables() {
    EnsemblePlan plan = build(ensemble("e", 8, W, List.of("x"), List.of("y", "z"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUT", "h"}),
        step("b", new String[] {"IN", "h"}, new String[] {"OUT", "y"}),
        step("a", new String[] {"IN", "h"}, new String[] {"OUT", "z"})));
    assertThat(plan.tensorNames).containsExactly("x", "h", "y", "z");
    assertThat(plan.steps[0].dependents).containsExactlyInAnyOrder(1, 2);
    assertThat(plan.steps[1].producerCount).isEqualTo(1);
    assertThat(plan.stepsFor(plan.signature.allOutputIndices())).isEqualTo(0b111);
    assertThat(plan.stepsFor(new int[] {0})).isEqualTo(0b011); // y needs steps 0 and 1 only
    assertThat(plan.stepModels()).containsExactly("a", "b", "a");
  }

  @Test
  void unknownStepModel_isNamedWithItsStatus() {
    assertThatThrownBy(() -> build(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("nope", new String[] {"IN", "x"}, new String[] {"OUT", "y"}))))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND);
          assertThat(e.getMessage()).contains("ensemble 'e' version 1: step 0 (model 'nope') cannot be used",
              "unknown model 'nope'");
        });
  }

  @Test
  void unknownInputOrOutputOfTheStepModel_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"INPUT", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 0 (model 'a'): input_map names input 'INPUT', which the model does not have;"
            + " its inputs are [IN]")
        .hasMessageContaining("input 'IN' of the model is not in input_map");
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUTPUT", "y"})))
        .hasMessageContaining("step 0 (model 'a'): output_map names output 'OUTPUT', which the model does not have;"
            + " its outputs are [OUT]");
  }

  @Test
  void tensorNobodyWrites_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "typo"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 0 (model 'a'): input 'IN' reads tensor 'typo', which is neither an input of the"
            + " ensemble nor written by any step");
  }

  @Test
  void datatypeMismatch_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUT", "h"}),
        step("ints", new String[] {"IN", "h"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 1 (model 'ints'): input 'IN' is INT32, but it reads tensor 'h' (written by"
            + " step 0 (model 'a')), which is FP32");
  }

  @Test
  void shapeMismatch_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("wide", new String[] {"IN", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 0 (model 'wide'): input 'IN' has shape [-1, 8], but it reads the ensemble's"
            + " input 'x', which has shape [-1, 4]");
  }

  @Test
  void outputNotWritten_andOutputOfAnotherType_areNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y", "missing"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("output 'missing' of the ensemble is not written by any step");
  }

  @Test
  void tensorWrittenTwice_orOverAnInput_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUT", "y"}),
        step("b", new String[] {"IN", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 1 (model 'b'): output 'OUT' writes tensor 'y', which step 0 (model 'a') already writes");
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "x"}, new String[] {"OUT", "x"})))
        .hasMessageContaining("writes tensor 'x', which is an input of the ensemble");
  }

  @Test
  void cycle_isNamedStepByStep() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("a", new String[] {"IN", "t2"}, new String[] {"OUT", "t1"}),
        step("b", new String[] {"IN", "t1"}, new String[] {"OUT", "t2"}),
        step("a", new String[] {"IN", "t1"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("the steps form a cycle")
        .hasMessageContaining("step 0 (model 'a') writes 't1' read by step 1 (model 'b')")
        .hasMessageContaining("step 1 (model 'b') writes 't2' read by step 0 (model 'a')");
  }

  @Test
  void batchingThatCannotFit_isNamed() {
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("small_batch", new String[] {"IN", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 0 (model 'small_batch'): its max_batch_size 2 is below the ensemble's 8");
    assertInvalid(ensemble("e", 8, W, List.of("x"), List.of("y"),
        step("no_batch", new String[] {"IN", "x"}, new String[] {"OUT", "y"})))
        .hasMessageContaining("step 0 (model 'no_batch'): the ensemble batches (max_batch_size 8) but the step model does not");
  }

  @Test
  void ensembleThatLeadsBackToItself_throughAnotherEnsemble_isRefused() {
    ModelConfig inner = ensemble("inner", 8, W, List.of("x"), List.of("y"),
        step("outer", new String[] {"in", "x"}, new String[] {"out", "y"}));
    // 'inner' was loaded while an older 'outer' did not call it; now 'outer' wants to call 'inner'.
    ModelSignature innerSignature = ModelSignature.of(inner);
    EnsemblePlan innerPlan;
    router.add(new Model("outer", 1, fp32("in", "out", W, 8), TestModels.configOf("outer", fp32("in", "out", W, 8)),
        new Compute(fp32("in", "out", W, 8), x -> x)));
    innerPlan = EnsemblePlan.build("inner", 1, inner, innerSignature, router);
    router.add(new Model("inner", 1, innerSignature, inner, new EnsembleScheduler(innerPlan, router, StepListener.NONE)));

    assertInvalid(ensemble("outer", 8, W, List.of("in"), List.of("out"),
        step("inner", new String[] {"x", "in"}, new String[] {"y", "out"})))
        .hasMessageContaining("step 0 (model 'inner'): leads back to 'outer' through inner -> outer");
  }
}
