package io.quiver.server.monitoring;

import io.quiver.core.InferenceException;
import io.quiver.core.runtime.ModelParameters;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.monitoring.v1.MonitoringSettings;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * A model version's monitoring settings, read once at load from its config {@code parameters}
 * ({@code quiver.monitoring} and {@code quiver.monitoring.*}) and validated: a bad value fails the load
 * with INVALID_ARGUMENT naming the key and the value; an unknown {@code quiver.monitoring.*} key is an
 * error too (a typo must not silently leave a threshold at its default). Immutable.
 *
 * @param sampleRate share of requests whose tensors are summarised, (0, 1]
 * @param windowSeconds a window closes once it is at least this old ...
 * @param minWindowRows ... and holds at least this many sampled rows
 * @param referenceRows without a stored reference: capture one from the first N sampled rows (0 = never)
 * @param referenceFile without a stored reference: build one from this JSON Lines file in the version directory ("" = none)
 * @param psiThreshold a feature is flagged when its PSI exceeds this
 * @param ksThreshold ... or its Kolmogorov-Smirnov distance exceeds this and the sketches' significance threshold
 * @param ksPValue the significance level of that threshold (DataSketches' KolmogorovSmirnov.computeKSThreshold)
 * @param outOfRangeThreshold ... or its share of values outside the reference's [min, max] exceeds this
 * @param nanThreshold ... or its NaN share exceeds the reference's by more than this
 * @param psiBins PSI bins (reference quantiles)
 * @param maxFeatures most columns summarised one by one; a wider tensor is summarised as a whole
 * @param metricsFeatureLimit per tensor, features exported with their own Prometheus label; the rest as "_other"
 * @param queueCapacity samples waiting for the monitoring thread, at most
 * @param queueBytes bytes of samples waiting for the monitoring thread, at most
 * @param tensors names of the tensors to monitor; empty = every input and output
 */
public record MonitoringConfig(double sampleRate, int windowSeconds, int minWindowRows, int referenceRows,
    String referenceFile, double psiThreshold, double ksThreshold, double ksPValue, double outOfRangeThreshold,
    double nanThreshold, int psiBins, int maxFeatures, int metricsFeatureLimit, int queueCapacity, int queueBytes,
    List<String> tensors) {
  /** The switch: {@code parameters { key: "quiver.monitoring" value { string_value: "true" } }}. */
  public static final String ENABLED = "quiver.monitoring";
  static final String PREFIX = ENABLED + ".";
  public static final String SAMPLE_RATE = PREFIX + "sample_rate";
  public static final String WINDOW_SECONDS = PREFIX + "window_seconds";
  public static final String MIN_WINDOW_ROWS = PREFIX + "min_window_rows";
  public static final String REFERENCE_ROWS = PREFIX + "reference_rows";
  public static final String REFERENCE_FILE = PREFIX + "reference_file";
  public static final String PSI_THRESHOLD = PREFIX + "psi_threshold";
  public static final String KS_THRESHOLD = PREFIX + "ks_threshold";
  public static final String KS_P_VALUE = PREFIX + "ks_p_value";
  public static final String OUT_OF_RANGE_THRESHOLD = PREFIX + "out_of_range_threshold";
  public static final String NAN_THRESHOLD = PREFIX + "nan_threshold";
  public static final String PSI_BINS = PREFIX + "psi_bins";
  public static final String MAX_FEATURES = PREFIX + "max_features";
  public static final String METRICS_FEATURE_LIMIT = PREFIX + "metrics_feature_limit";
  public static final String QUEUE_CAPACITY = PREFIX + "queue_capacity";
  public static final String QUEUE_BYTES = PREFIX + "queue_bytes";
  public static final String TENSORS = PREFIX + "tensors";

  static final Set<String> KEYS = Set.of(SAMPLE_RATE, WINDOW_SECONDS, MIN_WINDOW_ROWS, REFERENCE_ROWS, REFERENCE_FILE,
      PSI_THRESHOLD, KS_THRESHOLD, KS_P_VALUE, OUT_OF_RANGE_THRESHOLD, NAN_THRESHOLD, PSI_BINS, MAX_FEATURES,
      METRICS_FEATURE_LIMIT, QUEUE_CAPACITY, QUEUE_BYTES, TENSORS);

  public static final double DEFAULT_SAMPLE_RATE = 1.0;
  public static final int DEFAULT_WINDOW_SECONDS = 300;
  public static final int DEFAULT_MIN_WINDOW_ROWS = 200;
  public static final int DEFAULT_REFERENCE_ROWS = 1000;
  public static final double DEFAULT_PSI_THRESHOLD = 0.2;
  public static final double DEFAULT_KS_THRESHOLD = 0.1;
  public static final double DEFAULT_KS_P_VALUE = 0.001;
  public static final double DEFAULT_OUT_OF_RANGE_THRESHOLD = 0.02;
  public static final double DEFAULT_NAN_THRESHOLD = 0.01;
  public static final int DEFAULT_PSI_BINS = 10;
  public static final int DEFAULT_MAX_FEATURES = 1024;
  public static final int DEFAULT_METRICS_FEATURE_LIMIT = 32;
  public static final int DEFAULT_QUEUE_CAPACITY = 4096;
  public static final int DEFAULT_QUEUE_BYTES = 16 << 20;

  public MonitoringConfig {
    tensors = List.copyOf(tensors);
  }

  /** The defaults (monitoring on, every tensor). */
  public static MonitoringConfig defaults() {
    return new MonitoringConfig(DEFAULT_SAMPLE_RATE, DEFAULT_WINDOW_SECONDS, DEFAULT_MIN_WINDOW_ROWS,
        DEFAULT_REFERENCE_ROWS, "", DEFAULT_PSI_THRESHOLD, DEFAULT_KS_THRESHOLD, DEFAULT_KS_P_VALUE,
        DEFAULT_OUT_OF_RANGE_THRESHOLD, DEFAULT_NAN_THRESHOLD, DEFAULT_PSI_BINS, DEFAULT_MAX_FEATURES,
        DEFAULT_METRICS_FEATURE_LIMIT, DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_BYTES, List.of());
  }

  /**
   * Reads the settings of a (completed) config.
   *
   * @return null when monitoring is off ({@code quiver.monitoring} absent or false); the other keys are
   *     checked all the same
   * @throws InferenceException INVALID_ARGUMENT naming the model, the key and the value
   */
  public static MonitoringConfig from(ModelConfig config) {
    List<String> unknown = new ArrayList<>();
    for (String key : new TreeSet<>(config.getParametersMap().keySet())) {
      if (key.startsWith(PREFIX) && !KEYS.contains(key)) {
        unknown.add(key);
      }
    }
    if (!unknown.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': unknown monitoring parameter(s) %s; known: %s",
          config.getName(), unknown, new TreeSet<>(KEYS));
    }
    Boolean enabled = ModelParameters.boolValue(config, ENABLED);
    String file = ModelParameters.stringValue(config, REFERENCE_FILE, "");
    if (!file.isEmpty() && !isSafeRelativePath(file)) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be a relative path inside the version"
          + " directory ('/'-separated, no '..', '.' or empty segments); was \"%s\"", config.getName(), REFERENCE_FILE, file);
    }
    List<String> tensors = new ArrayList<>();
    for (String name : ModelParameters.stringValue(config, TENSORS, "").split(",")) {
      if (!name.isBlank()) {
        tensors.add(name.trim());
      }
    }
    MonitoringConfig parsed = new MonitoringConfig(
        ModelParameters.doubleValue(config, SAMPLE_RATE, DEFAULT_SAMPLE_RATE, 1e-6, 1.0),
        ModelParameters.intValue(config, WINDOW_SECONDS, DEFAULT_WINDOW_SECONDS, 1, 86_400),
        ModelParameters.intValue(config, MIN_WINDOW_ROWS, DEFAULT_MIN_WINDOW_ROWS, 1, 10_000_000),
        ModelParameters.intValue(config, REFERENCE_ROWS, DEFAULT_REFERENCE_ROWS, 0, 10_000_000),
        file,
        ModelParameters.doubleValue(config, PSI_THRESHOLD, DEFAULT_PSI_THRESHOLD, 1e-6, 100),
        ModelParameters.doubleValue(config, KS_THRESHOLD, DEFAULT_KS_THRESHOLD, 1e-6, 1),
        ModelParameters.doubleValue(config, KS_P_VALUE, DEFAULT_KS_P_VALUE, 1e-12, 0.5),
        ModelParameters.doubleValue(config, OUT_OF_RANGE_THRESHOLD, DEFAULT_OUT_OF_RANGE_THRESHOLD, 0, 1),
        ModelParameters.doubleValue(config, NAN_THRESHOLD, DEFAULT_NAN_THRESHOLD, 0, 1),
        ModelParameters.intValue(config, PSI_BINS, DEFAULT_PSI_BINS, 2, 100),
        ModelParameters.intValue(config, MAX_FEATURES, DEFAULT_MAX_FEATURES, 1, 16_384),
        ModelParameters.intValue(config, METRICS_FEATURE_LIMIT, DEFAULT_METRICS_FEATURE_LIMIT, 0, 1_000),
        ModelParameters.intValue(config, QUEUE_CAPACITY, DEFAULT_QUEUE_CAPACITY, 16, 1 << 20),
        ModelParameters.intValue(config, QUEUE_BYTES, DEFAULT_QUEUE_BYTES, 1 << 16, 1 << 30),
        tensors);
    return Boolean.TRUE.equals(enabled) ? parsed : null;
  }

  /** The most bytes one sampled tensor may take: larger ones are truncated to whole rows, or skipped. */
  int maxSampleBytes() {
    return Math.min(queueBytes / 4, 1 << 20);
  }

  MonitoringSettings toProto() {
    return MonitoringSettings.newBuilder().setSampleRate(sampleRate).setWindowSeconds(windowSeconds)
        .setMinWindowRows(minWindowRows).setReferenceRows(referenceRows).setReferenceFile(referenceFile)
        .setPsiThreshold(psiThreshold).setKsThreshold(ksThreshold).setKsPValue(ksPValue)
        .setOutOfRangeThreshold(outOfRangeThreshold).setNanThreshold(nanThreshold).setPsiBins(psiBins)
        .setMaxFeatures(maxFeatures).setMetricsFeatureLimit(metricsFeatureLimit).setQueueCapacity(queueCapacity)
        .setQueueBytes(queueBytes).addAllTensors(tensors).build();
  }

  static boolean isSafeRelativePath(String relative) {
    if (relative.isEmpty() || relative.length() > 1024 || relative.startsWith("/") || relative.contains("\\")) {
      return false;
    }
    for (String segment : relative.split("/", -1)) {
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
        return false;
      }
      for (int i = 0; i < segment.length(); i++) {
        if (Character.isISOControl(segment.charAt(i))) {
          return false;
        }
      }
    }
    return true;
  }
}
