package io.quiver.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.proto.inference.ModelConfig;
import org.junit.jupiter.api.Test;

class ParsedConfigsTest {
  private final ParsedConfigs parsed = new ParsedConfigs();

  @Test
  void parse_keepsTheLastParsePerModel_andParsesAgainWhenTheTextDiffers() {
    ModelConfig four = parsed.parse("m", "max_batch_size: 4\n", "m/config.pbtxt");
    assertThat(four.getName()).isEqualTo("m");
    assertThat(parsed.parse("m", "max_batch_size: 4\n", "m/config.pbtxt")).isSameAs(four);
    assertThat(parsed.parse("other", "max_batch_size: 4\n", "other/config.pbtxt").getName()).isEqualTo("other");
    assertThat(parsed.parse("m", "max_batch_size: 8\n", "m/config.pbtxt").getMaxBatchSize()).isEqualTo(8);
    assertThatThrownBy(() -> parsed.parse("m", "max_batch_size: [\n", "m/config.pbtxt"))
        .hasMessageContaining("m/config.pbtxt:1:");
    parsed.forget("m");
    assertThat(parsed.parse("m", "max_batch_size: 8\n", "m/config.pbtxt").getMaxBatchSize()).isEqualTo(8);
  }

  @Test
  void parse_keepsAtMostTheBoundAndNoLongTexts() {
    ModelConfig first = parsed.parse("m0", "max_batch_size: 1\n", "config.pbtxt");
    for (int i = 1; i < ParsedConfigs.MAX_KEPT; i++) {
      parsed.parse("m" + i, "max_batch_size: 1\n", "config.pbtxt");
    }
    assertThat(parsed.parse("m0", "max_batch_size: 1\n", "config.pbtxt")).as("all kept").isSameAs(first);
    parsed.parse("one-more", "max_batch_size: 1\n", "config.pbtxt"); // over the bound: the kept ones are dropped
    assertThat(parsed.parse("m0", "max_batch_size: 1\n", "config.pbtxt")).isNotSameAs(first).isEqualTo(first);

    String longText = "max_batch_size: 1\n" + "#".repeat(ParsedConfigs.MAX_KEPT_CHARS) + "\n";
    ModelConfig big = parsed.parse("big", longText, "big/config.pbtxt");
    assertThat(parsed.parse("big", longText, "big/config.pbtxt")).isNotSameAs(big).isEqualTo(big);
  }
}
