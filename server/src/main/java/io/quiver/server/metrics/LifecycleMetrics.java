package io.quiver.server.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.quiver.lifecycle.LifecycleListener;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.VersionMemory;
import java.util.Map;
import java.util.TreeSet;

/**
 * Metrics of the model lifecycle's own work (docs/metrics.md, docs/lifecycle.md): loads on demand,
 * evictions by cause, cold-start latency, requests waiting for a load, and memory per resident
 * version, used and budgeted. Counters and the histogram are recorded through
 * {@link LifecycleListener} on lifecycle threads (never on the request path); the gauges are read
 * from the {@link ModelManager} at scrape time. Thread-safe.
 */
public final class LifecycleMetrics implements LifecycleListener {
  /** Cold starts: 10 ms to 5 min. */
  static final double[] COLD_START_BUCKETS_SECONDS = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

  private final Counter onDemandLoads;
  private final Counter evictions;
  private final Counter waits;
  private final Histogram coldStart;

  public LifecycleMetrics(PrometheusRegistry registry, ModelManager models) {
    onDemandLoads = Counter.builder().name("quiver_model_ondemand_loads")
        .help("Model loads started by requests (lazy mode, or a model evicted under the memory budget), by outcome (ok, failed)")
        .labelNames("model", "outcome").register(registry);
    evictions = Counter.builder().name("quiver_model_evictions")
        .help("Models evicted without an operator asking, by cause (memory_budget: room for another model; "
            + "over_budget_after_load: a load measured more than estimated)")
        .labelNames("model", "cause").register(registry);
    waits = Counter.builder().name("quiver_model_ondemand_waits")
        .help("Requests that waited for an on-demand load, by how the wait ended (served, timeout, failed, cancelled, rejected)")
        .labelNames("outcome").register(registry);
    coldStart = Histogram.builder().name("quiver_model_cold_start_seconds")
        .help("From the first request parked for a model that was not resident to the end of its load")
        .classicOnly().classicUpperBounds(COLD_START_BUCKETS_SECONDS).register(registry);
    GaugeWithCallback.builder().name("quiver_model_memory_bytes")
        .help("What each resident model version costs: its runtime's own report, else the resident-set growth measured "
            + "while it loaded, never less than its files' size")
        .labelNames("model", "version")
        .callback(cb -> {
          TreeSet<String> names = new TreeSet<>(models.loadedModels());
          for (String name : names) {
            for (Map.Entry<Long, VersionMemory> e : models.memory(name).entrySet()) {
              cb.call(e.getValue().bytes(), name, Long.toString(e.getKey()));
            }
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("quiver_model_memory_used_bytes")
        .help("Memory held by loaded model versions, all together (what the memory budget counts)")
        .callback(cb -> cb.call(models.memoryUsedBytes())).register(registry);
    GaugeWithCallback.builder().name("quiver_model_memory_budget_bytes")
        .help("The memory budget of loaded model versions (--model-memory-budget); 0 = none")
        .callback(cb -> cb.call(models.memoryBudgetBytes())).register(registry);
    GaugeWithCallback.builder().name("quiver_model_ondemand_waiting_requests")
        .help("Requests waiting for their model to load on demand")
        .callback(cb -> cb.call(models.waitingRequests())).register(registry);
    GaugeWithCallback.builder().name("quiver_model_resident")
        .help("Models with at least one READY version (resident), of those known to the server")
        .callback(cb -> {
          int resident = 0;
          for (String name : models.loadedModels()) {
            resident += models.isReady(name, "") ? 1 : 0;
          }
          cb.call(resident);
        }).register(registry);
  }

  @Override
  public void loadedOnDemand(String model, boolean ok, long nanos, long coldStartNanos, int waiters) {
    onDemandLoads.labelValues(model, ok ? "ok" : "failed").inc();
    if (ok) {
      coldStart.observe(coldStartNanos / 1e9);
    }
  }

  @Override
  public void evicted(String model, long bytes, EvictionCause cause) {
    evictions.labelValues(model, cause.label()).inc();
  }

  @Override
  public void waitEnded(String model, String outcome) {
    waits.labelValues(outcome).inc();
  }
}
