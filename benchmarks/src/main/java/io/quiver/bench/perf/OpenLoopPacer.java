package io.quiver.bench.perf;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * Paces an open-loop sender along an {@link ArrivalSchedule}: at each wake-up it hands out every
 * send whose intended time has come, in one burst, and says when to wake next. One wake-up serves
 * all requests that fell due since the last one (no timer task per request), and the intended time
 * handed with each send is the schedule's, so latency measured from it stays corrected for
 * coordinated omission however late the send is.
 *
 * <p>It also tracks whether the sender keeps up: the <em>frontier</em> (intended time of the next
 * unsent request) is published after each burst, so another thread can see how far the schedule
 * advanced in a window and how far behind it the sender is ({@link #lagNanos}).
 *
 * <p>Not thread-safe: one sender thread calls everything except {@link #publishedFrontierNanos} and
 * {@link #lagNanos}, which any thread may call. Times are {@code System.nanoTime()} values passed in
 * by the caller (a fake clock in tests). Allocates nothing after construction.
 */
final class OpenLoopPacer {
  private final ArrivalSchedule schedule;
  private long origin;
  private long nextIntended;
  /** {@link #nextIntended} as last published for other threads. */
  private final AtomicLong frontier = new AtomicLong();

  /** @param originNanos the schedule's time zero */
  OpenLoopPacer(ArrivalSchedule schedule, long originNanos) {
    this.schedule = schedule;
    this.origin = originNanos;
    this.nextIntended = originNanos + schedule.nextOffsetNanos();
    frontier.set(nextIntended);
  }

  /** Intended time of the next unsent request: when the sender should wake next. */
  long nextIntendedNanos() {
    return nextIntended;
  }

  boolean isDue(long nowNanos) {
    return nextIntended <= nowNanos;
  }

  /** Consumes the next request of the schedule and returns its intended time. */
  long take() {
    long intended = nextIntended;
    nextIntended = origin + schedule.nextOffsetNanos();
    return intended;
  }

  /**
   * Hands every request due at {@code nowNanos} to {@code send} (its intended time as argument), at
   * most {@code max} of them, then publishes the frontier.
   *
   * @return how many were handed out
   */
  int sendDue(long nowNanos, int max, LongConsumer send) {
    int n = 0;
    while (n < max && nextIntended <= nowNanos) {
      send.accept(take());
      n++;
    }
    publish();
    return n;
  }

  /** Makes the frontier visible to other threads. */
  void publish() {
    frontier.lazySet(nextIntended); // ordered store: readers only need a recent value, not a fence per burst
  }

  /**
   * Restarts the schedule at {@code nowNanos} when the sender is behind it: every unsent request
   * moves later by the lag, so a backlog left by the warm-up (a cold client JIT, say) is not carried
   * into the measured windows. Requests already sent keep their intended times.
   *
   * @return the lag dropped, in nanoseconds (0 when the sender was on time)
   */
  long rebase(long nowNanos) {
    long lag = nowNanos - nextIntended;
    if (lag <= 0) {
      return 0;
    }
    origin += lag;
    nextIntended += lag;
    publish();
    return lag;
  }

  /** The frontier as last published: intended time of the next unsent request. Any thread. */
  long publishedFrontierNanos() {
    return frontier.get();
  }

  /** How far the sender is behind its schedule at {@code nowNanos} (0 when on time). Any thread. */
  long lagNanos(long nowNanos) {
    return Math.max(0, nowNanos - frontier.get());
  }
}
