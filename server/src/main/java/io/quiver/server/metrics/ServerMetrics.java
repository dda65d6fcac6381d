package io.quiver.server.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.spi.InferenceScheduler;
import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToDoubleFunction;

/**
 * Every Prometheus metric of a Quiver server, in one registry of its own (names and labels:
 * docs/metrics.md). Three kinds of source:
 *
 * <ul>
 *   <li>recorded on the request path through {@link VersionMetrics} (one per model version, its label
 *       children resolved once and cached, so recording allocates nothing beyond the client library's
 *       own striped cells): outcomes, end-to-end request latency, per-execution compute-infer time and
 *       batch size;
 *   <li>read at scrape time from each READY version's {@link InferenceStats} and scheduler: Triton's
 *       cumulative queue / compute durations, inference and execution counts, pending and in-flight
 *       requests, and versions by state;
 *   <li>Triton's names for the same figures ({@link TritonMetrics}), read at scrape time too;
 *   <li>JVM, memory and GC metrics from the client's JVM instrumentation.
 * </ul>
 *
 * <p>Thread-safe. Recording methods may be called from any thread; the scrape runs on the exporter's
 * threads.
 */
public final class ServerMetrics implements AutoCloseable {
  /** Request latency buckets in seconds: 100 µs to 10 s. */
  static final double[] LATENCY_BUCKETS_SECONDS = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  /** Batch size buckets in rows. */
  static final double[] BATCH_SIZE_BUCKETS = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  /** Model load buckets in seconds. */
  static final double[] LOAD_BUCKETS_SECONDS = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

  /** The failure reasons, in label form. */
  public enum Reason {
    REJECTED, TIMEOUT, CANCELLED, INVALID, RUNTIME;

    final String label = name().toLowerCase(java.util.Locale.ROOT);

    /** The reason a failure with this code counts under. */
    public static Reason of(ErrorCode code) {
      return switch (code) {
        case RESOURCE_EXHAUSTED, UNAVAILABLE -> REJECTED;
        case DEADLINE_EXCEEDED -> TIMEOUT;
        case CANCELLED -> CANCELLED;
        case INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS, UNIMPLEMENTED, UNAUTHENTICATED,
            PERMISSION_DENIED -> INVALID;
        case INTERNAL -> RUNTIME;
      };
    }
  }

  private final PrometheusRegistry registry = new PrometheusRegistry();
  final Counter success;
  final Counter failure;
  final Histogram requestDuration;
  final Histogram computeInferDuration;
  final Histogram batchSize;
  final Histogram queueDuration;
  final Histogram requestComputeDuration;
  private final Histogram loadDuration;
  private final Counter loadFailures;
  // model name -> version number -> cached label children. Keyed by value, not by LoadedVersion, so an
  // unloaded version's runners are never kept alive by this cache.
  private final ConcurrentHashMap<String, ConcurrentHashMap<Long, VersionMetrics>> versions = new ConcurrentHashMap<>();
  private volatile ModelManager models;
  private HTTPServer exporter;
  private final PipelineMetrics pipeline;

