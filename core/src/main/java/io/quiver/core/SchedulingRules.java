package io.quiver.core;

import io.quiver.core.runtime.ModelParameters;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelQueuePolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The one home of the rules for the scheduling part of a model config: {@code max_batch_size},
 * {@code dynamic_batching} (preferred sizes, queue delay, priority levels, queue policies) and Quiver's
 * scheduling parameters ({@code quiver.*}). The config validator lists these problems beside the
 * others at load; the batcher reads its policy through the same rules, so the two cannot disagree.
 * Stateless, thread-safe.
 */
public final class SchedulingRules {
  /**
   * Queue bound, in requests per priority level, used when {@code max_queue_size} is 0 (Triton's
   * "unbounded"): every queue is bounded. 4096 requests at a few KiB each is a few MiB per model.
   */
  public static final int DEFAULT_MAX_QUEUE_SIZE = 4096;
  /** Hard ceiling on any queue bound (also on {@link #PARAM_DEFAULT_MAX_QUEUE_SIZE}), in requests per level. */
  public static final int MAX_QUEUE_SIZE_LIMIT = 1 << 20;
  /**
   * Most priority levels: the batcher keeps one bounded queue per level, allocated at load, so the
   * bound keeps a model's queues small.
   */
  public static final int MAX_PRIORITY_LEVELS = 64;

  /** Config {@code parameters} key that replaces {@link #DEFAULT_MAX_QUEUE_SIZE}. */
  public static final String PARAM_DEFAULT_MAX_QUEUE_SIZE = "quiver.default_max_queue_size";
  /**
   * Queue bound of the background level ({@link InferRequest#BACKGROUND_PRIORITY}, batch jobs), in
   * requests, when the config does not set {@link #PARAM_BACKGROUND_MAX_QUEUE_SIZE}: a share of its own,
   * so background work can never take the room of online requests.
   */
  public static final int DEFAULT_BACKGROUND_MAX_QUEUE_SIZE = 1024;
  /** Config {@code parameters} key that replaces {@link #DEFAULT_BACKGROUND_MAX_QUEUE_SIZE}. */
  public static final String PARAM_BACKGROUND_MAX_QUEUE_SIZE = "quiver.background_max_queue_size";
  /** Config {@code parameters} key of the optional p99 latency target, in microseconds. */
  public static final String PARAM_LATENCY_TARGET_US = "quiver.latency_target_us";
  /**
   * Config {@code parameters} key: the longest predicted batch cost, in microseconds, that may run on the
   * transport thread that formed it (0 = never); absent = the server's default.
   */
  public static final String PARAM_INLINE_MAX_US = "quiver.inline_max_us";
  /**
   * Config {@code parameters} key, "true" (default) or "false": whether the queue delay is skipped while
   * waiting keeps gaining no partners.
   */
  public static final String PARAM_ADAPTIVE_QUEUE_DELAY = "quiver.adaptive_queue_delay";
  /** Longest inline bound a model may ask for, in microseconds. */
  public static final int MAX_INLINE_MAX_US = 1_000_000;

  private SchedulingRules() {}

  /** Every problem of the scheduling part of the config, in field order; empty when it is valid. */
  public static List<String> problems(ModelConfig config) {
    List<String> out = new ArrayList<>();
    int maxBatch = config.getMaxBatchSize();
    if (maxBatch < 0) {
      out.add("max_batch_size must be >= 0; was " + maxBatch);
    }
    if (config.hasDynamicBatching()) {
      checkDynamicBatching(config.getDynamicBatching(), maxBatch, out);
    }
    checkParameter(out, () -> defaultMaxQueueSize(config));
    checkParameter(out, () -> backgroundMaxQueueSize(config));
    checkParameter(out, () -> latencyTargetMicros(config));
    checkParameter(out, () -> inlineMaxMicros(config));
    checkParameter(out, () -> adaptiveQueueDelay(config));
    return out;
  }

  /**
   * Throws when {@link #problems} finds any: for readers of a config that did not come through the
   * validator (every loaded config did).
   *
   * @throws InferenceException INVALID_ARGUMENT listing every problem
   */
  public static void check(ModelConfig config) {
    List<String> problems = problems(config);
    if (!problems.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': %s", config.getName(), String.join("; ", problems));
    }
  }

  /** {@value #PARAM_DEFAULT_MAX_QUEUE_SIZE}, or {@link #DEFAULT_MAX_QUEUE_SIZE} when absent. */
  public static int defaultMaxQueueSize(ModelConfig config) {
    return ModelParameters.intValue(config, PARAM_DEFAULT_MAX_QUEUE_SIZE, DEFAULT_MAX_QUEUE_SIZE, 1, MAX_QUEUE_SIZE_LIMIT);
  }

