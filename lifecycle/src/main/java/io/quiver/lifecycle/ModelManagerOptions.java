package io.quiver.lifecycle;

import io.quiver.registry.ModelNames;
import java.util.List;
import java.util.Objects;

/**
 * Settings of a {@link ModelManager}. Immutable; start from {@link #defaults()} and change with the
 * {@code with...} methods.
 *
 * @param controlMode which models load at start
 * @param startupModels the models {@link ControlMode#EXPLICIT} loads at start (and {@link ControlMode#LAZY}
 *     loads at start besides the pinned ones; ignored under NONE)
 * @param loadThreads threads that load model versions in parallel, off the request path
 * @param drainTimeoutMillis how long an unload waits for requests holding a handle to finish before it
 *     closes the scheduler anyway (the scheduler still completes everything it accepted)
 * @param memoryBudgetBytes the most bytes loaded versions may hold together ({@link VersionMemory}); a
 *     load beyond it first evicts the least recently used unpinned models; 0 = no budget
 * @param pinnedModels models never evicted under the budget (and loaded at start in LAZY mode)
 * @param onDemandQueueLimit how many requests may wait for one model's on-demand load; more are refused
 *     with RESOURCE_EXHAUSTED and a retry hint
 * @param loadScheduling how load threads share the CPU with serving while they load ({@link LoadScheduling})
 */
public record ModelManagerOptions(ControlMode controlMode, List<String> startupModels, int loadThreads,
    long drainTimeoutMillis, long memoryBudgetBytes, List<String> pinnedModels, int onDemandQueueLimit,
    LoadScheduling loadScheduling) {
  /** Two loader threads: loads are mostly file reading and native session setup, and the target machines have few cores. */
  public static final int DEFAULT_LOAD_THREADS = 2;
  public static final int MAX_LOAD_THREADS = 64;
  public static final long DEFAULT_DRAIN_TIMEOUT_MILLIS = 30_000;
  /** 256 waiting requests per model: a burst of first requests fits, a flood is refused. */
  public static final int DEFAULT_ON_DEMAND_QUEUE_LIMIT = 256;
  public static final int MAX_ON_DEMAND_QUEUE_LIMIT = 1 << 20;

  public ModelManagerOptions {
    Objects.requireNonNull(controlMode, "controlMode");
    Objects.requireNonNull(loadScheduling, "loadScheduling");
    startupModels = List.copyOf(startupModels);
    for (String name : startupModels) {
      ModelNames.requireValid(name);
    }
    pinnedModels = List.copyOf(pinnedModels);
    for (String name : pinnedModels) {
      ModelNames.requireValid(name);
    }
    if (loadThreads < 1 || loadThreads > MAX_LOAD_THREADS) {
      throw new IllegalArgumentException("loadThreads must be between 1 and " + MAX_LOAD_THREADS + "; was " + loadThreads);
    }
    if (drainTimeoutMillis < 0) {
      throw new IllegalArgumentException("drainTimeoutMillis must be >= 0; was " + drainTimeoutMillis);
    }
    if (memoryBudgetBytes < 0) {
      throw new IllegalArgumentException("memoryBudgetBytes must be >= 0 (0 = no budget); was " + memoryBudgetBytes);
    }
    if (onDemandQueueLimit < 1 || onDemandQueueLimit > MAX_ON_DEMAND_QUEUE_LIMIT) {
      throw new IllegalArgumentException("onDemandQueueLimit must be between 1 and " + MAX_ON_DEMAND_QUEUE_LIMIT
          + "; was " + onDemandQueueLimit);
    }
  }

  /** The form without a memory budget, pins or on-demand queue setting. */
  public ModelManagerOptions(ControlMode controlMode, List<String> startupModels, int loadThreads,
      long drainTimeoutMillis) {
    this(controlMode, startupModels, loadThreads, drainTimeoutMillis, 0, List.of(), DEFAULT_ON_DEMAND_QUEUE_LIMIT,
        LoadScheduling.NORMAL);
  }

  /** NONE (load every model), two load threads, 30 s drain timeout, no memory budget. */
  public static ModelManagerOptions defaults() {
    return new ModelManagerOptions(ControlMode.NONE, List.of(), DEFAULT_LOAD_THREADS, DEFAULT_DRAIN_TIMEOUT_MILLIS);
  }

  /** EXPLICIT mode loading only {@code models} at start. */
  public static ModelManagerOptions explicit(String... models) {
    return defaults().withControlMode(ControlMode.EXPLICIT).withStartupModels(List.of(models));
  }

  public ModelManagerOptions withControlMode(ControlMode mode) {
    return new ModelManagerOptions(mode, startupModels, loadThreads, drainTimeoutMillis, memoryBudgetBytes,
        pinnedModels, onDemandQueueLimit, loadScheduling);
  }

  public ModelManagerOptions withStartupModels(List<String> models) {
    return new ModelManagerOptions(controlMode, models, loadThreads, drainTimeoutMillis, memoryBudgetBytes,
        pinnedModels, onDemandQueueLimit, loadScheduling);
  }

  public ModelManagerOptions withLoadThreads(int threads) {
    return new ModelManagerOptions(controlMode, startupModels, threads, drainTimeoutMillis, memoryBudgetBytes,
        pinnedModels, onDemandQueueLimit, loadScheduling);
  }

  public ModelManagerOptions withDrainTimeoutMillis(long millis) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, millis, memoryBudgetBytes, pinnedModels,
        onDemandQueueLimit, loadScheduling);
  }

  /** A memory budget in bytes (0 = none). */
  public ModelManagerOptions withMemoryBudgetBytes(long bytes) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, drainTimeoutMillis, bytes, pinnedModels,
        onDemandQueueLimit, loadScheduling);
  }

  public ModelManagerOptions withPinnedModels(List<String> models) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, drainTimeoutMillis, memoryBudgetBytes,
        models, onDemandQueueLimit, loadScheduling);
  }

  public ModelManagerOptions withOnDemandQueueLimit(int limit) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, drainTimeoutMillis, memoryBudgetBytes,
        pinnedModels, limit, loadScheduling);
  }

  /** How load threads share the CPU with serving while they load. */
  public ModelManagerOptions withLoadScheduling(LoadScheduling scheduling) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, drainTimeoutMillis, memoryBudgetBytes,
        pinnedModels, onDemandQueueLimit, scheduling);
  }
}
