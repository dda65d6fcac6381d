package io.quiver.core.spi;

/**
 * A scheduler that wraps another one (a response cache, an admission limit) and forwards what it
 * does not answer itself. Lets a caller find a particular scheduler behind its decorators with
 * {@link #find}.
 */
public interface SchedulerDecorator {
  /** The wrapped scheduler. */
  InferenceScheduler inner();

  /** {@code scheduler} itself or the first scheduler of {@code type} behind its decorators; null when none is. */
  static <T> T find(InferenceScheduler scheduler, Class<T> type) {
    InferenceScheduler current = scheduler;
    for (int depth = 0; current != null && depth < 16; depth++) { // decorators nest a few deep, never in a loop
      if (type.isInstance(current)) {
        return type.cast(current);
      }
      current = current instanceof SchedulerDecorator d ? d.inner() : null;
    }
    return null;
  }
}
