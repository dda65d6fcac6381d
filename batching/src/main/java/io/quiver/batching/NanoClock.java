package io.quiver.batching;

/**
 * A monotonic nanosecond clock in the time base of {@link System#nanoTime()} (the base of
 * {@link io.quiver.core.InferRequest#deadlineNanos()}). Injectable so tests can drive time by hand.
 * Implementations must be thread-safe: producers, the agent and the workers all read it.
 */
@FunctionalInterface
public interface NanoClock {
  /** The system clock. */
  NanoClock SYSTEM = System::nanoTime;

  long nanoTime();
}
