package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelParameter;
import io.quiver.proto.inference.ModelQueuePolicy;
import org.junit.jupiter.api.Test;

class BatchingPolicyTest {
  private static ModelConfig.Builder model(int maxBatch) {
    return ModelConfig.newBuilder().setName("m").setMaxBatchSize(maxBatch);
  }

  @Test
  void noDynamicBatching_meansBatchesOfOneWithTheDefaultBound() {
    BatchingPolicy p = BatchingPolicy.from(model(8).build());
    assertThat(p.dynamicBatching()).isFalse();
    assertThat(p.maxBatchRows()).isEqualTo(8);
    assertThat(p.priorityLevels()).isEqualTo(1);
    assertThat(p.level(1).maxQueueSize()).isEqualTo(BatchingPolicy.DEFAULT_MAX_QUEUE_SIZE);
    assertThat(p.level(1).defaultTimeoutNanos()).isZero();
  }

  @Test
  void dynamicBatching_readsEveryField() {
    BatchingPolicy p = BatchingPolicy.from(model(16).setDynamicBatching(ModelDynamicBatching.newBuilder()
        .addPreferredBatchSize(8).addPreferredBatchSize(4).addPreferredBatchSize(8).setMaxQueueDelayMicroseconds(250)
        .setPreserveOrdering(true).setPriorityLevels(3).setDefaultPriorityLevel(2)
        .setDefaultQueuePolicy(ModelQueuePolicy.newBuilder().setMaxQueueSize(10).setDefaultTimeoutMicroseconds(7))
        .putPriorityQueuePolicy(1, ModelQueuePolicy.newBuilder().setTimeoutAction(ModelQueuePolicy.TimeoutAction.DELAY)
            .setAllowTimeoutOverride(true).build()))
        .putParameters(BatchingPolicy.PARAM_LATENCY_TARGET_US, ModelParameter.newBuilder().setStringValue(" 5000 ").build())
        .build());
    assertThat(p.dynamicBatching()).isTrue();
    assertThat(p.preferredBatchSizes()).containsExactly(4, 8);
    assertThat(p.maxQueueDelayNanos()).isEqualTo(250_000);
    assertThat(p.preserveOrdering()).isTrue();
    assertThat(p.priorityLevels()).isEqualTo(3);
    assertThat(p.honoursPriority()).isTrue();
    assertThat(p.defaultPriorityLevel()).isEqualTo(2);
    assertThat(p.level(1)).isEqualTo(new BatchingPolicy.LevelPolicy(BatchingPolicy.DEFAULT_MAX_QUEUE_SIZE, 0, true, true));
    assertThat(p.level(2)).isEqualTo(new BatchingPolicy.LevelPolicy(10, 7_000, false, false));
    assertThat(p.level(3)).isEqualTo(p.level(2));
    assertThat(p.latencyTargetNanos()).isEqualTo(5_000_000);
  }

  @Test
  void invalidValues_areInvalidArgumentNamingTheField() {
    assertInvalid(model(4).setDynamicBatching(ModelDynamicBatching.newBuilder().addPreferredBatchSize(5)),
        "preferred_batch_size", "5");
    assertInvalid(model(4).setDynamicBatching(ModelDynamicBatching.newBuilder().setPriorityLevels(2)),
        "default_priority_level", "0");
    assertInvalid(model(4).setDynamicBatching(ModelDynamicBatching.newBuilder().setPriorityLevels(2).setDefaultPriorityLevel(1)
        .putPriorityQueuePolicy(3, ModelQueuePolicy.getDefaultInstance())), "priority_queue_policy", "3");
    assertInvalid(model(-3), "max_batch_size", "-3");
    // The same rules as the config validator's (SchedulingRules): 65 levels is refused by both.
    assertInvalid(model(4).setDynamicBatching(ModelDynamicBatching.newBuilder().setPriorityLevels(65).setDefaultPriorityLevel(1)),
        "priority_levels must be in [0, 64]", "65");
    assertInvalid(model(4).putParameters(BatchingPolicy.PARAM_LATENCY_TARGET_US,
        ModelParameter.newBuilder().setStringValue("soon").build()), BatchingPolicy.PARAM_LATENCY_TARGET_US, "soon");
    assertInvalid(model(4).putParameters(BatchingPolicy.PARAM_DEFAULT_MAX_QUEUE_SIZE,
        ModelParameter.newBuilder().setStringValue("0").build()), BatchingPolicy.PARAM_DEFAULT_MAX_QUEUE_SIZE, "0");
  }

  private static void assertInvalid(ModelConfig.Builder config, String... mentions) {
    assertThatThrownBy(() -> BatchingPolicy.from(config.build()))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
          assertThat(e.getMessage()).contains(mentions);
        });
  }
}
