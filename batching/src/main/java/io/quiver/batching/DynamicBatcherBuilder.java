package io.quiver.batching;

import io.quiver.core.ModelSignature;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Assembles a {@link DynamicBatcher}: the model, its runner instances, where batches run (the shared
 * {@link ComputePool}) and where timers of requests without a transport thread run, plus the knobs
 * tests and benchmarks turn (clock, shutdown timeout, inline bound). Not thread-safe. A batcher starts
 * no thread of its own.
 */
public final class DynamicBatcherBuilder {
  /** How long {@link DynamicBatcher#close()} keeps dispatching queued requests before failing the rest. */
  public static final long DEFAULT_SHUTDOWN_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(30);
  /**
   * Default inline bound: a batch predicted to take at most this long runs on the transport thread that
   * formed it (no hand-off, no wake-up); anything slower goes to the compute pool, so an event loop is
   * never held longer than about this by a model.
   */
  public static final long DEFAULT_INLINE_MAX_NS = TimeUnit.MICROSECONDS.toNanos(50);

  String modelName;
  long version;
  ModelSignature signature;
  BatchingPolicy policy;
  List<ModelRunner> runners;
  NanoClock clock = NanoClock.SYSTEM;
  long shutdownTimeoutNanos = DEFAULT_SHUTDOWN_TIMEOUT_NS;
  long inlineMaxNanos = DEFAULT_INLINE_MAX_NS;
  Executor compute;
  ScheduledExecutorService timer;
  boolean manualDispatch;

  DynamicBatcherBuilder() {}

  /** The model version and its config; reads the policy from {@code config} (INVALID_ARGUMENT when bad). */
  public DynamicBatcherBuilder model(String modelName, long version, ModelConfig config, ModelSignature signature) {
    return model(modelName, version, BatchingPolicy.from(config), signature);
  }

  public DynamicBatcherBuilder model(String modelName, long version, BatchingPolicy policy, ModelSignature signature) {
    this.modelName = Objects.requireNonNull(modelName, "modelName");
    this.version = version;
    this.policy = Objects.requireNonNull(policy, "policy");
    this.signature = Objects.requireNonNull(signature, "signature");
    return this;
  }

  /** The version's instances; each runs one batch at a time. At least one. */
  public DynamicBatcherBuilder runners(List<ModelRunner> runners) {
    this.runners = List.copyOf(runners);
    return this;
  }

  /** The clock for enqueue times, delays and timeouts; must share the time base of request deadlines. */
  public DynamicBatcherBuilder clock(NanoClock clock) {
    this.clock = Objects.requireNonNull(clock, "clock");
    return this;
  }

  /** Where batches run when they do not run inline: normally the server's shared {@link ComputePool}. */
  public DynamicBatcherBuilder compute(Executor compute) {
    this.compute = Objects.requireNonNull(compute, "compute");
    return this;
  }

  /**
   * Where queue-delay and deadline timers run when no transport thread is at hand (a compute thread
   * that must wait for partners, requests without a transport). Shared by a server's batchers.
   */
  public DynamicBatcherBuilder timer(ScheduledExecutorService timer) {
    this.timer = Objects.requireNonNull(timer, "timer");
    return this;
  }

  /** The server's default inline bound (a model's {@code quiver.inline_max_us} overrides it); 0 = never inline. */
  public DynamicBatcherBuilder inlineMaxNanos(long inlineMaxNanos) {
    if (inlineMaxNanos < 0) {
      throw new IllegalArgumentException("inlineMaxNanos must be >= 0; was " + inlineMaxNanos);
    }
    this.inlineMaxNanos = inlineMaxNanos;
    return this;
  }

  /** How long close() keeps dispatching before it fails what is still queued (real nanoseconds). */
  public DynamicBatcherBuilder shutdownTimeoutNanos(long shutdownTimeoutNanos) {
    if (shutdownTimeoutNanos < 0) {
      throw new IllegalArgumentException("shutdownTimeoutNanos must be >= 0; was " + shutdownTimeoutNanos);
    }
    this.shutdownTimeoutNanos = shutdownTimeoutNanos;
    return this;
  }

  /**
   * For tests: only the package-private {@code doWork()} dispatches (no dispatch at submit, no
   * continuation on compute threads, no timers), which makes batch formation deterministic. Batches
   * still run on the {@link #compute} executor.
   */
  DynamicBatcherBuilder manualDispatch() {
    this.manualDispatch = true;
    return this;
  }

  public DynamicBatcher build() {
    if (modelName == null) {
      throw new IllegalStateException("model(...) was not set");
    }
    if (runners == null || runners.isEmpty()) {
      throw new IllegalStateException("at least one runner instance is required");
    }
    if (compute == null || (!manualDispatch && timer == null)) {
      throw new IllegalStateException("compute(...) and timer(...) are required (DynamicBatcherFactory provides both)");
    }
    return new DynamicBatcher(this);
  }
}
