package io.quiver.batching;

import java.util.Arrays;

/**
 * Keeps a model's p99 latency under a target by adapting the effective max batch size and queue
 * delay online. Owned by the batcher's dispatch owner (not thread-safe); allocation-free after
 * construction. See docs/batching.md for the reasoning.
 *
 * <ul>
 *   <li><b>Max batch: AIMD on measured p99</b> (as in Clipper), every {@link #PERIOD} requests. Over
 *       the target while batches are not full: the batch (or the wait for it) is the problem, so cut
 *       the max multiplicatively. Over the target while most batches are full at the max: overload,
 *       where a smaller batch would only lower throughput and lengthen the queue, so raise it. Under
 *       {@link #LOW_WATERMARK} of the target: raise it additively, to win back throughput.</li>
 *   <li><b>Delay and ceiling: a cost model</b> {@code t(b) = alpha + beta * b} of batch compute
 *       time, fitted by exponentially weighted least squares over measured batches. The queue delay
 *       becomes {@code target - 2 * t(max)} (a request may wait out the delay, then one batch already
 *       running, then run its own), clamped to [0, configured delay]; once the fit has seen a spread
 *       of batch sizes, the max is also capped where {@code t(b)} alone would exceed the target.</li>
 * </ul>
 */
final class AdaptiveBatchController {
  static final double DECREASE = 0.7;
  static final double LOW_WATERMARK = 0.8;
  /** Share of full batches in a period above which an over-target p99 is read as overload. */
  static final double SATURATED_SHARE = 0.5;
  /** Request latencies per AIMD step; the p99 is taken over exactly these. */
  static final int PERIOD = 128;

  private final long targetNanos;
  private final int configMaxRows;
  private final long configDelayNanos;

  private final BatchCostModel cost;

  private final long[] window = new long[PERIOD];
  private int windowSize;
  private int batchesInPeriod;
  private int fullBatchesInPeriod;

  private int maxRows;
  private long delayNanos;
  private long lastP99Nanos;

  /** With a cost model of its own, fed by {@link #onBatch(int, long, boolean, long[], int)}. */
  AdaptiveBatchController(long targetNanos, int configMaxRows, long configDelayNanos) {
    this(targetNanos, configMaxRows, configDelayNanos, new BatchCostModel());
  }

  /** @param cost the batcher's cost model, which the dispatch owner feeds before calling {@link #onBatch} */
  AdaptiveBatchController(long targetNanos, int configMaxRows, long configDelayNanos, BatchCostModel cost) {
    this.cost = cost;
    this.targetNanos = targetNanos;
    this.configMaxRows = configMaxRows;
    this.configDelayNanos = configDelayNanos;
    this.maxRows = configMaxRows;
    this.delayNanos = configDelayNanos;
  }

  int maxRows() {
    return maxRows;
  }

  long delayNanos() {
    return delayNanos;
  }

  long lastP99Nanos() {
    return lastP99Nanos;
  }

  /** Predicted compute nanos of a batch of {@code rows}; 0 before any batch was measured. */
  double predictNanos(int rows) {
    return cost.predictNanos(rows);
  }

  /**
   * One batch ran.
   *
   * @param full the batch was closed because it could not grow (reached the max, or the next request
   *     did not fit)
   * @param latencies end-to-end nanos of the batch's requests, first {@code count} entries
   */
  void onBatch(int rows, long computeNanos, boolean full, long[] latencies, int count) {
    cost.add(rows, computeNanos);
    onBatch(full, latencies, count);
  }

  /** One batch ran and its cost is already in the shared cost model. */
  void onBatch(boolean full, long[] latencies, int count) {
    batchesInPeriod++;
    if (full) {
      fullBatchesInPeriod++;
    }
    for (int i = 0; i < count; i++) {
      window[windowSize++] = latencies[i];
      if (windowSize == PERIOD) {
        step();
      }
    }
    recompute();
  }

  private void step() {
    Arrays.sort(window, 0, windowSize); // primitive sort of PERIOD longs: no allocation
    long p99 = window[(int) Math.ceil(windowSize * 0.99) - 1];
    lastP99Nanos = p99;
    boolean saturated = fullBatchesInPeriod >= SATURATED_SHARE * batchesInPeriod;
    if (p99 > targetNanos) {
      maxRows = saturated ? maxRows + Math.max(1, maxRows / 8) : (int) (maxRows * DECREASE);
    } else if (p99 < LOW_WATERMARK * targetNanos) {
      maxRows = maxRows + 1;
    }
    maxRows = Math.max(1, Math.min(configMaxRows, maxRows));
    windowSize = 0;
    batchesInPeriod = 0;
    fullBatchesInPeriod = 0;
  }

  private void recompute() {
    if (cost.spreadFit() && cost.beta() > 0) {
      int ceiling = (int) Math.max(1, Math.floor((targetNanos - cost.alpha()) / cost.beta()));
      maxRows = Math.min(maxRows, ceiling);
    }
    double delay = targetNanos - 2 * predictNanos(maxRows);
    delayNanos = (long) Math.max(0, Math.min(configDelayNanos, delay));
  }
}
