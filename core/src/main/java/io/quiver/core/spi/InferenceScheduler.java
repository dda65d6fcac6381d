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

  /**
   * Early, cheap admission, asked before a request's tensors are decoded: would a request of this
   * priority be queued now, and how long would it likely wait? Never blocks, allocates nothing unless it
   * throws. {@link #submit} still decides; this only lets a transport refuse early what submit would
   * refuse anyway, and refuse a request whose deadline would pass in the queue.
   *
   * @param priority the request's priority (0 = the default level), or {@link #UNKNOWN_PRIORITY} when the
   *     transport does not know it yet (then only a condition true of every level refuses)
   * @return the expected queue wait in nanoseconds (0 when none is expected or the scheduler cannot tell)
   * @throws io.quiver.core.InferenceException RESOURCE_EXHAUSTED (with a retry hint) when the queue is
   *     full, UNAVAILABLE when the scheduler is closing
   */
  default long admit(int priority) {
    return 0;
  }

  /** {@link #admit}'s priority when the transport does not know the request's priority yet. */
  int UNKNOWN_PRIORITY = -1;

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
