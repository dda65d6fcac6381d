package io.quiver.runtime.tensorflow;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JavaCppCacheTest {
  @TempDir Path dir;

  @Test
  void defaultDirectory_writableHome_isJavaCppsOwnDefault() throws IOException {
    Path home = Files.createDirectories(dir.resolve("home"));
    assertThat(JavaCppCache.defaultDirectory(home.toString(), "/tmp"))
        .isEqualTo(home.resolve(".javacpp/cache").toString());
  }

  @Test
  void defaultDirectory_missingHome_fallsBackToTmp() {
    assertThat(JavaCppCache.defaultDirectory(dir.resolve("no-such-home").toString(), "/var/tmp"))
        .isEqualTo("/var/tmp/quiver-javacpp-cache");
    assertThat(JavaCppCache.defaultDirectory("?", "/var/tmp")).isEqualTo("/var/tmp/quiver-javacpp-cache");
  }

  @Test
  void defaultDirectory_readOnlyHome_fallsBackToTmp() throws IOException {
    Path readOnly = Files.createDirectories(dir.resolve("ro"));
    Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
    // Root can write anywhere: there the case cannot be set up, and the test is reported skipped, not passed.
    assumeFalse(Files.isWritable(readOnly), "a read-only directory is writable for this user (root)");
    assertThat(JavaCppCache.defaultDirectory(readOnly.toString(), "/var/tmp")).isEqualTo("/var/tmp/quiver-javacpp-cache");
  }

  @Test
  void configure_keepsAnExplicitSystemProperty() {
    // surefire passes -Dorg.bytedeco.javacpp.cachedir; configure must not replace it
    String before = System.getProperty(JavaCppCache.PROPERTY);
    // Run without it (from an IDE), there is nothing to keep: reported skipped, not passed.
    assumeTrue(before != null, "no -D" + JavaCppCache.PROPERTY + " was passed to this JVM");
    String chosen = JavaCppCache.configure();
    assertThat(chosen).isEqualTo(before);
    assertThat(System.getProperty(JavaCppCache.PROPERTY)).isEqualTo(chosen);
  }
}
