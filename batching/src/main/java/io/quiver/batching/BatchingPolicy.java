package io.quiver.batching;

import io.quiver.core.InferenceException;
import io.quiver.core.SchedulingRules;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelQueuePolicy;
import java.util.Arrays;
import java.util.Map;

/**
 * The scheduling policy of one model version, read once from its config with Triton's meaning and
 * validated; immutable and thread-safe.
 *
 * <p>A model without {@code dynamic_batching} (or with {@code max_batch_size} 0) gets a policy that
 * forms batches of exactly one request, one priority level, the default queue bound and no timeout.
 */
public final class BatchingPolicy {
  /** {@link SchedulingRules#DEFAULT_MAX_QUEUE_SIZE}. */
  public static final int DEFAULT_MAX_QUEUE_SIZE = SchedulingRules.DEFAULT_MAX_QUEUE_SIZE;
  /** {@link SchedulingRules#MAX_QUEUE_SIZE_LIMIT}. */
  public static final int MAX_QUEUE_SIZE_LIMIT = SchedulingRules.MAX_QUEUE_SIZE_LIMIT;
  /** {@link SchedulingRules#PARAM_DEFAULT_MAX_QUEUE_SIZE}. */
  public static final String PARAM_DEFAULT_MAX_QUEUE_SIZE = SchedulingRules.PARAM_DEFAULT_MAX_QUEUE_SIZE;
  /** {@link SchedulingRules#PARAM_LATENCY_TARGET_US}. */
  public static final String PARAM_LATENCY_TARGET_US = SchedulingRules.PARAM_LATENCY_TARGET_US;
  /** {@link SchedulingRules#PARAM_INLINE_MAX_US}. */
  public static final String PARAM_INLINE_MAX_US = SchedulingRules.PARAM_INLINE_MAX_US;
  /** {@link SchedulingRules#PARAM_ADAPTIVE_QUEUE_DELAY}. */
  public static final String PARAM_ADAPTIVE_QUEUE_DELAY = SchedulingRules.PARAM_ADAPTIVE_QUEUE_DELAY;
  /** {@link SchedulingRules#DEFAULT_BACKGROUND_MAX_QUEUE_SIZE}. */
  public static final int DEFAULT_BACKGROUND_MAX_QUEUE_SIZE = SchedulingRules.DEFAULT_BACKGROUND_MAX_QUEUE_SIZE;
  /** {@link SchedulingRules#PARAM_BACKGROUND_MAX_QUEUE_SIZE}. */
  public static final String PARAM_BACKGROUND_MAX_QUEUE_SIZE = SchedulingRules.PARAM_BACKGROUND_MAX_QUEUE_SIZE;

  /** Queue policy of one priority level. */
  public record LevelPolicy(int maxQueueSize, long defaultTimeoutNanos, boolean allowTimeoutOverride,
      boolean delayOnTimeout) {}

  private final boolean dynamicBatching;
  private final int maxBatchSize;
  private final int maxBatchRows;
  private final int[] preferredBatchSizes;
  private final long maxQueueDelayNanos;
  private final boolean preserveOrdering;
  private final int priorityLevels;
  private final boolean honoursPriority;
  private final int defaultPriorityLevel;
  private final LevelPolicy[] levels; // the configured levels, then the background level last
  private final long latencyTargetNanos;
  private final long inlineMaxNanos;
  private final boolean adaptiveQueueDelay;

  private BatchingPolicy(boolean dynamicBatching, int maxBatchSize, int[] preferredBatchSizes,
      long maxQueueDelayNanos, boolean preserveOrdering, int priorityLevels, int defaultPriorityLevel,
      LevelPolicy[] configured, int backgroundBound, long latencyTargetNanos, boolean explicitLevels,
      long inlineMaxNanos, boolean adaptiveQueueDelay) {
    this.inlineMaxNanos = inlineMaxNanos;
    this.adaptiveQueueDelay = adaptiveQueueDelay;
    this.dynamicBatching = dynamicBatching;
    this.maxBatchSize = maxBatchSize;
    this.maxBatchRows = Math.max(1, maxBatchSize);
    this.preferredBatchSizes = preferredBatchSizes;
    this.maxQueueDelayNanos = maxQueueDelayNanos;
    this.preserveOrdering = preserveOrdering;
    this.priorityLevels = priorityLevels;
    this.honoursPriority = explicitLevels;
    this.defaultPriorityLevel = defaultPriorityLevel;
    this.levels = Arrays.copyOf(configured, configured.length + 1);
    // Background work waits as long as it must (no timeout) and is never delayed behind itself.
    this.levels[configured.length] = new LevelPolicy(backgroundBound, 0L, false, false);
    this.latencyTargetNanos = latencyTargetNanos;
  }

