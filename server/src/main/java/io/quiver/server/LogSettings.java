package io.quiver.server;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.Appender;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.spi.FilterReply;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.LoggerFactory;
import org.slf4j.Marker;

/**
 * The server's logging settings, Triton's way ({@code LogSettings}, {@code /v2/logging}): {@code log_info},
 * {@code log_warning}, {@code log_error} switch those levels on and off, {@code log_verbose_level} 1
 * logs Quiver ({@code io.quiver}) at DEBUG and 2 or more at TRACE, {@code log_format} chooses the console
 * format ({@code default} or {@code ISO8601}: human-readable lines, as Triton's; {@code json}: one JSON
 * object per line, Quiver's addition), {@code log_file} is reported and cannot be changed over the network
 * (Triton refuses it too). Per-logger levels ({@code /v2/logging} with {@code level} and {@code logger})
 * stay as Quiver's addition on top.
 *
 * <p>Mapped onto logback: the level switches are one turbo filter (three volatile reads per log
 * statement), the verbose level sets {@code io.quiver}'s level, the format swaps the console appender's
 * encoder. Process-wide, like logback itself; thread-safe (changes are serialized on this class).
 */
public final class LogSettings {
  public static final String LOG_FILE = "log_file";
  public static final String LOG_INFO = "log_info";
  public static final String LOG_WARNING = "log_warning";
  public static final String LOG_ERROR = "log_error";
  public static final String LOG_VERBOSE_LEVEL = "log_verbose_level";
  public static final String LOG_FORMAT = "log_format";

  /** How the console writes log lines. */
  public enum Format {
    /** One JSON object per line (logback's JsonEncoder): for log collectors. */
    JSON("json"),
    /** Time, level, logger, request id, message: for a person at a terminal (Triton's "default"). */
    TEXT("default"),
    /** TEXT with ISO 8601 timestamps (Triton's "ISO8601"). */
    TEXT_ISO8601("ISO8601");

    final String tritonName;

    Format(String tritonName) {
      this.tritonName = tritonName;
    }

    /** json, text (= default), default, ISO8601; case-insensitive. */
    public static Format parse(String name) {
      switch (name.toLowerCase(Locale.ROOT)) {
        case "json" -> {
          return JSON;
        }
        case "text", "default" -> {
          return TEXT;
        }
        case "iso8601" -> {
          return TEXT_ISO8601;
        }
        default -> throw InferenceException.invalidField(LOG_FORMAT, "invalid argument for log_format, got: %s"
            + " (default, ISO8601, json or text)", name);
      }
    }

    /**
     * The format when none is asked for: human-readable when standard output is a terminal, JSON lines
     * otherwise (containers, pipes, files).
     */
    public static Format forConsole() {
      return System.console() != null ? TEXT : JSON;
    }
  }

  static final String TEXT_PATTERN = "%d{yyyy-MM-dd HH:mm:ss.SSS} %-5level %logger{36}"
      + "%replace( [%X{request_id}]){' \\[\\]', ''} - %msg%replace( %kvp){' $', ''}%n";
  static final String ISO_PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level %logger{36}"
      + "%replace( [%X{request_id}]){' \\[\\]', ''} - %msg%replace( %kvp){' $', ''}%n";
  private static final String APPENDER = "STDOUT";
  private static final String QUIVER = "io.quiver";

  private static volatile boolean info = true;
  private static volatile boolean warning = true;
  private static volatile boolean error = true;
  private static volatile int verbose;
  private static volatile Format format = Format.JSON; // logback.xml's
  private static boolean filterInstalled;

  private LogSettings() {}

  /** The current settings, in Triton's names and order. */
  public static synchronized Map<String, Object> current() {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put(LOG_FILE, "");
    out.put(LOG_INFO, info);
    out.put(LOG_WARNING, warning);
    out.put(LOG_ERROR, error);
    out.put(LOG_VERBOSE_LEVEL, verbose);
    out.put(LOG_FORMAT, format == Format.JSON ? "json" : format.tritonName);
    return out;
  }

