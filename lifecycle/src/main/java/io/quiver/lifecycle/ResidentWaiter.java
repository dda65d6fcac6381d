package io.quiver.lifecycle;

import io.quiver.core.InferenceException;

/**
 * A request parked by {@link ModelManager#awaitResident} until its model is loaded on demand. Exactly
 * one of the two methods is called, once, on a lifecycle thread ({@code quiver-ondemand-N} when the
 * load finishes, {@code quiver-ondemand-timer} when the deadline passes first, or the closing thread
 * at shutdown). Implementations must not block.
 */
public interface ResidentWaiter {
  /**
   * The model is resident: {@code version} has been acquired on the request's behalf (so no eviction
   * can close it before the request is submitted); the implementation owns the hold and must call
   * {@link LoadedVersion#release()} exactly once, as after {@link ModelManager#acquire}.
   */
  void resident(LoadedVersion version);

  /**
   * The request cannot be served: DEADLINE_EXCEEDED when its deadline passed while it waited, the
   * load's failure (UNAVAILABLE naming the reason, NOT_FOUND, RESOURCE_EXHAUSTED with a retry hint
   * when the memory budget had no room), UNAVAILABLE at shutdown, CANCELLED when {@link #isCancelled()}.
   */
  void failed(InferenceException error);

  /** Whether the caller gave up meanwhile; such a request is failed with CANCELLED instead of submitted. */
  default boolean isCancelled() {
    return false;
  }
}
