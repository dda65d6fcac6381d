package io.quiver.core.runtime;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import java.util.Locale;

/**
 * Typed reads of a config's {@code parameters} map (Triton's string-valued {@code parameters { key:
 * ... value { string_value: ... } }}), for runtimes parsing their settings once at load. An absent key
 * gives the caller's default; a present but unusable value is INVALID_ARGUMENT naming the model, the
 * key and the value. Stateless.
 */
public final class ModelParameters {
  private ModelParameters() {}

  /**
   * The trimmed value of {@code key}, or {@code defaultValue} when the key is absent.
   *
   * @throws InferenceException INVALID_ARGUMENT when the value is empty or blank
   */
  public static String stringValue(ModelConfig config, String key, String defaultValue) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return defaultValue;
    }
    String value = parameter.getStringValue().trim();
    if (value.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must not be empty", config.getName(), key);
    }
    return value;
  }

  /**
   * The value of {@code key} as a decimal integer in {@code [min, max]}, or {@code defaultValue} when
   * the key is absent (the default is not range-checked).
   *
   * @throws InferenceException INVALID_ARGUMENT when the value is not an integer or out of range
   */
  public static int intValue(ModelConfig config, String key, int defaultValue, int min, int max) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return defaultValue;
    }
    String value = parameter.getStringValue().trim();
    int parsed;
    try {
      parsed = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be an integer; was \"%s\"",
          config.getName(), key, value);
    }
    if (parsed < min || parsed > max) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be between %d and %d; was %d",
          config.getName(), key, min, max, parsed);
    }
    return parsed;
  }

  /**
   * The value of {@code key} as a finite decimal number in {@code [min, max]}, or {@code defaultValue}
   * when the key is absent (the default is not range-checked).
   *
   * @throws InferenceException INVALID_ARGUMENT when the value is not a finite number or out of range
   */
  public static double doubleValue(ModelConfig config, String key, double defaultValue, double min, double max) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return defaultValue;
    }
    String value = parameter.getStringValue().trim();
    double parsed;
    try {
      parsed = Double.parseDouble(value);
    } catch (NumberFormatException e) {
      parsed = Double.NaN;
    }
    // parseDouble also takes "NaN", "Infinity" and hex forms: only plain finite decimals are accepted.
    if (Double.isNaN(parsed) || Double.isInfinite(parsed) || !value.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?")) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be a decimal number; was \"%s\"",
          config.getName(), key, value);
    }
    if (parsed < min || parsed > max) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be between %s and %s; was %s",
          config.getName(), key, min, max, value);
    }
    return parsed;
  }

  /**
   * The value of {@code key} as a flag ({@code 0}, {@code 1}, {@code true}, {@code false}, any case,
   * surrounding blanks ignored), or null when the key is absent.
   *
   * @throws InferenceException INVALID_ARGUMENT for any other value
   */
  public static Boolean boolValue(ModelConfig config, String key) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return null;
    }
    switch (parameter.getStringValue().trim().toLowerCase(Locale.ROOT)) {
      case "1": case "true": return Boolean.TRUE;
      case "0": case "false": return Boolean.FALSE;
      default:
        throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be 0, 1, true or false; was \"%s\"",
            config.getName(), key, parameter.getStringValue());
    }
  }
}
