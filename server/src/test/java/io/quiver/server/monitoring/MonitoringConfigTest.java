package io.quiver.server.monitoring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import java.util.List;
import org.junit.jupiter.api.Test;

class MonitoringConfigTest {
  private static ModelConfig config(String... keyValues) {
    ModelConfig.Builder b = ModelConfig.newBuilder().setName("m");
    for (int i = 0; i < keyValues.length; i += 2) {
      b.putParameters(keyValues[i], ModelParameter.newBuilder().setStringValue(keyValues[i + 1]).build());
    }
    return b.build();
  }

  @Test
  void absentOrFalse_isOff_trueGivesTheDefaults() {
    assertThat(MonitoringConfig.from(config())).isNull();
    assertThat(MonitoringConfig.from(config("quiver.monitoring", "false"))).isNull();
    assertThat(MonitoringConfig.from(config("quiver.monitoring", "true"))).isEqualTo(MonitoringConfig.defaults());
  }

  @Test
  void everyParameter_isRead() {
    MonitoringConfig c = MonitoringConfig.from(config("quiver.monitoring", "1", "quiver.monitoring.sample_rate", "0.25",
        "quiver.monitoring.window_seconds", "60", "quiver.monitoring.min_window_rows", "50",
        "quiver.monitoring.reference_rows", "0", "quiver.monitoring.reference_file", "monitoring/ref.jsonl",
        "quiver.monitoring.psi_threshold", "0.3", "quiver.monitoring.ks_threshold", "0.2",
        "quiver.monitoring.ks_p_value", "0.01", "quiver.monitoring.out_of_range_threshold", "0.05",
        "quiver.monitoring.nan_threshold", "0", "quiver.monitoring.psi_bins", "20", "quiver.monitoring.max_features", "64",
        "quiver.monitoring.metrics_feature_limit", "8", "quiver.monitoring.queue_capacity", "64",
        "quiver.monitoring.queue_bytes", "1048576", "quiver.monitoring.tensors", "a, b"));
    assertThat(c).isEqualTo(new MonitoringConfig(0.25, 60, 50, 0, "monitoring/ref.jsonl", 0.3, 0.2, 0.01, 0.05, 0, 20, 64, 8,
        64, 1 << 20, List.of("a", "b")));
  }

  @Test
  void badValues_areInvalidArgument_namingKeyAndValue() {
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring", "yes")))
        .hasMessageContaining("parameters['quiver.monitoring'] must be 0, 1, true or false; was \"yes\"");
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.sample_rate", "0")))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
        .hasMessageContaining("parameters['quiver.monitoring.sample_rate'] must be between");
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.sample_rate", "1.5")))
        .hasMessageContaining("was 1.5");
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.window_seconds", "5m")))
        .hasMessageContaining("parameters['quiver.monitoring.window_seconds'] must be an integer; was \"5m\"");
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring.treshold", "0.1")))
        .hasMessageContaining("unknown monitoring parameter(s) [quiver.monitoring.treshold]");
    assertThatThrownBy(() -> MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.reference_file",
        "../../etc/passwd"))).hasMessageContaining("must be a relative path inside the version directory");
  }

  @Test
  void layouts_columnsForRowVectors_wholeOtherwise_andUnknownTensorsAreRefused() {
    ModelSignature batching = new ModelSignature(8, List.of(
        new TensorSpec("features", DataType.FP32, new long[] {16}),
        new TensorSpec("scalar", DataType.INT64, new long[] {}),
        new TensorSpec("image", DataType.FP32, new long[] {3, 8, 8}),
        new TensorSpec("variable", DataType.FP32, new long[] {-1}),
        new TensorSpec("wide", DataType.FP32, new long[] {5000}),
        new TensorSpec("text", DataType.BYTES, new long[] {2})),
        List.of(new TensorSpec("probabilities", DataType.FP32, new long[] {4})));
    List<TensorLayout> layouts = TensorLayout.plan("m", batching, MonitoringConfig.defaults());
    assertThat(layouts).extracting(TensorLayout::name, TensorLayout::columns, TensorLayout::output, TensorLayout::position)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("features", 16, false, 0),
            org.assertj.core.groups.Tuple.tuple("scalar", 1, false, 1),
            org.assertj.core.groups.Tuple.tuple("image", 0, false, 2),
            org.assertj.core.groups.Tuple.tuple("variable", 0, false, 3),
            org.assertj.core.groups.Tuple.tuple("wide", 0, false, 4),
            org.assertj.core.groups.Tuple.tuple("text", 2, false, 5),
            org.assertj.core.groups.Tuple.tuple("probabilities", 4, true, 0));
    assertThat(layouts.get(5).categorical()).isTrue();

    ModelSignature notBatching = new ModelSignature(0, List.of(new TensorSpec("row", DataType.FP32, new long[] {16}),
        new TensorSpec("table", DataType.FP32, new long[] {-1, 3})), List.of());
    assertThat(TensorLayout.plan("m", notBatching, MonitoringConfig.defaults())).extracting(TensorLayout::columns)
        .containsExactly(16, 3);

    MonitoringConfig only = MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.tensors",
        "features,probabilities"));
    assertThat(TensorLayout.plan("m", batching, only)).extracting(TensorLayout::name)
        .containsExactly("features", "probabilities");
    MonitoringConfig typo = MonitoringConfig.from(config("quiver.monitoring", "true", "quiver.monitoring.tensors", "feature"));
    assertThatThrownBy(() -> TensorLayout.plan("m", batching, typo))
        .hasMessageContaining("names [feature], which the model has neither as input nor as output");
  }
}
