package io.quiver.core.spi;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceStats;

/**
 * Takes requests for one model version and runs them, batched or not, on that version's runner
 * instances. Thread-safe: any number of transport threads submit concurrently.
 */
public interface InferenceScheduler extends AutoCloseable {
  /**
   * Accepts a request or rejects it at once; never blocks the caller.
   *
   * <p>Either throws (and the request's callback is never called), or returns (and the callback is
   * called exactly once, later or already).
   *
   * @throws io.quiver.core.InferenceException UNAVAILABLE or RESOURCE_EXHAUSTED (with a retry hint)
   *     when the queue is full or the scheduler is closed; INVALID_ARGUMENT when the request can
   *     never be scheduled (batch over max_batch_size, unknown priority level)
   */
  void submit(InferRequest request);

  /** Requests accepted but not yet started. */
  int queuedRequests();

  /** Requests accepted and not yet completed (queued or running). */
  int inFlightRequests();

  InferenceStats stats();

  /**
   * Stops accepting requests, runs or fails everything already accepted (none is left without an
   * answer), and waits for the runners to go idle. Does not close the runners. Idempotent.
   */
  @Override
  void close();
}
