package io.quiver.transport;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;

/**
 * At most one WARN line per interval for one kind of event that a client can cause at will (malformed
 * messages, refused connections): the lines that are held back are counted and the count goes out with
 * the next line, so a flood costs a few log lines a second, never one per event. Thread-safe, lock-free.
 */
public final class RateLimitedLog {
  private final Logger log;
  private final long intervalNanos;
  private final AtomicLong nextNanos = new AtomicLong(Long.MIN_VALUE);
  private final AtomicLong suppressed = new AtomicLong();

  public RateLimitedLog(Logger log, long interval, TimeUnit unit) {
    this.log = log;
    this.intervalNanos = unit.toNanos(interval);
  }

  /** Logs at WARN when the interval since the last line has passed, else counts the event. */
  public void warn(String format, Object... args) {
    long now = System.nanoTime();
    long next = nextNanos.get();
    if ((next != Long.MIN_VALUE && now - next < 0) || !nextNanos.compareAndSet(next, now + intervalNanos)) {
      suppressed.incrementAndGet();
      return;
    }
    long held = suppressed.getAndSet(0);
    if (held > 0) {
      log.atWarn().addKeyValue("suppressed", held).log(format + " (" + held + " similar lines held back)", args);
    } else {
      log.warn(format, args);
    }
  }
}
