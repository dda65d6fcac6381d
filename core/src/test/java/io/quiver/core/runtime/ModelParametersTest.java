package io.quiver.core.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import org.junit.jupiter.api.Test;

class ModelParametersTest {

  private static ModelConfig with(String key, String value) {
    return ModelConfig.newBuilder().setName("m")
        .putParameters(key, ModelParameter.newBuilder().setStringValue(value).build()).build();
  }

  @Test
  void absentKeys_giveTheDefault() {
    ModelConfig config = ModelConfig.newBuilder().setName("m").build();
    assertThat(ModelParameters.stringValue(config, "k", "d")).isEqualTo("d");
    assertThat(ModelParameters.intValue(config, "k", 7, 0, 1)).isEqualTo(7);
    assertThat(ModelParameters.boolValue(config, "k")).isNull();
  }

  @Test
  void stringValue_isTrimmedAndMustNotBeBlank() {
    assertThat(ModelParameters.stringValue(with("k", "  serve "), "k", "d")).isEqualTo("serve");
    assertThatThrownBy(() -> ModelParameters.stringValue(with("k", "  "), "k", "d"))
        .isInstanceOf(InferenceException.class).hasMessage("model 'm': parameters['k'] must not be empty");
  }

  @Test
  void intValue_parsesWithinRange_andNamesKeyAndValueOtherwise() {
    assertThat(ModelParameters.intValue(with("k", " 12 "), "k", 0, 0, 1024)).isEqualTo(12);
    assertThat(ModelParameters.intValue(with("k", "-2"), "k", 0, -5, 5)).isEqualTo(-2);
    assertThatThrownBy(() -> ModelParameters.intValue(with("k", "four"), "k", 0, 0, 1024))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
        .hasMessage("model 'm': parameters['k'] must be an integer; was \"four\"");
    assertThatThrownBy(() -> ModelParameters.intValue(with("k", "2000"), "k", 0, 0, 1024))
        .hasMessage("model 'm': parameters['k'] must be between 0 and 1024; was 2000");
    assertThatThrownBy(() -> ModelParameters.intValue(with("k", "-1"), "k", 0, 0, 1024))
        .hasMessage("model 'm': parameters['k'] must be between 0 and 1024; was -1");
    assertThatThrownBy(() -> ModelParameters.intValue(with("k", "99999999999"), "k", 0, 0, 1024))
        .hasMessageContaining("must be an integer");
  }

  @Test
  void doubleValue_parsesPlainDecimalsWithinRange_andRefusesNaNInfinityAndHex() {
    assertThat(ModelParameters.doubleValue(ModelConfig.newBuilder().setName("m").build(), "k", 0.5, 0, 1)).isEqualTo(0.5);
    assertThat(ModelParameters.doubleValue(with("k", " 0.25 "), "k", 0, 0, 1)).isEqualTo(0.25);
    assertThat(ModelParameters.doubleValue(with("k", "1e-3"), "k", 0, 0, 1)).isEqualTo(0.001);
    assertThat(ModelParameters.doubleValue(with("k", ".5"), "k", 0, 0, 1)).isEqualTo(0.5);
    for (String bad : new String[] {"NaN", "Infinity", "0x1p-2", "half", "", "1d"}) {
      assertThatThrownBy(() -> ModelParameters.doubleValue(with("k", bad), "k", 0, 0, 1))
          .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
          .hasMessage("model 'm': parameters['k'] must be a decimal number; was \"" + bad + "\"");
    }
    assertThatThrownBy(() -> ModelParameters.doubleValue(with("k", "1.5"), "k", 0, 0, 1))
        .hasMessage("model 'm': parameters['k'] must be between 0.0 and 1.0; was 1.5");
  }

  @Test
  void boolValue_acceptsZeroOneTrueFalseInAnyCase() {
    assertThat(ModelParameters.boolValue(with("k", "1"), "k")).isTrue();
    assertThat(ModelParameters.boolValue(with("k", " TRUE "), "k")).isTrue();
    assertThat(ModelParameters.boolValue(with("k", "0"), "k")).isFalse();
    assertThat(ModelParameters.boolValue(with("k", "False"), "k")).isFalse();
    assertThatThrownBy(() -> ModelParameters.boolValue(with("k", " yes"), "k"))
        .hasMessage("model 'm': parameters['k'] must be 0, 1, true or false; was \" yes\"");
  }
}
