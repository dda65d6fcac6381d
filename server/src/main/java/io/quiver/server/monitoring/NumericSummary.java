package io.quiver.server.monitoring;

import io.quiver.proto.monitoring.v1.FeatureProfile;
import io.quiver.proto.monitoring.v1.FeatureStats;
import io.quiver.proto.monitoring.v1.Quantile;
import org.apache.datasketches.kll.KllFloatsSketch;
import org.apache.datasketches.memory.Memory;
import org.apache.datasketches.quantilescommon.QuantileSearchCriteria;

/**
 * Streaming statistics of one numeric feature: counts of values, NaNs, infinities and zeros; mean and
 * variance of the finite values (Welford, merged with Chan et al.'s formula); min and max; values
 * outside a reference's range; and a KLL quantile sketch of the finite values (Apache DataSketches,
 * k = {@link #SKETCH_K}: normalized rank error {@value #RANK_ERROR_PERCENT}% at 99% confidence).
 * Not thread-safe: owned by the monitoring thread (or one reference builder).
 */
final class NumericSummary {
  /** KLL accuracy parameter: DataSketches' default; a full sketch holds a few thousand floats (≈ 3 KiB). */
  static final int SKETCH_K = 200;
  /** KllSketch.getNormalizedRankError(200, true), in percent: the documented error of a quantile's rank. */
  static final String RANK_ERROR_PERCENT = "1.65";
  /** Ranks whose quantiles the reports show. */
  static final double[] REPORT_RANKS = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};

  long count;
  long nan;
  long inf;
  long zero;
  long finite;
  double mean;
  double m2;
  double min = Double.POSITIVE_INFINITY;
  double max = Double.NEGATIVE_INFINITY;
  long outOfRange;
  final KllFloatsSketch sketch;

  NumericSummary() {
    this(KllFloatsSketch.newHeapInstance(SKETCH_K));
  }

  private NumericSummary(KllFloatsSketch sketch) {
    this.sketch = sketch;
  }

  /**
   * Counts one value into the moments and counters (not the sketch: see {@link #sketchValue}).
   *
   * @param low the reference's minimum (-inf without a reference)
   * @param high the reference's maximum (+inf without a reference)
   * @return whether the value is finite (and should go into the sketch)
   */
  boolean add(double v, double low, double high) {
    count++;
    if (v != v) {
      nan++;
      return false;
    }
    if (v < low || v > high) {
      outOfRange++;
    }
    if (v == Double.POSITIVE_INFINITY || v == Double.NEGATIVE_INFINITY) {
      inf++;
      return false;
    }
    if (v == 0) {
      zero++;
    }
    finite++;
    double delta = v - mean;
    mean += delta / finite;
    m2 += delta * (v - mean);
    if (v < min) {
      min = v;
    }
    if (v > max) {
      max = v;
    }
    return true;
  }

  /** The float the sketch keeps for a finite value (doubles beyond float range are clamped, not made infinite). */
  static float sketchValue(double v) {
    return (float) Math.max(-Float.MAX_VALUE, Math.min(Float.MAX_VALUE, v));
  }

  double variance() {
    return finite > 1 ? m2 / (finite - 1) : 0;
  }

  /** Adds another summary's values to this one. */
  void merge(NumericSummary other) {
    if (other.count == 0) {
      return;
    }
    count += other.count;
    nan += other.nan;
    inf += other.inf;
    zero += other.zero;
    outOfRange += other.outOfRange;
    if (other.finite > 0) {
      long n = finite + other.finite;
      double delta = other.mean - mean;
      mean += delta * other.finite / n;
      m2 += other.m2 + delta * delta * ((double) finite * other.finite / n);
      finite = n;
      min = Math.min(min, other.min);
      max = Math.max(max, other.max);
    }
    if (!other.sketch.isEmpty()) {
      sketch.merge(other.sketch);
    }
  }

  void reset() {
    count = nan = inf = zero = finite = outOfRange = 0;
    mean = m2 = 0;
    min = Double.POSITIVE_INFINITY;
    max = Double.NEGATIVE_INFINITY;
    sketch.reset();
  }

  /** An independent copy (the sketch through its serialized form). */
  NumericSummary copy() {
    NumericSummary c = new NumericSummary(sketch.isEmpty() ? KllFloatsSketch.newHeapInstance(SKETCH_K)
        : KllFloatsSketch.heapify(Memory.wrap(sketch.toByteArray())));
    c.count = count;
    c.nan = nan;
    c.inf = inf;
    c.zero = zero;
    c.finite = finite;
    c.mean = mean;
    c.m2 = m2;
    c.min = min;
    c.max = max;
    c.outOfRange = outOfRange;
    return c;
  }

  FeatureStats toStats() {
    FeatureStats.Builder b = FeatureStats.newBuilder().setCount(count).setNanCount(nan).setInfCount(inf)
        .setZeroCount(zero).setOutOfRangeCount(outOfRange);
    if (finite > 0) {
      b.setMean(mean).setStddev(Math.sqrt(variance())).setMin(min).setMax(max);
    } else {
      b.setMean(Double.NaN).setStddev(Double.NaN).setMin(Double.NaN).setMax(Double.NaN);
    }
    if (!sketch.isEmpty()) {
      float[] q = sketch.getQuantiles(REPORT_RANKS, QuantileSearchCriteria.INCLUSIVE);
      for (int i = 0; i < q.length; i++) {
        b.addQuantiles(Quantile.newBuilder().setRank(REPORT_RANKS[i]).setValue(q[i]));
      }
    }
    return b.build();
  }

  FeatureProfile toProfile() {
    return FeatureProfile.newBuilder().setCount(count).setNanCount(nan).setInfCount(inf).setZeroCount(zero)
        .setFiniteCount(finite).setMean(mean).setM2(m2).setMin(min).setMax(max)
        .setKll(com.google.protobuf.ByteString.copyFrom(sketch.toByteArray())).build();
  }

  static NumericSummary fromProfile(FeatureProfile p) {
    NumericSummary s = new NumericSummary(p.getKll().isEmpty() ? KllFloatsSketch.newHeapInstance(SKETCH_K)
        : KllFloatsSketch.heapify(Memory.wrap(p.getKll().toByteArray())));
    s.count = p.getCount();
    s.nan = p.getNanCount();
    s.inf = p.getInfCount();
    s.zero = p.getZeroCount();
    s.finite = p.getFiniteCount();
    s.mean = p.getMean();
    s.m2 = p.getM2();
    s.min = p.getMin();
    s.max = p.getMax();
    return s;
  }
}
