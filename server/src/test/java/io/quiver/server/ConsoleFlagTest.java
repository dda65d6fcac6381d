package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The --console flag: on by default, --no-console turns it off. */
class ConsoleFlagTest {
  @Test
  void console_isOnByDefault_andNoConsoleTurnsItOff() {
    Main.Serve serve = new Main.Serve();
    new CommandLine(serve).parseArgs();
    assertThat(serve.console).isTrue();
    Main.Serve off = new Main.Serve();
    new CommandLine(off).parseArgs("--no-console");
    assertThat(off.console).isFalse();
    Main.Serve on = new Main.Serve();
    new CommandLine(on).parseArgs("--console");
    assertThat(on.console).isTrue();
  }
}
