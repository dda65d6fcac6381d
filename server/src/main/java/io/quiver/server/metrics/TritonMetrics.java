package io.quiver.server.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.UnknownSnapshot;
import io.quiver.core.InferenceStats;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToLongFunction;

/**
 * Triton's per-model inference metrics, under Triton's names and labels ({@code model}, {@code version};
 * {@code reason} on failures), beside Quiver's own: dashboards, alerts and autoscalers written for
 * Triton read a Quiver server unchanged (docs/metrics.md has the mapping).
 *
 * <p>Every value is read at scrape time from what Quiver already records (each READY version's
 * {@link InferenceStats} and scheduler, and the {@code quiver_inference_failure} counter): nothing is
 * recorded twice and the request path is untouched. Triton's counters are exported as Prometheus
 * {@code untyped}, because the Java client appends {@code _total} to every counter's samples and Triton's
 * names have no such suffix; PromQL's {@code rate()} works the same on either type.
 *
 * <p>Thread-safe: the scrape may run on any exporter thread.
 */
final class TritonMetrics implements MultiCollector {
  static final String SUCCESS = "nv_inference_request_success";
  static final String FAILURE = "nv_inference_request_failure";
  static final String INFERENCE_COUNT = "nv_inference_count";
  static final String EXECUTION_COUNT = "nv_inference_exec_count";
  static final String REQUEST_DURATION = "nv_inference_request_duration_us";
  static final String QUEUE_DURATION = "nv_inference_queue_duration_us";
  static final String COMPUTE_INPUT_DURATION = "nv_inference_compute_input_duration_us";
  static final String COMPUTE_INFER_DURATION = "nv_inference_compute_infer_duration_us";
  static final String COMPUTE_OUTPUT_DURATION = "nv_inference_compute_output_duration_us";
  static final String PENDING_REQUESTS = "nv_inference_pending_request_count";

  /** One Triton counter read from a version's statistics; help texts say what Triton's say. */
  private record StatsCounter(String name, String help, ToLongFunction<InferenceStats> read) {}

  private static final List<StatsCounter> STATS_COUNTERS = List.of(
      new StatsCounter(SUCCESS, "Number of successful inference requests, all batch sizes",
          s -> s.success().count()),
      new StatsCounter(INFERENCE_COUNT, "Number of inferences performed (a batch of n counts n)",
          InferenceStats::inferenceCount),
      new StatsCounter(EXECUTION_COUNT, "Number of model executions performed (batches)",
          InferenceStats::executionCount),
      new StatsCounter(REQUEST_DURATION, "Cumulative inference request duration in microseconds (successful requests)",
          s -> s.success().nanos() / 1000),
      new StatsCounter(QUEUE_DURATION, "Cumulative inference queuing duration in microseconds",
          s -> s.queue().nanos() / 1000),
      new StatsCounter(COMPUTE_INPUT_DURATION, "Cumulative compute input duration in microseconds",
          s -> s.computeInput().nanos() / 1000),
      new StatsCounter(COMPUTE_INFER_DURATION, "Cumulative compute inference duration in microseconds",
          s -> s.computeInfer().nanos() / 1000),
      new StatsCounter(COMPUTE_OUTPUT_DURATION, "Cumulative inference compute output duration in microseconds",
          s -> s.computeOutput().nanos() / 1000),
      new StatsCounter("nv_cache_num_hits_per_model", "Number of cache hits per model",
          s -> s.cacheHit().count()),
      new StatsCounter("nv_cache_num_misses_per_model", "Number of cache misses per model",
          s -> s.cacheMiss().count()),
      new StatsCounter("nv_cache_hit_duration_per_model", "Total cache hit duration per model, in microseconds",
          s -> s.cacheHit().nanos() / 1000),
      new StatsCounter("nv_cache_miss_duration_per_model", "Total cache miss (lookup and insertion) duration per model,"
          + " in microseconds", s -> s.cacheMiss().nanos() / 1000));

  private final ServerMetrics metrics;

  TritonMetrics(ServerMetrics metrics) {
    this.metrics = metrics;
  }

  /** Triton's failure reasons (REJECTED, CANCELED, BACKEND, OTHER) for Quiver's. */
  static String tritonReason(String quiverReason) {
    return switch (quiverReason) {
      // A request Triton's scheduler drops when its queue timeout passes is REJECTED too.
      case "rejected", "timeout" -> "REJECTED";
      case "cancelled" -> "CANCELED";
      case "runtime" -> "BACKEND";
      default -> "OTHER";
    };
  }

  @Override
  public MetricSnapshots collect() {
    List<List<UnknownSnapshot.UnknownDataPointSnapshot>> counters = new ArrayList<>(STATS_COUNTERS.size());
    for (int i = 0; i < STATS_COUNTERS.size(); i++) {
      counters.add(new ArrayList<>());
    }
    List<GaugeSnapshot.GaugeDataPointSnapshot> pending = new ArrayList<>();
    metrics.forEachReady((version, scheduler) -> {
      Labels labels = Labels.of("model", version.name(), "version", version.versionLabel());
      InferenceStats stats = scheduler.stats();
      for (int i = 0; i < STATS_COUNTERS.size(); i++) {
        counters.get(i).add(UnknownSnapshot.UnknownDataPointSnapshot.builder()
            .labels(labels).value(STATS_COUNTERS.get(i).read().applyAsLong(stats)).build());
      }
      pending.add(GaugeSnapshot.GaugeDataPointSnapshot.builder()
          .labels(labels).value(scheduler.queuedRequests()).build());
    });
    MetricSnapshots.Builder out = MetricSnapshots.builder();
    for (int i = 0; i < STATS_COUNTERS.size(); i++) {
      StatsCounter counter = STATS_COUNTERS.get(i);
      UnknownSnapshot.Builder snapshot = UnknownSnapshot.builder().name(counter.name()).help(counter.help());
      counters.get(i).forEach(snapshot::dataPoint);
      out.metricSnapshot(snapshot.build());
    }
    out.metricSnapshot(failures());
    GaugeSnapshot.Builder gauge = GaugeSnapshot.builder().name(PENDING_REQUESTS)
        .help("Instantaneous number of pending requests awaiting execution per-model.");
    pending.forEach(gauge::dataPoint);
    out.metricSnapshot(gauge.build());
    return out.build();
  }

  /** Quiver's failure counter regrouped by Triton's reasons (kept after a version unloads, as the counter is). */
  private MetricSnapshot failures() {
    Map<Labels, Double> byReason = new LinkedHashMap<>();
    CounterSnapshot snapshot = metrics.failure.collect();
    for (CounterSnapshot.CounterDataPointSnapshot point : snapshot.getDataPoints()) {
      Labels labels = Labels.of("model", point.getLabels().get("model"), "version", point.getLabels().get("version"),
          "reason", tritonReason(point.getLabels().get("reason")));
      byReason.merge(labels, point.getValue(), Double::sum);
    }
    UnknownSnapshot.Builder failures = UnknownSnapshot.builder().name(FAILURE)
        .help("Number of failed inference requests, all batch sizes");
    byReason.forEach((labels, value) -> failures.dataPoint(
        UnknownSnapshot.UnknownDataPointSnapshot.builder().labels(labels).value(value).build()));
    return failures.build();
  }

  @Override
  public List<String> getPrometheusNames() {
    List<String> names = new ArrayList<>();
    STATS_COUNTERS.forEach(c -> names.add(c.name()));
    names.add(FAILURE);
    names.add(PENDING_REQUESTS);
    return names;
  }
}
