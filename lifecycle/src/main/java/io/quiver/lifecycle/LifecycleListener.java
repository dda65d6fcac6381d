package io.quiver.lifecycle;

/**
 * Told what the lifecycle does on its own (loads on demand, evictions), for metrics. Called on
 * lifecycle threads; implementations must be quick, thread-safe and must not call back into the
 * manager's control methods. Every method has an empty default.
 */
public interface LifecycleListener {
  LifecycleListener NONE = new LifecycleListener() {};

  /** Why a model left memory without an operator asking. */
  enum EvictionCause {
    /** To make room under the memory budget for another model being loaded. */
    MEMORY_BUDGET,
    /** A version measured more than estimated once loaded, so the total went over the budget. */
    OVER_BUDGET_AFTER_LOAD;

    /** The label form, e.g. "memory_budget". */
    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * A load started by requests finished.
   *
   * @param nanos how long the load took
   * @param coldStartNanos from the first request parked for the model to the load's end
   * @param waiters requests that were waiting for it
   */
  default void loadedOnDemand(String model, boolean ok, long nanos, long coldStartNanos, int waiters) {}

  /** A model was evicted; {@code bytes} is what its versions held. */
  default void evicted(String model, long bytes, EvictionCause cause) {}

  /** A parked request left its queue: "served", "timeout", "failed", "cancelled" or "rejected" (queue full). */
  default void waitEnded(String model, String outcome) {}
}