  public ServerMetrics() {
    success = Counter.builder().name("quiver_inference_success")
        .help("Inference requests that succeeded").labelNames("model", "version").register(registry);
    failure = Counter.builder().name("quiver_inference_failure")
        .help("Inference requests that failed after they were routed to a model version, by reason "
            + "(rejected, timeout, cancelled, invalid, runtime)")
        .labelNames("model", "version", "reason").register(registry);
    requestDuration = Histogram.builder().name("quiver_request_duration_seconds")
        .help("End-to-end request latency inside the server, from routing to the response being handed to the transport")
        .labelNames("model", "version").classicOnly().classicUpperBounds(LATENCY_BUCKETS_SECONDS).register(registry);
    computeInferDuration = Histogram.builder().name("quiver_compute_infer_duration_seconds")
        .help("Time the runtime spent executing one batch (ModelRunner.run), per execution")
        .labelNames("model", "version").classicOnly().classicUpperBounds(LATENCY_BUCKETS_SECONDS).register(registry);
    batchSize = Histogram.builder().name("quiver_batch_size")
        .help("Rows per executed batch").labelNames("model", "version")
        .classicOnly().classicUpperBounds(BATCH_SIZE_BUCKETS).register(registry);
    queueDuration = Histogram.builder().name("quiver_request_queue_duration_seconds")
        .help("Per request: time from acceptance by the scheduler to the start of the batch it ran in")
        .labelNames("model", "version").classicOnly().classicUpperBounds(LATENCY_BUCKETS_SECONDS).register(registry);
    requestComputeDuration = Histogram.builder().name("quiver_request_compute_duration_seconds")
        .help("Per request: compute time of the batch it ran in, by phase (input = gather into the batch buffer, "
            + "infer = the runtime, output = slicing the outputs); Triton charges each request its batch's full times")
        .labelNames("model", "version", "phase").classicOnly().classicUpperBounds(LATENCY_BUCKETS_SECONDS)
        .register(registry);
    loadDuration = Histogram.builder().name("quiver_model_load_duration_seconds")
        .help("Duration of model load operations (startup or repository load), successful or not")
        .labelNames("model").classicOnly().classicUpperBounds(LOAD_BUCKETS_SECONDS).register(registry);
    loadFailures = Counter.builder().name("quiver_model_load_failures")
        .help("Model load operations that failed").labelNames("model").register(registry);

    statsCounter("quiver_inference_count", "Inferences performed (a batch of n rows counts n), Triton's inference_count",
        InferenceStats::inferenceCount, 1);
    statsCounter("quiver_execution_count", "Batches executed, Triton's execution_count",
        InferenceStats::executionCount, 1);
    statsCounter("quiver_queue_duration_seconds", "Cumulative time requests waited in the queue (Triton's queue.ns)",
        s -> s.queue().nanos(), 1e-9);
    statsCounter("quiver_compute_input_duration_seconds",
        "Cumulative compute-input time charged to requests (Triton's compute_input.ns)", s -> s.computeInput().nanos(), 1e-9);
    statsCounter("quiver_compute_infer_seconds",
        "Cumulative compute-infer time charged to requests (Triton's compute_infer.ns)", s -> s.computeInfer().nanos(), 1e-9);
    statsCounter("quiver_compute_output_duration_seconds",
        "Cumulative compute-output time charged to requests (Triton's compute_output.ns)", s -> s.computeOutput().nanos(), 1e-9);
    statsCounter("quiver_cache_hit_count", "Requests answered from the response cache (Triton's cache_hit.count)",
        s -> s.cacheHit().count(), 1);
    statsCounter("quiver_cache_miss_count", "Response cache lookups that found nothing (Triton's cache_miss.count)",
        s -> s.cacheMiss().count(), 1);
    pipeline = new PipelineMetrics(registry);
    GaugeWithCallback.builder().name("quiver_pending_requests")
        .help("Requests accepted by a model version's scheduler and not yet started").labelNames("model", "version")
        .callback(cb -> forEachReady((v, s) -> cb.call(s.queuedRequests(), v.name(), v.versionLabel())))
        .register(registry);
    GaugeWithCallback.builder().name("quiver_inflight_requests")
        .help("Requests accepted by a model version's scheduler and not yet answered (queued or running)")
        .labelNames("model", "version")
        .callback(cb -> forEachReady((v, s) -> cb.call(s.inFlightRequests(), v.name(), v.versionLabel())))
        .register(registry);
    GaugeWithCallback.builder().name("quiver_model_versions")
        .help("Model versions known to the server, by state (READY, LOADING, UNLOADING, UNAVAILABLE)")
        .labelNames("state")
        .callback(cb -> {
          ModelManager m = models;
          Map<ModelVersionStatus.State, Integer> counts = new EnumMap<>(ModelVersionStatus.State.class);
          for (ModelVersionStatus.State state : ModelVersionStatus.State.values()) {
            counts.put(state, 0);
          }
          if (m != null) {
            for (ModelVersionStatus status : m.index()) {
              counts.merge(status.state(), 1, Integer::sum);
            }
          }
          counts.forEach((state, n) -> cb.call(n, state.name()));
        })
        .register(registry);
    // Triton's names and labels beside ours, read at scrape time from the same sources (docs/metrics.md).
    registry.register(new TritonMetrics(this));
    JvmMetrics.builder().register(registry);
  }

  private void statsCounter(String name, String help, ToDoubleFunction<InferenceStats> read, double scale) {
    CounterWithCallback.builder().name(name).help(help).labelNames("model", "version")
        .callback(cb -> forEachReady((v, s) -> cb.call(read.applyAsDouble(s.stats()) * scale, v.name(), v.versionLabel())))
        .register(registry);
  }

  interface VersionVisitor {
    void visit(LoadedVersion version, InferenceScheduler scheduler);
  }

  /** Scrape time: visits every READY version, holding it while it is read. */
  void forEachReady(VersionVisitor visitor) {
    ModelManager m = models;
    if (m == null) {
      return;
    }
    for (ModelVersionStatus status : m.index()) {
      if (status.state() != ModelVersionStatus.State.READY) {
        continue;
      }
      LoadedVersion version;
      try {
        version = m.acquire(status.name(), status.version());
      } catch (InferenceException e) {
        continue; // unloaded since the index was read
      }
      try {
        visitor.visit(version, version.scheduler());
      } finally {
        version.release();
      }
    }
  }

