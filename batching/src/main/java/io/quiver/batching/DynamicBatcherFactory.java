package io.quiver.batching;

import io.quiver.core.ModelSignature;
import io.quiver.core.Timers;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import java.util.List;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Builds the scheduler of every loaded model version: a {@link SequenceBatcher} when its config has
 * sequence_batching, else a {@link DynamicBatcher}, batching or not (a model without dynamic_batching
 * gets batches of one through the same path); and owns what they share: the
 * {@link ComputePool} and one timer thread for waits that no transport thread can time. Thread-safe;
 * also registered for {@link java.util.ServiceLoader} (then sized for this machine). {@link #close()}
 * after every batcher it built is closed.
 */
public final class DynamicBatcherFactory implements SchedulerFactory, AutoCloseable {
  private final NanoClock clock;
  private final ComputePool compute;
  private final ScheduledThreadPoolExecutor timer;
  private final long inlineMaxNanos;

  /** Sized for this machine: one compute thread per usable core, the default inline bound. */
  public DynamicBatcherFactory() {
    this(ComputePool.forMachine(Runtime.getRuntime().availableProcessors()),
        DynamicBatcherBuilder.DEFAULT_INLINE_MAX_NS, NanoClock.SYSTEM);
  }

  /**
   * @param compute where batches that do not run inline run (the factory closes it)
   * @param inlineMaxNanos the default inline bound (0 = never run on a transport thread)
   */
  public DynamicBatcherFactory(ComputePool compute, long inlineMaxNanos, NanoClock clock) {
    this.clock = clock;
    this.compute = compute;
    this.inlineMaxNanos = inlineMaxNanos;
    this.timer = Timers.startedNow("quiver-batch-timer"); // not by its first user (Timers)
  }

  public ComputePool computePool() {
    return compute;
  }

  /** @throws io.quiver.core.InferenceException INVALID_ARGUMENT when the config's batching policy is invalid */
  @Override
  public InferenceScheduler create(String modelName, long version, ModelConfig config, ModelSignature signature,
      List<ModelRunner> instances) {
    if (config.hasSequenceBatching()) {
      // Triton's sequence batcher: same compute pool, timer and inline bound.
      return SequenceBatcher.builder()
          .model(modelName, version, config, signature)
          .runners(instances)
          .clock(clock)
          .compute(compute)
          .timer(timer)
          .inlineMaxNanos(inlineMaxNanos)
          .build();
    }
    return DynamicBatcher.builder()
        .model(modelName, version, config, signature)
        .runners(instances)
        .clock(clock)
        .compute(compute)
        .timer(timer)
        .inlineMaxNanos(inlineMaxNanos)
        .build();
  }

  /** Stops the timer and the compute pool (queued batches still run). Idempotent. */
  @Override
  public void close() {
    timer.shutdown();
    compute.close();
    try {
      timer.awaitTermination(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
