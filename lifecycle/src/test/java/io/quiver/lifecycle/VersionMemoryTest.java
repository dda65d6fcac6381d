package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Test;

class VersionMemoryTest {

  @Test
  void human_writesBinaryUnitsWithOneDecimal() {
    assertThat(VersionMemory.human(0)).isEqualTo("0 B");
    assertThat(VersionMemory.human(1023)).isEqualTo("1023 B");
    assertThat(VersionMemory.human(1024)).isEqualTo("1.0 KiB");
    assertThat(VersionMemory.human(1536)).isEqualTo("1.5 KiB");
    assertThat(VersionMemory.human(1280)).isEqualTo("1.3 KiB"); // 1.25 rounds half up
    assertThat(VersionMemory.human(13_107_200)).isEqualTo("12.5 MiB");
    assertThat(VersionMemory.human(1024 * 1024 - 1)).isEqualTo("1024.0 KiB");
    assertThat(VersionMemory.human(5L << 40)).isEqualTo("5.0 TiB");
    assertThat(VersionMemory.human(3L << 50)).isEqualTo("3072.0 TiB");
  }

  @Test
  void human_agreesWithFormattingOneDecimal() {
    Random random = new Random(7);
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    for (int i = 0; i < 20_000; i++) {
      long bytes = 1024 + (random.nextLong() >>> (14 + random.nextInt(40)));
      double v = bytes;
      int u = -1;
      while (v >= 1024 && u < units.length - 1) {
        v /= 1024;
        u++;
      }
      assertThat(VersionMemory.human(bytes)).as("%d bytes", bytes)
          .isEqualTo(String.format(Locale.ROOT, "%.1f %s", v, units[u]));
    }
  }
}