  /**
   * The cumulative figures of these versions now, for the web console's live view: one collection of
   * the failure counter and of the two histograms (as a scrape does), read only when someone asks, so
   * nothing here touches the request path. Allocates the result.
   */
  public List<VersionSample> sample(List<LoadedVersion> loaded) {
    Map<String, Map<String, Long>> failures = new java.util.HashMap<>();
    for (var point : failure.collect().getDataPoints()) {
      failures.computeIfAbsent(key(point.getLabels().get("model"), point.getLabels().get("version")),
          k -> new java.util.TreeMap<>()).put(point.getLabels().get("reason"), (long) point.getValue());
    }
    Map<String, VersionSample.Buckets> latency = buckets(requestDuration);
    Map<String, VersionSample.Buckets> queueWait = buckets(queueDuration);
    List<VersionSample> out = new ArrayList<>(loaded.size());
    for (LoadedVersion v : loaded) {
      InferenceStats s = v.stats();
      Map<Integer, Long> batches = new java.util.TreeMap<>();
      for (int rows = 1; rows <= s.maxBatchRows(); rows++) {
        long n = s.batchCount(rows);
        if (n > 0) {
          batches.put(rows, n);
        }
      }
      String key = key(v.name(), v.versionLabel());
      Map<String, Long> byReason = new java.util.TreeMap<>();
      for (Reason reason : Reason.values()) {
        byReason.put(reason.label, 0L);
      }
      byReason.putAll(failures.getOrDefault(key, Map.of()));
      out.add(new VersionSample(v.name(), v.version(), s.success().count(), s.success().nanos(), s.fail().count(),
          byReason, s.queue().nanos(), s.computeInput().nanos() + s.computeInfer().nanos() + s.computeOutput().nanos(),
          s.inferenceCount(), s.executionCount(), batches, v.scheduler().queuedRequests(),
          v.scheduler().inFlightRequests(), latency.getOrDefault(key, VersionSample.Buckets.EMPTY),
          queueWait.getOrDefault(key, VersionSample.Buckets.EMPTY)));
    }
    return out;
  }

  private static String key(String model, String version) {
    return model + '\n' + version;
  }

  private static Map<String, VersionSample.Buckets> buckets(Histogram histogram) {
    Map<String, VersionSample.Buckets> out = new java.util.HashMap<>();
    for (var point : histogram.collect().getDataPoints()) {
      var classic = point.getClassicBuckets();
      double[] bounds = new double[classic.size()];
      long[] counts = new long[classic.size()];
      for (int i = 0; i < bounds.length; i++) {
        bounds[i] = classic.getUpperBound(i);
        counts[i] = classic.getCount(i);
      }
      out.put(key(point.getLabels().get("model"), point.getLabels().get("version")),
          new VersionSample.Buckets(bounds, counts));
    }
    return out;
  }

  /** Lets the scrape-time collectors read the models. Call once, before the models start. */
  public void bind(ModelManager manager) {
    this.models = manager;
  }

  /** Ensemble step and response cache metrics. */
  public PipelineMetrics pipeline() {
    return pipeline;
  }

  /** The registry (tests and custom exporters). */
  public PrometheusRegistry registry() {
    return registry;
  }

  /**
   * The cached label children of one model version. Lock-free after the first call for a version;
   * allocates nothing then (small version numbers are boxed from the Long cache).
   */
  public VersionMetrics forVersion(String model, long version) {
    ConcurrentHashMap<Long, VersionMetrics> byVersion = versions.get(model);
    if (byVersion == null) {
      byVersion = versions.computeIfAbsent(model, k -> new ConcurrentHashMap<>());
    }
    VersionMetrics metrics = byVersion.get(version);
    if (metrics == null) {
      metrics = byVersion.computeIfAbsent(version, v -> new VersionMetrics(this, model, Long.toString(v)));
    }
    return metrics;
  }

  /** Records one model load operation (startup or repository load). */
  public void recordLoad(String model, long nanos, boolean failed) {
    loadDuration.labelValues(model).observe(nanos / 1e9);
    if (failed) {
      loadFailures.labelValues(model).inc();
    }
  }

  /** Models that are UNAVAILABLE after startup with a reason other than "not loaded" count as failed loads. */
  public void recordStartup(ModelManager manager, long nanos) {
    List<String> failed = new ArrayList<>();
    for (ModelVersionStatus status : manager.index()) {
      // Not failures: models never asked for, and (lazy mode, memory budget) models that load on demand.
      if (status.state() == ModelVersionStatus.State.UNAVAILABLE && !"not loaded".equals(status.reason())
          && !manager.isOnDemandOnly(status.name())) {
        failed.add(status.name());
      }
    }
    for (String model : failed) {
      loadFailures.labelValues(model).inc();
    }
    loadDuration.labelValues("").observe(nanos / 1e9);
  }

  /** Serves /metrics on the port (0 = any free one). */
  public void startExporter(String host, int port) throws IOException {
    exporter = HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart();
  }

  /** The bound exporter port, or -1 when not exporting. */
  public int exporterPort() {
    return exporter == null ? -1 : exporter.getPort();
  }

  @Override
  public void close() {
    if (exporter != null) {
      exporter.close();
      exporter = null;
    }
  }
}
