package io.quiver.core;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * Cumulative statistics of one model version, with Triton's meaning: per-request success, failure and
 * queue durations, per-request shares of compute time, and per-batch-size execution counts and
 * times. Recording is lock-free and allocation-free; any thread may record or read.
 */
public final class InferenceStats {
  /** A count and a total duration in nanoseconds. */
  public static final class Duration {
    private final LongAdder count = new LongAdder();
    private final LongAdder nanos = new LongAdder();

    public void record(long durationNanos) {
      count.increment();
      nanos.add(durationNanos);
    }

    public long count() {
      return count.sum();
    }

    public long nanos() {
      return nanos.sum();
    }
  }

  private final Duration success = new Duration();
  private final Duration fail = new Duration();
  private final Duration queue = new Duration();
  private final Duration computeInput = new Duration();
  private final Duration computeInfer = new Duration();
  private final Duration computeOutput = new Duration();
  private final Duration cacheHit = new Duration();
  private final Duration cacheMiss = new Duration();
  private final LongAdder inferenceCount = new LongAdder();
  private final LongAdder executionCount = new LongAdder();
  private final AtomicLong lastInferenceMillis = new AtomicLong();
  // Index = batch size (rows); index 0 unused. Each slot: [count, inputNs, inferNs, outputNs].
  private final int maxBatchRows;
  private final AtomicLongArray batchSlots;

  /** @param maxBatchRows largest batch (in rows) the scheduler can form; at least 1 */
  public InferenceStats(int maxBatchRows) {
    this.maxBatchRows = Math.max(1, maxBatchRows);
    this.batchSlots = new AtomicLongArray((this.maxBatchRows + 1) * 4);
  }

  /** A request finished successfully: {@code totalNanos} end to end, of which {@code queueNanos} waiting. */
  public void recordSuccess(long totalNanos, long queueNanos, long inputNanos, long inferNanos, long outputNanos) {
    success.record(totalNanos);
    queue.record(queueNanos);
    computeInput.record(inputNanos);
    computeInfer.record(inferNanos);
    computeOutput.record(outputNanos);
  }

  /**
   * A request was answered from the response cache (Triton's cache_hit): {@code lookupNanos} to find and
   * read the entry. It also counts as a success (Triton counts hits in success, not in executions).
   */
  public void recordCacheHit(long lookupNanos, long totalNanos) {
    cacheHit.record(lookupNanos);
    success.record(totalNanos);
  }

  /** The response cache had no entry for a request (Triton's cache_miss): lookup plus insertion time. */
  public void recordCacheMiss(long nanos) {
    cacheMiss.record(nanos);
  }

  /** A request failed after it was accepted (timeout, cancellation, runtime error). */
  public void recordFailure(long totalNanos) {
    fail.record(totalNanos);
  }

  /** A batch of {@code rows} rows ran; inference_count grows by the rows, execution_count by one. */
  public void recordExecution(int rows, long inputNanos, long inferNanos, long outputNanos, long wallClockMillis) {
    inferenceCount.add(rows);
    executionCount.increment();
    lastInferenceMillis.accumulateAndGet(wallClockMillis, Math::max);
    if (rows >= 1 && rows <= maxBatchRows) {
      int base = rows * 4;
      batchSlots.incrementAndGet(base);
      batchSlots.addAndGet(base + 1, inputNanos);
      batchSlots.addAndGet(base + 2, inferNanos);
      batchSlots.addAndGet(base + 3, outputNanos);
    }
  }

  public Duration success() { return success; }
  public Duration fail() { return fail; }
  public Duration queue() { return queue; }
  public Duration computeInput() { return computeInput; }
  public Duration computeInfer() { return computeInfer; }
  public Duration computeOutput() { return computeOutput; }
  public Duration cacheHit() { return cacheHit; }
  public Duration cacheMiss() { return cacheMiss; }
  public long inferenceCount() { return inferenceCount.sum(); }
  public long executionCount() { return executionCount.sum(); }
  public long lastInferenceMillis() { return lastInferenceMillis.get(); }
  public int maxBatchRows() { return maxBatchRows; }

  /** Executions that ran with exactly {@code rows} rows. */
  public long batchCount(int rows) { return batchSlots.get(rows * 4); }
  public long batchInputNanos(int rows) { return batchSlots.get(rows * 4 + 1); }
  public long batchInferNanos(int rows) { return batchSlots.get(rows * 4 + 2); }
  public long batchOutputNanos(int rows) { return batchSlots.get(rows * 4 + 3); }
}