  /**
   * Reads the policy of {@code config} through {@link SchedulingRules}, the rules the config validator
   * applied at load (so a loaded config never fails here; a config that skipped the validator is
   * checked by the same rules).
   *
   * @throws InferenceException INVALID_ARGUMENT naming the fields and values at fault
   */
  public static BatchingPolicy from(ModelConfig config) {
    SchedulingRules.check(config);
    int maxBatchSize = config.getMaxBatchSize();
    int defaultBound = SchedulingRules.defaultMaxQueueSize(config);
    long latencyTargetUs = SchedulingRules.latencyTargetMicros(config);
    long inlineMaxUs = SchedulingRules.inlineMaxMicros(config);
    boolean adaptiveDelay = SchedulingRules.adaptiveQueueDelay(config);
    long inlineMaxNanos = inlineMaxUs < 0 ? -1 : inlineMaxUs * 1000L;
    int backgroundBound = SchedulingRules.backgroundMaxQueueSize(config);
    boolean batching = config.hasDynamicBatching() && maxBatchSize > 0;
    if (!config.hasDynamicBatching()) {
      LevelPolicy level = new LevelPolicy(defaultBound, 0L, false, false);
      return new BatchingPolicy(false, maxBatchSize, new int[0], 0L, false, 1, 1, new LevelPolicy[] {level},
          backgroundBound, latencyTargetUs * 1000L, false, inlineMaxNanos, false);
    }
    ModelDynamicBatching db = config.getDynamicBatching();
    int[] preferred = db.getPreferredBatchSizeList().stream().mapToInt(Integer::intValue).sorted().distinct().toArray();
    long levelsRaw = db.getPriorityLevels();
    int priorityLevels = (int) Math.max(1, levelsRaw);
    int defaultLevel = levelsRaw > 0 ? (int) db.getDefaultPriorityLevel() : 1;
    LevelPolicy defaultPolicy = levelPolicy(db.getDefaultQueuePolicy(), defaultBound);
    LevelPolicy[] levels = new LevelPolicy[priorityLevels];
    Arrays.fill(levels, defaultPolicy);
    for (Map.Entry<Long, ModelQueuePolicy> e : db.getPriorityQueuePolicyMap().entrySet()) {
      levels[e.getKey().intValue() - 1] = levelPolicy(e.getValue(), defaultBound);
    }
    return new BatchingPolicy(batching, maxBatchSize, batching ? preferred : new int[0],
        batching ? db.getMaxQueueDelayMicroseconds() * 1000L : 0L, db.getPreserveOrdering(), priorityLevels, defaultLevel,
        levels, backgroundBound, latencyTargetUs * 1000L, levelsRaw > 0, inlineMaxNanos, adaptiveDelay);
  }

  private static LevelPolicy levelPolicy(ModelQueuePolicy p, int defaultBound) {
    return new LevelPolicy(SchedulingRules.queueBound(p, defaultBound), p.getDefaultTimeoutMicroseconds() * 1000L,
        p.getAllowTimeoutOverride(), p.getTimeoutAction() == ModelQueuePolicy.TimeoutAction.DELAY);
  }

  /** True when requests may share a batch (dynamic_batching present and max_batch_size > 0). */
  public boolean dynamicBatching() {
    return dynamicBatching;
  }

  /** The config's max_batch_size: 0 when the model has no batch dimension. */
  public int maxBatchSize() {
    return maxBatchSize;
  }

  /** Largest batch in rows: max_batch_size, or 1 for a model without a batch dimension. */
  public int maxBatchRows() {
    return maxBatchRows;
  }

  /** Sorted, distinct; empty when none. Callers must not modify the array. */
  public int[] preferredBatchSizes() {
    return preferredBatchSizes;
  }

  public long maxQueueDelayNanos() {
    return maxQueueDelayNanos;
  }

  public boolean preserveOrdering() {
    return preserveOrdering;
  }

  /** Number of priority levels, at least 1; level 1 is served first. */
  public int priorityLevels() {
    return priorityLevels;
  }

  /**
   * The 1-based level of background requests ({@code InferRequest.BACKGROUND_PRIORITY}):
   * {@code priorityLevels() + 1}, below every configured level. Every batcher has it.
   */
  public int backgroundLevel() {
    return priorityLevels + 1;
  }

  /** Queues a batcher keeps: the configured levels plus the background level. */
  public int queueLevels() {
    return priorityLevels + 1;
  }

  /**
   * False when the config sets no priority_levels: then, as in Triton, a request's priority is
   * ignored; true when requests' priorities are checked against {@link #priorityLevels()}.
   */
  public boolean honoursPriority() {
    return honoursPriority;
  }

  public int defaultPriorityLevel() {
    return defaultPriorityLevel;
  }

  /** Queue policy of {@code level} (1-based; {@link #backgroundLevel()} included). */
  public LevelPolicy level(int level) {
    return levels[level - 1];
  }

  /** The model's own inline bound in nanoseconds (0 = never inline), or -1 to use the server's default. */
  public long inlineMaxNanos() {
    return inlineMaxNanos;
  }

  /** Whether the queue delay is skipped while waiting keeps gaining no partners. */
  public boolean adaptiveQueueDelay() {
    return adaptiveQueueDelay;
  }

  /** The p99 latency target in nanoseconds, or 0 when the model has none. */
  public long latencyTargetNanos() {
    return latencyTargetNanos;
  }
}
