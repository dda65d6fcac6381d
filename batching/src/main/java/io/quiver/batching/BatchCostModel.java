package io.quiver.batching;

/**
 * A model of a batch's compute time, {@code t(rows) = alpha + beta * rows}, fitted by exponentially
 * weighted least squares over the batches measured so far. Owned by one thread at a time (the
 * batcher's dispatch owner); not thread-safe; no allocation.
 */
final class BatchCostModel {
  /** Weight kept by older samples per new batch. */
  static final double DECAY = 0.98;

  private double s0, sb, st, sbb, sbt; // decayed sums for the least-squares fit
  private double alpha, beta;
  private boolean spreadFit; // the fit saw different batch sizes, so alpha and beta are both meaningful
  private long samples;

  /** One batch of {@code rows} took {@code computeNanos}. */
  void add(int rows, long computeNanos) {
    double d = DECAY;
    s0 = s0 * d + 1;
    sb = sb * d + rows;
    st = st * d + computeNanos;
    sbb = sbb * d + (double) rows * rows;
    sbt = sbt * d + (double) rows * computeNanos;
    samples++;
    fit();
  }

  /** Batches measured so far. */
  long samples() {
    return samples;
  }

  /** Predicted compute nanos of a batch of {@code rows}; 0 before any batch was measured. */
  double predictNanos(int rows) {
    return alpha + beta * rows;
  }

  double alpha() {
    return alpha;
  }

  double beta() {
    return beta;
  }

  /** Whether the fit has seen batches of different sizes (so that alpha and beta are both meaningful). */
  boolean spreadFit() {
    return spreadFit;
  }

  private void fit() {
    double meanB = sb / s0;
    double varB = sbb / s0 - meanB * meanB;
    if (varB > 0.25) { // batch sizes differ by about a row or more: slope and intercept are identifiable
      double b = (sbt / s0 - meanB * (st / s0)) / varB;
      double a = st / s0 - b * meanB;
      if (b >= 0 && a >= 0) {
        alpha = a;
        beta = b;
        spreadFit = true;
        return;
      }
    }
    if (!spreadFit) {
      // One batch size seen so far: charge it all per row, which over-estimates big batches and so
      // errs towards latency (and towards not running inline). A spread fit, once had, is kept.
      alpha = 0;
      beta = sb > 0 ? st / sb : 0;
    }
  }
}