  /** {@value #PARAM_BACKGROUND_MAX_QUEUE_SIZE}, or {@link #DEFAULT_BACKGROUND_MAX_QUEUE_SIZE} when absent. */
  public static int backgroundMaxQueueSize(ModelConfig config) {
    return ModelParameters.intValue(config, PARAM_BACKGROUND_MAX_QUEUE_SIZE, DEFAULT_BACKGROUND_MAX_QUEUE_SIZE, 1,
        MAX_QUEUE_SIZE_LIMIT);
  }

  /** {@value #PARAM_LATENCY_TARGET_US}, or 0 (no target) when absent. */
  public static long latencyTargetMicros(ModelConfig config) {
    return ModelParameters.intValue(config, PARAM_LATENCY_TARGET_US, 0, 1, Integer.MAX_VALUE);
  }

  /** {@value #PARAM_INLINE_MAX_US}, or -1 (the server's default) when absent. */
  public static long inlineMaxMicros(ModelConfig config) {
    return ModelParameters.intValue(config, PARAM_INLINE_MAX_US, -1, 0, MAX_INLINE_MAX_US);
  }

  /** {@value #PARAM_ADAPTIVE_QUEUE_DELAY}, true when absent. */
  public static boolean adaptiveQueueDelay(ModelConfig config) {
    Boolean value = ModelParameters.boolValue(config, PARAM_ADAPTIVE_QUEUE_DELAY);
    return value == null || value;
  }

  /** The bound of a queue policy: its {@code max_queue_size}, or the model's default bound for 0. */
  public static int queueBound(ModelQueuePolicy policy, int defaultBound) {
    return policy.getMaxQueueSize() == 0 ? defaultBound : policy.getMaxQueueSize();
  }

  private static void checkDynamicBatching(ModelDynamicBatching batching, int maxBatch, List<String> out) {
    if (maxBatch == 0) {
      out.add("dynamic_batching requires max_batch_size > 0; was 0");
    }
    for (int size : batching.getPreferredBatchSizeList()) {
      if (size < 1 || (maxBatch > 0 && size > maxBatch)) {
        out.add("dynamic_batching.preferred_batch_size must be in [1, max_batch_size=" + maxBatch + "]; was " + size);
      }
    }
    long delay = batching.getMaxQueueDelayMicroseconds();
    if (delay < 0 || delay > Long.MAX_VALUE / 1000) { // uint64 on the wire
      out.add("dynamic_batching.max_queue_delay_microseconds is out of range; was " + Long.toUnsignedString(delay));
    }
    long levels = batching.getPriorityLevels();
    long defaultLevel = batching.getDefaultPriorityLevel();
    // uint64 fields arrive as signed longs: compare unsigned so that a huge value is not read as negative.
    if (Long.compareUnsigned(levels, MAX_PRIORITY_LEVELS) > 0) {
      out.add("dynamic_batching.priority_levels must be in [0, " + MAX_PRIORITY_LEVELS + "]; was "
          + Long.toUnsignedString(levels));
    } else if (levels == 0 && defaultLevel != 0) {
      out.add("dynamic_batching.default_priority_level must be 0 when priority_levels is 0; was "
          + Long.toUnsignedString(defaultLevel));
    } else if (levels > 0 && (defaultLevel < 1 || Long.compareUnsigned(defaultLevel, levels) > 0)) {
      out.add("dynamic_batching.default_priority_level must be in [1, priority_levels=" + levels + "]; was "
          + Long.toUnsignedString(defaultLevel));
    }
    checkQueuePolicy("dynamic_batching.default_queue_policy", batching.getDefaultQueuePolicy(), out);
    for (Map.Entry<Long, ModelQueuePolicy> e : batching.getPriorityQueuePolicyMap().entrySet()) {
      long level = e.getKey();
      if (level < 1 || Long.compareUnsigned(level, levels) > 0) {
        out.add("dynamic_batching.priority_queue_policy key must be in [1, priority_levels=" + Long.toUnsignedString(levels)
            + "]; was " + Long.toUnsignedString(level));
      }
      checkQueuePolicy("dynamic_batching.priority_queue_policy[" + Long.toUnsignedString(level) + "]", e.getValue(), out);
    }
  }

  private static void checkQueuePolicy(String field, ModelQueuePolicy policy, List<String> out) {
    int bound = policy.getMaxQueueSize();
    if (bound < 0 || bound > MAX_QUEUE_SIZE_LIMIT) { // uint32 on the wire
      out.add(field + ".max_queue_size must be in [0, " + MAX_QUEUE_SIZE_LIMIT + "]; was " + Integer.toUnsignedString(bound));
    }
    long timeout = policy.getDefaultTimeoutMicroseconds();
    if (timeout < 0 || timeout > Long.MAX_VALUE / 1000) {
      out.add(field + ".default_timeout_microseconds is out of range; was " + Long.toUnsignedString(timeout));
    }
  }

  private interface Read {
    void run();
  }

  private static void checkParameter(List<String> out, Read read) {
    try {
      read.run();
    } catch (InferenceException e) {
      out.add(e.getMessage());
    }
  }
}
