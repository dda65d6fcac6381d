package io.quiver.batching;

import io.quiver.core.ModelSignature;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * Assembles a {@link DynamicBatcher}: the model, its runner instances, and the knobs tests and
 * benchmarks turn (clock, idle strategy, shutdown timeout). Not thread-safe; {@link #build()} starts
 * the threads.
 */
public final class DynamicBatcherBuilder {
  /** Longest the agent sleeps between duty cycles when nothing wakes it, in nanoseconds. */
  public static final long DEFAULT_MAX_PARK_NS = TimeUnit.MILLISECONDS.toNanos(1);
  /**
   * Longest agent sleep when it has no timer pending (nothing queued with a delay or deadline):
   * producers, workers and close() unpark it, so this is only a safety net. Waking every
   * {@link #DEFAULT_MAX_PARK_NS} instead cost each idle model version 1,000 wake-ups a second.
   */
  public static final long DEFAULT_IDLE_PARK_NS = TimeUnit.MILLISECONDS.toNanos(100);
  /** How long {@link DynamicBatcher#close()} keeps dispatching queued requests before failing the rest. */
  public static final long DEFAULT_SHUTDOWN_TIMEOUT_NS = TimeUnit.SECONDS.toNanos(30);

  String modelName;
  long version;
  ModelSignature signature;
  BatchingPolicy policy;
  List<ModelRunner> runners;
  NanoClock clock = NanoClock.SYSTEM;
  AgentIdleStrategy idleStrategy = new BackoffIdleStrategy();
  long maxParkNanos = DEFAULT_MAX_PARK_NS;
  long idleParkNanos = DEFAULT_IDLE_PARK_NS;
  long shutdownTimeoutNanos = DEFAULT_SHUTDOWN_TIMEOUT_NS;
  boolean startAgentThread = true;

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

  /** The version's instances; each gets its own worker thread. At least one. */
  public DynamicBatcherBuilder runners(List<ModelRunner> runners) {
    this.runners = List.copyOf(runners);
    return this;
  }

  /** The clock for enqueue times, delays and timeouts; must share the time base of request deadlines. */
  public DynamicBatcherBuilder clock(NanoClock clock) {
    this.clock = Objects.requireNonNull(clock, "clock");
    return this;
  }

  public DynamicBatcherBuilder idleStrategy(AgentIdleStrategy idleStrategy) {
    this.idleStrategy = Objects.requireNonNull(idleStrategy, "idleStrategy");
    return this;
  }

  /** Longest agent sleep without a wake-up (real nanoseconds); bounds how late a timer can be seen. */
  public DynamicBatcherBuilder maxParkNanos(long maxParkNanos) {
    if (maxParkNanos < 1) {
      throw new IllegalArgumentException("maxParkNanos must be >= 1; was " + maxParkNanos);
    }
    this.maxParkNanos = maxParkNanos;
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
   * For tests: with {@code false} no agent thread is started and the test drives the agent's duty
   * cycle itself (package-private {@code doWork()}), which makes batch formation deterministic.
   */
  DynamicBatcherBuilder startAgentThread(boolean start) {
    this.startAgentThread = start;
    return this;
  }

  /** Starts the worker threads and the agent thread. */
  public DynamicBatcher build() {
    if (modelName == null) {
      throw new IllegalStateException("model(...) was not set");
    }
    if (runners == null || runners.isEmpty()) {
      throw new IllegalStateException("at least one runner instance is required");
    }
    return new DynamicBatcher(this);
  }
}
