package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.LoggingEvent;
import io.quiver.core.InferenceException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** --log-format and log_format: the console's human-readable lines and the names Triton uses. */
class LogFormatTest {
  @Test
  void formatNames_acceptTritonsAndQuivers() {
    assertThat(LogSettings.Format.parse("json")).isEqualTo(LogSettings.Format.JSON);
    assertThat(LogSettings.Format.parse("text")).isEqualTo(LogSettings.Format.TEXT);
    assertThat(LogSettings.Format.parse("default")).isEqualTo(LogSettings.Format.TEXT);
    assertThat(LogSettings.Format.parse("ISO8601")).isEqualTo(LogSettings.Format.TEXT_ISO8601);
    assertThatThrownBy(() -> LogSettings.Format.parse("xml")).isInstanceOf(InferenceException.class)
        .hasMessageContaining("log_format");
    assertThat(Main.serveOptions("serve", "--log-format=json")).isNotNull();
  }

  @Test
  void withoutATerminal_theConsoleDefaultsToJsonLines() {
    // Tests under Maven (like containers and pipes) have no console; from a terminal the case cannot be set up.
    assumeTrue(System.console() == null, "this JVM has a console");
    assertThat(LogSettings.Format.forConsole()).isEqualTo(LogSettings.Format.JSON);
  }

  @Test
  void textLines_carryTimeLevelLoggerRequestIdAndMessage() {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    ch.qos.logback.classic.Logger logger = context.getLogger("io.quiver.server.DataPlane");
    LoggingEvent withId = new LoggingEvent("x", logger, Level.WARN, "model {} failed", null, new Object[] {"simple"});
    withId.setMDCPropertyMap(Map.of(DataPlane.MDC_REQUEST_ID, "r-42"));
    LoggingEvent withoutId = new LoggingEvent("x", logger, Level.INFO, "started", null, null);
    withoutId.setMDCPropertyMap(Map.of());
    for (String pattern : new String[] {LogSettings.TEXT_PATTERN, LogSettings.ISO_PATTERN}) {
      PatternLayoutEncoder encoder = new PatternLayoutEncoder();
      encoder.setContext(context);
      encoder.setPattern(pattern);
      encoder.start();
      String line = new String(encoder.encode(withId), StandardCharsets.UTF_8);
      assertThat(line).matches("\\d{4}-\\d\\d-\\d\\d[ T]\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\S* WARN  "
          + "io\\.quiver\\.server\\.DataPlane \\[r-42\\] - model simple failed\\R");
      String plain = new String(encoder.encode(withoutId), StandardCharsets.UTF_8);
      assertThat(plain).endsWith(" INFO  io.quiver.server.DataPlane - started" + System.lineSeparator())
          .doesNotContain("[]");
      encoder.stop();
    }
  }
}
