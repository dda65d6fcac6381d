package io.quiver.lifecycle;

import io.quiver.registry.ModelNames;
import java.util.List;
import java.util.Objects;

/**
 * Settings of a {@link ModelManager}. Immutable; start from {@link #defaults()} and change with the
 * {@code with...} methods.
 *
 * @param controlMode which models load at start
 * @param startupModels the models {@link ControlMode#EXPLICIT} loads at start (ignored under NONE)
 * @param loadThreads threads that load model versions in parallel, off the request path
 * @param drainTimeoutMillis how long an unload waits for requests holding a handle to finish before it
 *     closes the scheduler anyway (the scheduler still completes everything it accepted)
 */
public record ModelManagerOptions(ControlMode controlMode, List<String> startupModels, int loadThreads,
    long drainTimeoutMillis) {
  /** Two loader threads: loads are mostly file reading and native session setup, and the target machines have few cores. */
  public static final int DEFAULT_LOAD_THREADS = 2;
  public static final int MAX_LOAD_THREADS = 64;
  public static final long DEFAULT_DRAIN_TIMEOUT_MILLIS = 30_000;

  public ModelManagerOptions {
    Objects.requireNonNull(controlMode, "controlMode");
    startupModels = List.copyOf(startupModels);
    for (String name : startupModels) {
      ModelNames.requireValid(name);
    }
    if (loadThreads < 1 || loadThreads > MAX_LOAD_THREADS) {
      throw new IllegalArgumentException("loadThreads must be between 1 and " + MAX_LOAD_THREADS + "; was " + loadThreads);
    }
    if (drainTimeoutMillis < 0) {
      throw new IllegalArgumentException("drainTimeoutMillis must be >= 0; was " + drainTimeoutMillis);
    }
  }

  /** NONE (load every model), two load threads, 30 s drain timeout. */
  public static ModelManagerOptions defaults() {
    return new ModelManagerOptions(ControlMode.NONE, List.of(), DEFAULT_LOAD_THREADS, DEFAULT_DRAIN_TIMEOUT_MILLIS);
  }

  /** EXPLICIT mode loading only {@code models} at start. */
  public static ModelManagerOptions explicit(String... models) {
    return defaults().withControlMode(ControlMode.EXPLICIT).withStartupModels(List.of(models));
  }

  public ModelManagerOptions withControlMode(ControlMode mode) {
    return new ModelManagerOptions(mode, startupModels, loadThreads, drainTimeoutMillis);
  }

  public ModelManagerOptions withStartupModels(List<String> models) {
    return new ModelManagerOptions(controlMode, models, loadThreads, drainTimeoutMillis);
  }

  public ModelManagerOptions withLoadThreads(int threads) {
    return new ModelManagerOptions(controlMode, startupModels, threads, drainTimeoutMillis);
  }

  public ModelManagerOptions withDrainTimeoutMillis(long millis) {
    return new ModelManagerOptions(controlMode, startupModels, loadThreads, millis);
  }
}
