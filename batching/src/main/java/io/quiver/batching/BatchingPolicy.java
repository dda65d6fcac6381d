package io.quiver.batching;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import io.quiver.proto.inference.ModelParameter;
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
  /**
   * Queue bound, in requests per priority level, used when {@code max_queue_size} is 0 (Triton's
   * "unbounded"): we bound every queue. 4096 requests at a few KiB each is a few MiB per model.
   */
  public static final int DEFAULT_MAX_QUEUE_SIZE = 4096;

  /** Hard ceiling on any queue bound (also on the parameter below), in requests per level. */
  public static final int MAX_QUEUE_SIZE_LIMIT = 1 << 20;

  /** Config {@code parameters} key that replaces {@link #DEFAULT_MAX_QUEUE_SIZE}. */
  public static final String PARAM_DEFAULT_MAX_QUEUE_SIZE = "quiver.default_max_queue_size";

  /**
   * Queue bound of the background level ({@link io.quiver.core.InferRequest#BACKGROUND_PRIORITY}, batch
   * jobs), in requests, when the config does not set {@link #PARAM_BACKGROUND_MAX_QUEUE_SIZE}: a share
   * of its own, so background work can never take the room of online requests.
   */
  public static final int DEFAULT_BACKGROUND_MAX_QUEUE_SIZE = 1024;

  /** Config {@code parameters} key that replaces {@link #DEFAULT_BACKGROUND_MAX_QUEUE_SIZE}. */
  public static final String PARAM_BACKGROUND_MAX_QUEUE_SIZE = "quiver.background_max_queue_size";

  /** Config {@code parameters} key of the optional p99 latency target, in microseconds. */
  public static final String PARAM_LATENCY_TARGET_US = "quiver.latency_target_us";

  /**
   * Config {@code parameters} key: the longest predicted batch cost, in microseconds, that may run on
   * the transport thread that formed it (0 = never); absent = the server's default.
   */
  public static final String PARAM_INLINE_MAX_US = "quiver.inline_max_us";

  /**
   * Config {@code parameters} key, "true" (default) or "false": whether the queue delay is skipped while
   * waiting keeps gaining no partners (see docs/batching.md, "Adaptive queue delay").
   */
  public static final String PARAM_ADAPTIVE_QUEUE_DELAY = "quiver.adaptive_queue_delay";

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
   * Reads and validates the policy of {@code config}.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field and value at fault
   */
  public static BatchingPolicy from(ModelConfig config) {
    String model = config.getName();
    int maxBatchSize = config.getMaxBatchSize();
    if (maxBatchSize < 0) {
      throw InferenceException.invalidArgument("model '%s': max_batch_size must be >= 0; was %d", model, maxBatchSize);
    }
    Map<String, ModelParameter> params = config.getParametersMap();
    int defaultBound = intParam(model, params, PARAM_DEFAULT_MAX_QUEUE_SIZE, DEFAULT_MAX_QUEUE_SIZE, 1, MAX_QUEUE_SIZE_LIMIT);
    long latencyTargetUs = intParam(model, params, PARAM_LATENCY_TARGET_US, 0, 1, Integer.MAX_VALUE);
    long inlineMaxUs = params.containsKey(PARAM_INLINE_MAX_US)
        ? intParam(model, params, PARAM_INLINE_MAX_US, 0, 0, 1_000_000) : -1;
    boolean adaptiveDelay = boolParam(model, params, PARAM_ADAPTIVE_QUEUE_DELAY, true);
    long inlineMaxNanos = inlineMaxUs < 0 ? -1 : inlineMaxUs * 1000L;
    int backgroundBound = intParam(model, params, PARAM_BACKGROUND_MAX_QUEUE_SIZE, DEFAULT_BACKGROUND_MAX_QUEUE_SIZE, 1,
        MAX_QUEUE_SIZE_LIMIT);
    boolean batching = config.hasDynamicBatching() && maxBatchSize > 0;
    if (!config.hasDynamicBatching()) {
      LevelPolicy level = new LevelPolicy(defaultBound, 0L, false, false);
      return new BatchingPolicy(false, maxBatchSize, new int[0], 0L, false, 1, 1, new LevelPolicy[] {level},
          backgroundBound, latencyTargetUs * 1000L, false, inlineMaxNanos, false);
    }
    ModelDynamicBatching db = config.getDynamicBatching();
    int[] preferred = new int[db.getPreferredBatchSizeCount()];
    for (int i = 0; i < preferred.length; i++) {
      int size = db.getPreferredBatchSize(i);
      if (size < 1 || size > Math.max(1, maxBatchSize)) {
        throw InferenceException.invalidArgument(
            "model '%s': dynamic_batching.preferred_batch_size must be in [1, max_batch_size=%d]; was %d",
            model, maxBatchSize, size);
      }
      preferred[i] = size;
    }
    preferred = Arrays.stream(preferred).sorted().distinct().toArray();
    long delayUs = db.getMaxQueueDelayMicroseconds();
    if (delayUs < 0 || delayUs > Long.MAX_VALUE / 1000) {
      throw InferenceException.invalidArgument(
          "model '%s': dynamic_batching.max_queue_delay_microseconds out of range; was %s", model, Long.toUnsignedString(delayUs));
    }
    long levelsRaw = db.getPriorityLevels();
    if (levelsRaw < 0 || levelsRaw > 64) {
      throw InferenceException.invalidArgument("model '%s': dynamic_batching.priority_levels must be in [0, 64]; was %s",
          model, Long.toUnsignedString(levelsRaw));
    }
    int priorityLevels = (int) Math.max(1, levelsRaw);
    int defaultLevel = 1;
    if (levelsRaw > 0) {
      long d = db.getDefaultPriorityLevel();
      if (d < 1 || d > levelsRaw) {
        throw InferenceException.invalidArgument(
            "model '%s': dynamic_batching.default_priority_level must be in [1, priority_levels=%d]; was %s",
            model, levelsRaw, Long.toUnsignedString(d));
      }
      defaultLevel = (int) d;
    }
    LevelPolicy defaultPolicy = levelPolicy(model, "default_queue_policy", db.getDefaultQueuePolicy(), defaultBound);
    LevelPolicy[] levels = new LevelPolicy[priorityLevels];
    Arrays.fill(levels, defaultPolicy);
    for (Map.Entry<Long, ModelQueuePolicy> e : db.getPriorityQueuePolicyMap().entrySet()) {
      long level = e.getKey();
      if (levelsRaw == 0 || level < 1 || level > levelsRaw) {
        throw InferenceException.invalidArgument(
            "model '%s': dynamic_batching.priority_queue_policy key must be in [1, priority_levels=%d]; was %s",
            model, levelsRaw, Long.toUnsignedString(level));
      }
      levels[(int) level - 1] = levelPolicy(model, "priority_queue_policy[" + level + "]", e.getValue(), defaultBound);
    }
    return new BatchingPolicy(batching, maxBatchSize, batching ? preferred : new int[0],
        batching ? delayUs * 1000L : 0L, db.getPreserveOrdering(), priorityLevels, defaultLevel, levels,
        backgroundBound, latencyTargetUs * 1000L, levelsRaw > 0, inlineMaxNanos, adaptiveDelay);
  }

  private static LevelPolicy levelPolicy(String model, String field, ModelQueuePolicy p, int defaultBound) {
    int bound = p.getMaxQueueSize();
    if (bound < 0 || bound > MAX_QUEUE_SIZE_LIMIT) {
      throw InferenceException.invalidArgument("model '%s': %s.max_queue_size must be in [0, %d]; was %s",
          model, field, MAX_QUEUE_SIZE_LIMIT, Integer.toUnsignedString(bound));
    }
    long timeoutUs = p.getDefaultTimeoutMicroseconds();
    if (timeoutUs < 0 || timeoutUs > Long.MAX_VALUE / 1000) {
      throw InferenceException.invalidArgument("model '%s': %s.default_timeout_microseconds out of range; was %s",
          model, field, Long.toUnsignedString(timeoutUs));
    }
    boolean delay = p.getTimeoutAction() == ModelQueuePolicy.TimeoutAction.DELAY;
    return new LevelPolicy(bound == 0 ? defaultBound : bound, timeoutUs * 1000L, p.getAllowTimeoutOverride(), delay);
  }

  private static boolean boolParam(String model, Map<String, ModelParameter> params, String key, boolean dflt) {
    ModelParameter p = params.get(key);
    if (p == null) {
      return dflt;
    }
    String text = p.getStringValue().trim();
    if (text.equalsIgnoreCase("true")) {
      return true;
    }
    if (text.equalsIgnoreCase("false")) {
      return false;
    }
    throw InferenceException.invalidArgument("model '%s': parameter '%s' must be true or false; was '%s'", model, key, text);
  }

  private static int intParam(String model, Map<String, ModelParameter> params, String key, int dflt, int min, int max) {
    ModelParameter p = params.get(key);
    if (p == null) {
      return dflt;
    }
    String text = p.getStringValue().trim();
    long value;
    try {
      value = Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw InferenceException.invalidArgument("model '%s': parameter '%s' must be an integer; was '%s'", model, key, text);
    }
    if (value < min || value > max) {
      throw InferenceException.invalidArgument("model '%s': parameter '%s' must be in [%d, %d]; was %d",
          model, key, min, max, value);
    }
    return (int) value;
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
