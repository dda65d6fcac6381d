package io.quiver.server.monitoring;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.quiver.proto.monitoring.v1.FeatureWindow;
import java.util.HashSet;
import java.util.Set;
import java.util.function.ToDoubleFunction;

/**
 * The monitoring's Prometheus metrics, read at scrape time from what each monitor published (the last
 * closed window, the reference state, the sample counters): nothing is recorded on the request path.
 *
 * <p>Label cardinality is bounded: per tensor, the first {@code metrics_feature_limit} features get
 * their own {@code feature} label; the rest are aggregated under {@code feature="_other"} (the maximum
 * of each score, flagged if any is). A feature without a score in the last window (no reference, no
 * values) exports no sample for that score. Names and meanings: docs/monitoring.md.
 */
public final class MonitoringMetrics {
  /** The {@code feature} label of the aggregate beyond {@code metrics_feature_limit}. */
  public static final String OTHER_FEATURES = "_other";

  private MonitoringMetrics() {}

  /** Registers the monitoring's metrics (scrape-time callbacks over {@code monitoring}'s monitors). */
  public static void register(PrometheusRegistry registry, ModelMonitoring monitoring) {
    featureGauge(registry, monitoring, "quiver_monitoring_psi",
        "Population stability index of the feature in the last closed window against the reference", FeatureWindow::getPsi);
    featureGauge(registry, monitoring, "quiver_monitoring_ks",
        "Kolmogorov-Smirnov distance between the feature's window and reference sketches (numeric features)",
        FeatureWindow::getKs);
    featureGauge(registry, monitoring, "quiver_monitoring_out_of_range_ratio",
        "Share of the window's values outside the reference's [min, max] (categorical: unseen categories)",
        FeatureWindow::getOutOfRangeRate);
    featureGauge(registry, monitoring, "quiver_monitoring_nan_ratio",
        "Share of the window's values that are NaN (categorical: empty)", FeatureWindow::getNanRate);
    featureGauge(registry, monitoring, "quiver_monitoring_feature_flagged",
        "1 when the feature crossed a threshold (psi, ks, out_of_range, nan) in the last closed window",
        w -> w.getFlagsCount() > 0 ? 1 : 0);
    versionGauge(registry, monitoring, "quiver_monitoring_flagged_features",
        "Features flagged in the last closed window", m -> {
          VersionMonitor.ClosedWindow w = m.lastWindow();
          return w == null ? Double.NaN : w.flagged();
        });
    versionGauge(registry, monitoring, "quiver_monitoring_window_rows",
        "Sampled rows in the last closed window", m -> {
          VersionMonitor.ClosedWindow w = m.lastWindow();
          return w == null ? Double.NaN : w.info().getRows();
        });
    versionGauge(registry, monitoring, "quiver_monitoring_window_end_timestamp_seconds",
        "When the last closed window closed (Unix time)", m -> {
          VersionMonitor.ClosedWindow w = m.lastWindow();
          return w == null ? Double.NaN : w.info().getEndUnixMillis() / 1000.0;
        });
    versionGauge(registry, monitoring, "quiver_monitoring_reference_rows",
        "Rows in the reference profile in force (0 = none yet)", VersionMonitor::referenceRows);
    GaugeWithCallback.builder().name("quiver_monitoring_reference_state")
        .help("1 for the state the version's monitoring reference is in: NONE, CAPTURING, BUILDING, READY, FAILED")
        .labelNames("model", "version", "state")
        .callback(cb -> {
          Set<String> seen = new HashSet<>();
          for (VersionMonitor m : monitoring.monitors()) {
            if (seen.add(m.model + "/" + m.version)) {
              String state = m.referenceInfo().getState();
              for (String s : new String[] {"NONE", "CAPTURING", "BUILDING", "READY", "FAILED"}) {
                cb.call(s.equals(state) ? 1 : 0, m.model, m.versionLabel, s);
              }
            }
          }
        })
        .register(registry);
    CounterWithCallback.builder().name("quiver_monitoring_samples")
        .help("Requests and responses sampled for monitoring, by outcome: taken (queued), dropped (queue full),"
            + " oversized (a tensor over the per-sample byte limit, left out)")
        .labelNames("model", "version", "outcome")
        .callback(cb -> {
          Set<String> seen = new HashSet<>();
          for (VersionMonitor m : monitoring.monitors()) {
            if (seen.add(m.model + "/" + m.version)) {
              cb.call(m.taken.sum(), m.model, m.versionLabel, "taken");
              cb.call(m.dropped.sum(), m.model, m.versionLabel, "dropped");
              cb.call(m.oversized.sum(), m.model, m.versionLabel, "oversized");
            }
          }
        })
        .register(registry);
  }

  private static void versionGauge(PrometheusRegistry registry, ModelMonitoring monitoring, String name, String help,
      ToDoubleFunction<VersionMonitor> read) {
    GaugeWithCallback.builder().name(name).help(help).labelNames("model", "version")
        .callback(cb -> {
          Set<String> seen = new HashSet<>();
          for (VersionMonitor m : monitoring.monitors()) {
            double value = read.applyAsDouble(m);
            if (!Double.isNaN(value) && seen.add(m.model + "/" + m.version)) {
              cb.call(value, m.model, m.versionLabel);
            }
          }
        })
        .register(registry);
  }

  private static void featureGauge(PrometheusRegistry registry, ModelMonitoring monitoring, String name, String help,
      ToDoubleFunction<FeatureWindow> read) {
    GaugeWithCallback.builder().name(name).help(help).labelNames("model", "version", "tensor", "feature")
        .callback(cb -> {
          Set<String> seen = new HashSet<>();
          for (VersionMonitor m : monitoring.monitors()) {
            VersionMonitor.ClosedWindow w = m.lastWindow();
            if (w == null || !seen.add(m.model + "/" + m.version)) {
              continue;
            }
            int limit = m.config.metricsFeatureLimit();
            for (int i = 0; i < m.layouts.size(); i++) {
              TensorLayout l = m.layouts.get(i);
              FeatureWindow[] features = w.features()[i];
              double other = Double.NaN;
              for (int f = 0; f < features.length; f++) {
                double value = read.applyAsDouble(features[f]);
                if (f < limit) {
                  if (!Double.isNaN(value)) {
                    cb.call(value, m.model, m.versionLabel, l.name(), l.featureName(f));
                  }
                } else if (!Double.isNaN(value)) {
                  other = Double.isNaN(other) ? value : Math.max(other, value);
                }
              }
              if (!Double.isNaN(other)) {
                cb.call(other, m.model, m.versionLabel, l.name(), OTHER_FEATURES);
              }
            }
          }
        })
        .register(registry);
  }
}
