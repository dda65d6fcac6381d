package io.quiver.core.spi;

import java.util.concurrent.Executor;

/**
 * The transport thread a request arrived on (a Netty event loop): where its answer is delivered, and
 * where a scheduler may run short work and timers without waking another thread.
 *
 * <p>A scheduler hands a whole batch's answers for one transport thread to it as a single
 * {@link #execute} task, so the transport writes them with one flush per connection: one wake-up per
 * batch instead of one per response. A request with no transport executor (in-process callers, batch
 * jobs, tests) is answered on whichever thread finishes it.
 *
 * <p>Implementations are thread-safe; {@link #execute} never blocks, may run the task later on the
 * transport thread even when called from it (after the work that thread is doing now), and throws
 * {@link java.util.concurrent.RejectedExecutionException} once the transport has shut down.
 */
public interface TransportExecutor extends Executor {
  /** True when the calling thread is this transport thread. */
  boolean inTransportThread();

  /**
   * Runs {@code task} on the transport thread after {@code delayNanos}, at the earliest.
   *
   * @throws java.util.concurrent.RejectedExecutionException once the transport has shut down
   */
  void schedule(Runnable task, long delayNanos);
}
