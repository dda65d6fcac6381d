package io.quiver.server.console;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.LoggerFactory;

/**
 * The most recent audit lines, for the server page: an appender on the two audit loggers (the security
 * policy's {@code quiver.audit} and the control plane's {@code io.quiver.control.audit}) that keeps the
 * last {@link #CAPACITY} events in memory. The lines also go wherever logging sends them (additivity
 * stays on); a line the logger's level drops is not seen here either. Audit lines name principals and
 * peers, never credentials. Thread-safe (appends are synchronized by logback's AppenderBase).
 */
final class AuditTrail extends AppenderBase<ILoggingEvent> {
  static final int CAPACITY = 200;
  static final List<String> LOGGERS = List.of("quiver.audit", "io.quiver.control.audit");

  /** One audit line as the server page shows it. */
  record Event(long timeMillis, String logger, String level, String message) {}

  private final ArrayDeque<Event> events = new ArrayDeque<>(CAPACITY);
  private final List<Logger> attached = new ArrayList<>();

  /** Attaches to the audit loggers; does nothing when logback is not the logging backend. */
  void attach() {
    if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
      return;
    }
    setContext(context);
    setName("quiver-console-audit");
    start();
    for (String name : LOGGERS) {
      Logger logger = context.getLogger(name);
      logger.addAppender(this);
      attached.add(logger);
    }
  }

  void detach() {
    for (Logger logger : attached) {
      logger.detachAppender(this);
    }
    attached.clear();
    stop();
  }

  @Override
  protected void append(ILoggingEvent event) {
    Event e = new Event(event.getTimeStamp(), event.getLoggerName(), event.getLevel().toString(),
        event.getFormattedMessage());
    synchronized (events) {
      if (events.size() == CAPACITY) {
        events.removeFirst();
      }
      events.addLast(e);
    }
  }

  /** The kept events, newest first. */
  List<Event> recent() {
    synchronized (events) {
      List<Event> out = new ArrayList<>(events);
      java.util.Collections.reverse(out);
      return out;
    }
  }
}
