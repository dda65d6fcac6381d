package io.quiver.server.jobs;

import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.quiver.proto.jobs.v1.JobState;
import java.util.Collection;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Per-job Prometheus metrics, read at scrape time from the jobs this server knows (names:
 * docs/metrics.md): records by outcome, records per second, lag (records read but not yet committed:
 * what a crash now would redo), input progress, and jobs by state. Nothing is recorded on the request
 * path. Thread-safe (scrapes run on the exporter's threads and read the jobs' atomics).
 */
final class JobMetrics {
  JobMetrics(PrometheusRegistry registry, Supplier<Collection<BatchJob>> jobs) {
    CounterWithCallback.builder().name("quiver_job_records")
        .help("Records of a batch job that finished, by outcome (succeeded, failed); committed and not yet committed")
        .labelNames("job", "model", "outcome")
        .callback(cb -> {
          for (BatchJob j : jobs.get()) {
            cb.call(j.succeeded.get(), j.id, j.spec.getModel(), "succeeded");
            cb.call(j.failed.get(), j.id, j.spec.getModel(), "failed");
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("quiver_job_records_per_second")
        .help("Records per second of a batch job: over the last few seconds while it runs, the average once finished")
        .labelNames("job", "model")
        .callback(cb -> {
          for (BatchJob j : jobs.get()) {
            cb.call(j.recordsPerSecond(), j.id, j.spec.getModel());
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("quiver_job_lag_records")
        .help("Records of a batch job read from its input but not yet in a committed output chunk")
        .labelNames("job", "model")
        .callback(cb -> {
          for (BatchJob j : jobs.get()) {
            cb.call(j.isFinished() ? 0 : j.lagRecords(), j.id, j.spec.getModel());
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("quiver_job_input_progress_ratio")
        .help("Share of a batch job's input bytes read (0 to 1)")
        .labelNames("job", "model")
        .callback(cb -> {
          for (BatchJob j : jobs.get()) {
            long total = j.bytesTotal;
            double ratio = j.state() == JobState.SUCCEEDED ? 1.0 : total <= 0 ? 0.0 : Math.min(1.0, (double) j.bytesRead / total);
            cb.call(ratio, j.id, j.spec.getModel());
          }
        })
        .register(registry);
    GaugeWithCallback.builder().name("quiver_jobs")
        .help("Batch jobs this server knows, by state")
        .labelNames("state")
        .callback(cb -> {
          Map<JobState, Integer> counts = new EnumMap<>(JobState.class);
          for (JobState s : JobState.values()) {
            if (s != JobState.UNRECOGNIZED && s != JobState.JOB_STATE_UNSPECIFIED) {
              counts.put(s, 0);
            }
          }
          for (BatchJob j : jobs.get()) {
            counts.merge(j.state(), 1, Integer::sum);
          }
          counts.forEach((s, n) -> cb.call(n, s.name()));
        })
        .register(registry);
  }
}