  /**
   * Applies Triton's settings (values: Boolean for the switches, a Number for the verbose level, a
   * String for the format; null for a value of the wrong kind); returns the settings now in force. All
   * are checked before any is applied.
   *
   * @throws InferenceException INVALID_ARGUMENT naming a setting of the wrong type or value,
   *     UNIMPLEMENTED for log_file
   */
  public static synchronized Map<String, Object> apply(Map<String, Object> changes) {
    Boolean newInfo = null;
    Boolean newWarning = null;
    Boolean newError = null;
    Integer newVerbose = null;
    Format newFormat = null;
    for (Map.Entry<String, Object> e : changes.entrySet()) {
      String key = e.getKey();
      Object value = e.getValue();
      switch (key) {
        case LOG_FILE -> throw new InferenceException(ErrorCode.UNIMPLEMENTED,
            "log file location can not be updated through network protocol");
        case LOG_INFO -> newInfo = bool(key, value);
        case LOG_WARNING -> newWarning = bool(key, value);
        case LOG_ERROR -> newError = bool(key, value);
        case LOG_VERBOSE_LEVEL -> {
          if (!(value instanceof Number n) || n.longValue() < 0 || n.longValue() > Integer.MAX_VALUE) {
            throw InferenceException.invalidField(key, "expect a non-negative integer (uint32) for '%s'", key);
          }
          newVerbose = (int) n.longValue();
        }
        case LOG_FORMAT -> {
          if (!(value instanceof String s)) {
            throw InferenceException.invalidField(key, "expect string for '%s'", key);
          }
          newFormat = Format.parse(s);
        }
        default -> throw InferenceException.invalidField(key, "unknown log setting '%s'; the settings are %s", key,
            List.of(LOG_FILE, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_VERBOSE_LEVEL, LOG_FORMAT));
      }
    }
    installFilter();
    if (newInfo != null) {
      info = newInfo;
    }
    if (newWarning != null) {
      warning = newWarning;
    }
    if (newError != null) {
      error = newError;
    }
    if (newVerbose != null) {
      setVerbose(newVerbose);
    }
    if (newFormat != null) {
      setFormat(newFormat);
    }
    return current();
  }

  private static boolean bool(String key, Object value) {
    if (!(value instanceof Boolean b)) {
      throw InferenceException.invalidField(key, "expect boolean for '%s'", key);
    }
    return b;
  }

  /** Triton's --log-verbose and log_verbose_level: 0 leaves io.quiver's level to the configuration. */
  public static synchronized void setVerbose(int level) {
    verbose = level;
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
      context.getLogger(QUIVER).setLevel(level <= 0 ? null : level == 1 ? Level.DEBUG : Level.TRACE);
    }
  }

  /** Switches the console's format (the console appender gets a new encoder). */
  public static synchronized void setFormat(Format next) {
    if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
      return;
    }
    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    Appender<ILoggingEvent> old = root.getAppender(APPENDER);
    if (old != null && next == format) {
      return;
    }
    ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
    console.setContext(context);
    console.setName(APPENDER);
    console.setEncoder(encoder(context, next));
    console.start();
    // The new appender first, then the old one out: a line may be written twice, none is lost.
    root.addAppender(console);
    if (old != null) {
      root.detachAppender(old);
      old.stop();
    }
    format = next;
  }

  public static Format format() {
    return format;
  }

  private static Encoder<ILoggingEvent> encoder(LoggerContext context, Format f) {
    if (f == Format.JSON) {
      JsonEncoder json = new JsonEncoder();
      json.setContext(context);
      json.setWithSequenceNumber(false);
      json.setWithNanoseconds(false);
      json.setWithContext(false);
      json.setWithMessage(false);
      json.setWithFormattedMessage(true);
      json.setWithArguments(false);
      json.start();
      return json;
    }
    PatternLayoutEncoder text = new PatternLayoutEncoder();
    text.setContext(context);
    text.setPattern(f == Format.TEXT ? TEXT_PATTERN : ISO_PATTERN);
    text.start();
    return text;
  }

  /** The one turbo filter behind log_info, log_warning and log_error; installed on first use. */
  private static void installFilter() {
    if (filterInstalled || !(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
      return;
    }
    TurboFilter filter = new TurboFilter() {
      @Override
      public FilterReply decide(Marker marker, Logger logger, Level level, String format, Object[] params,
          Throwable t) {
        if (level == null) {
          return FilterReply.NEUTRAL;
        }
        boolean allowed = switch (level.toInt()) {
          case Level.INFO_INT -> info;
          case Level.WARN_INT -> warning;
          case Level.ERROR_INT -> error;
          default -> true;
        };
        return allowed ? FilterReply.NEUTRAL : FilterReply.DENY;
      }
    };
    filter.setName("quiver-log-settings");
    filter.setContext(context);
    filter.start();
    context.addTurboFilter(filter);
    filterInstalled = true;
  }

  /** The per-logger levels set at runtime (Quiver's addition), by logger name. */
  public static Map<String, String> loggerLevels() {
    Map<String, String> out = new LinkedHashMap<>();
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
      List<Logger> loggers = new ArrayList<>(context.getLoggerList());
      for (Iterator<Logger> it = loggers.iterator(); it.hasNext(); ) {
        Logger logger = it.next();
        if (logger.getLevel() != null && !logger.getName().equals(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
          out.put(logger.getName(), logger.getLevel().toString());
        }
      }
    }
    return out;
  }
}
