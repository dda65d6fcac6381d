package io.quiver.batching;

/**
 * What the batching agent does when a duty cycle found nothing to do (after Agrona's IdleStrategy).
 * Called only by the agent thread. The agent is unparked ({@link java.util.concurrent.locks.LockSupport#unpark})
 * whenever a request arrives or an instance becomes idle while it sleeps, so an implementation may
 * park for up to {@code maxParkNanos} without adding latency to those events; {@code maxParkNanos}
 * is the time until the agent's next timer (queue delay, deadline) in real nanoseconds, capped.
 */
public interface AgentIdleStrategy {
  /**
   * @param workCount what the last duty cycle did; positive means "reset the back-off"
   * @param maxParkNanos the longest the agent may sleep; always positive
   */
  void idle(int workCount, long maxParkNanos);

  /** Resets any back-off state. */
  void reset();
}
