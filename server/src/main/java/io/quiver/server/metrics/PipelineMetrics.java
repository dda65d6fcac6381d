package io.quiver.server.metrics;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.quiver.cache.CacheMetrics;
import io.quiver.cache.ResponseCache;
import io.quiver.core.ErrorCode;
import io.quiver.pipeline.StepListener;
import java.util.List;

/**
 * Metrics of ensembles and of the response cache (names and labels: docs/metrics.md). Per-step label
 * children are resolved once per loaded ensemble version and cache children once at start, so
 * recording allocates nothing. Thread-safe.
 */
public final class PipelineMetrics {
  private final Histogram stepDuration;
  private final Counter stepFailure;
  private final Counter lookups;
  private final Histogram lookupDuration;
  private final Counter redisErrors;
  private volatile ResponseCache cache;

  PipelineMetrics(PrometheusRegistry registry) {
    stepDuration = Histogram.builder().name("quiver_ensemble_step_duration_seconds")
        .help("Per ensemble step: time from handing the step to its model's scheduler to its answer (queue and compute"
            + " of the step model)")
        .labelNames("model", "version", "step", "step_model").classicOnly()
        .classicUpperBounds(ServerMetrics.LATENCY_BUCKETS_SECONDS).register(registry);
    stepFailure = Counter.builder().name("quiver_ensemble_step_failure")
        .help("Ensemble steps that failed (or were refused by their model), by reason; the ensemble request fails with them")
        .labelNames("model", "version", "step", "step_model", "reason").register(registry);
    lookups = Counter.builder().name("quiver_cache_lookups")
        .help("Response cache lookups by result (hit, miss)").labelNames("backend", "result").register(registry);
    lookupDuration = Histogram.builder().name("quiver_cache_lookup_duration_seconds")
        .help("Response cache lookup latency (hashing the request included), by result")
        .labelNames("backend", "result").classicOnly().classicUpperBounds(ServerMetrics.LATENCY_BUCKETS_SECONDS)
        .register(registry);
    redisErrors = Counter.builder().name("quiver_cache_redis_errors")
        .help("Redis lookups and stores that did not happen or failed (unavailable, timeout, error, decode); the request"
            + " ran its model instead").labelNames("kind").register(registry);
    GaugeWithCallback.builder().name("quiver_cache_entries").help("Entries in the local response cache")
        .labelNames("backend").callback(cb -> {
          ResponseCache c = cache;
          if (c != null && c.entries() >= 0) {
            cb.call(c.entries(), c.kind());
          }
        }).register(registry);
    GaugeWithCallback.builder().name("quiver_cache_bytes")
        .help("Bytes the local response cache's entries are charged (data plus bookkeeping), against its bound")
        .labelNames("backend").callback(cb -> {
          ResponseCache c = cache;
          if (c != null && c.bytes() >= 0) {
            cb.call(c.bytes(), c.kind());
          }
        }).register(registry);
    CounterWithCallback.builder().name("quiver_cache_evictions")
        .help("Entries the local response cache evicted to stay within its byte bound (W-TinyLFU)")
        .labelNames("backend").callback(cb -> {
          ResponseCache c = cache;
          if (c != null && c.evictions() >= 0) {
            cb.call(c.evictions(), c.kind());
          }
        }).register(registry);
  }

  /** The cache's recorder for the {@code backend} ("local" or "redis"); children resolved here, once. */
  public CacheMetrics cacheMetrics(String backend) {
    CounterDataPoint hits = lookups.labelValues(backend, "hit");
    CounterDataPoint misses = lookups.labelValues(backend, "miss");
    DistributionDataPoint hitDuration = lookupDuration.labelValues(backend, "hit");
    DistributionDataPoint missDuration = lookupDuration.labelValues(backend, "miss");
    CounterDataPoint[] errors = new CounterDataPoint[CacheMetrics.RedisError.values().length];
    for (CacheMetrics.RedisError kind : CacheMetrics.RedisError.values()) {
      errors[kind.ordinal()] = redisErrors.labelValues(kind.label());
    }
    return new CacheMetrics() {
      @Override
      public void hit(long lookupNanos) {
        hits.inc();
        hitDuration.observe(lookupNanos * 1e-9);
      }

      @Override
      public void miss(long lookupNanos) {
        misses.inc();
        missDuration.observe(lookupNanos * 1e-9);
      }

      @Override
      public void redisError(RedisError kind) {
        errors[kind.ordinal()].inc();
      }
    };
  }

  /** Lets the scrape read the cache's entries, bytes and evictions. */
  public void bind(ResponseCache responseCache) {
    this.cache = responseCache;
  }

  /** The step listener of one loaded ensemble version (a {@link StepListener.Factory}). */
  public StepListener stepListener(String ensemble, long version, List<String> stepModels) {
    String v = Long.toString(version);
    int steps = stepModels.size();
    DistributionDataPoint[] durations = new DistributionDataPoint[steps];
    CounterDataPoint[][] failures = new CounterDataPoint[steps][ServerMetrics.Reason.values().length];
    for (int s = 0; s < steps; s++) {
      String step = Integer.toString(s);
      durations[s] = stepDuration.labelValues(ensemble, v, step, stepModels.get(s));
      for (ServerMetrics.Reason reason : ServerMetrics.Reason.values()) {
        failures[s][reason.ordinal()] = stepFailure.labelValues(ensemble, v, step, stepModels.get(s), reason.label);
      }
    }
    return new StepListener() {
      @Override
      public void stepSucceeded(int step, long nanos) {
        durations[step].observe(nanos * 1e-9);
      }

      @Override
      public void stepFailed(int step, ErrorCode code, long nanos) {
        failures[step][ServerMetrics.Reason.of(code).ordinal()].inc();
      }
    };
  }
}
