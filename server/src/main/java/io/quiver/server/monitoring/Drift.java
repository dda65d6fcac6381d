package io.quiver.server.monitoring;

import io.quiver.proto.monitoring.v1.FeatureWindow;
import org.apache.datasketches.kll.KllFloatsSketch;
import org.apache.datasketches.quantilescommon.KolmogorovSmirnov;
import org.apache.datasketches.quantilescommon.QuantileSearchCriteria;

/**
 * Drift and data-quality scores of one feature in one window against its reference, all read from the
 * sketches and counters (no stored values):
 *
 * <ul>
 *   <li>PSI, Σ (a − e) · ln(a / e) over bins: for numeric features the reference's {@code psi_bins}
 *       quantiles cut the line (ties merged), e and a are the reference's and the window's shares per
 *       bin read from their KLL sketches; for categorical ones the bins are the reference's most
 *       frequent categories plus "other". Shares are floored at {@value #PSI_FLOOR} so that an empty
 *       bin scores high instead of infinite.
 *   <li>KS, the Kolmogorov-Smirnov distance between the two KLL sketches (DataSketches'
 *       {@code KolmogorovSmirnov.computeKSDelta}); flagged only above both {@code ks_threshold} and the
 *       test's critical value at {@code ks_p_value} for the two sizes plus the sketches' rank errors
 *       ({@link #ksCriticalValue}), so small windows do not flag on noise. Not defined for categorical
 *       features (NaN).
 *   <li>Out-of-range rate: values outside the reference's [min, max] (categorical: categories the
 *       reference never saw) over values in the window.
 *   <li>NaN rate (categorical: empty values), flagged when it exceeds the reference's by more than
 *       {@code nan_threshold}.
 * </ul>
 *
 * Stateless; called on the monitoring thread.
 */
final class Drift {
  static final double PSI_FLOOR = 1e-4;

  private Drift() {}

  /** Shares of the sketch's items in the bins that {@code edges} cut ((-inf, e0], (e0, e1], ..., (ek, inf)). */
  static double[] binProportions(KllFloatsSketch sketch, float[] edges) {
    if (edges.length == 0) {
      return new double[] {1.0};
    }
    double[] cdf = sketch.getCDF(edges, QuantileSearchCriteria.INCLUSIVE);
    double[] p = new double[cdf.length];
    double previous = 0;
    for (int i = 0; i < cdf.length; i++) {
      p[i] = Math.max(0, cdf[i] - previous);
      previous = cdf[i];
    }
    return p;
  }

  /**
   * The two-sample Kolmogorov-Smirnov critical value at significance {@code pValue} for the sketches'
   * item counts n and m, c(α) · √((n + m) / (n · m)) with c(α) = √(−ln(α / 2) / 2), plus both sketches'
   * normalized rank errors (what a sketch may add to the distance). DataSketches'
   * {@code computeKSThreshold} sizes the first term by the items a sketch retains rather than by the
   * items it saw, which stays near 0.15 however large the window: too blunt for a half-sd shift.
   */
  static double ksCriticalValue(KllFloatsSketch reference, KllFloatsSketch window, double pValue) {
    double n = reference.getN();
    double m = window.getN();
    double c = Math.sqrt(-0.5 * Math.log(pValue / 2));
    return c * Math.sqrt((n + m) / (n * m)) + reference.getNormalizedRankError(false)
        + window.getNormalizedRankError(false);
  }

  static double psi(double[] expected, double[] actual) {
    double sum = 0;
    for (int i = 0; i < expected.length; i++) {
      double e = Math.max(PSI_FLOOR, expected[i]);
      double a = Math.max(PSI_FLOOR, actual[i]);
      sum += (a - e) * Math.log(a / e);
    }
    return sum;
  }

  /** Scores a numeric feature's window; {@code reference} null = only the NaN rate is judged. */
  static FeatureWindow numeric(NumericSummary window, Reference.TensorReference reference, int feature,
      MonitoringConfig config) {
    FeatureWindow.Builder b = FeatureWindow.newBuilder().setStats(window.toStats()).setPsi(Double.NaN)
        .setKs(Double.NaN).setOutOfRangeRate(Double.NaN);
    double nanRate = window.count == 0 ? Double.NaN : (double) window.nan / window.count;
    b.setNanRate(nanRate);
    double referenceNan = reference == null ? 0 : reference.nanRate[feature];
    if (reference != null && window.count > 0) {
      double outOfRange = (double) window.outOfRange / window.count;
      b.setOutOfRangeRate(outOfRange);
      NumericSummary ref = reference.summary.numeric[feature];
      if (!window.sketch.isEmpty() && !ref.sketch.isEmpty()) {
        double psi = psi(reference.proportions[feature], binProportions(window.sketch, reference.edges[feature]));
        double ks = KolmogorovSmirnov.computeKSDelta(ref.sketch, window.sketch);
        double ksLimit = Math.max(config.ksThreshold(), ksCriticalValue(ref.sketch, window.sketch, config.ksPValue()));
        b.setPsi(psi).setKs(ks);
        if (psi > config.psiThreshold()) {
          b.addFlags("psi");
        }
        if (ks > ksLimit) {
          b.addFlags("ks");
        }
      }
      if (outOfRange > config.outOfRangeThreshold()) {
        b.addFlags("out_of_range");
      }
    }
    if (window.count > 0 && nanRate - referenceNan > config.nanThreshold()) {
      b.addFlags("nan");
    }
    return b.build();
  }

  /** Scores a categorical feature's window; {@code reference} null = only the empty-value rate is judged. */
  static FeatureWindow categorical(CategoricalSummary window, Reference.TensorReference reference, int feature,
      MonitoringConfig config) {
    FeatureWindow.Builder b = FeatureWindow.newBuilder().setStats(window.toStats()).setPsi(Double.NaN)
        .setKs(Double.NaN).setOutOfRangeRate(Double.NaN);
    double nanRate = window.count == 0 ? Double.NaN : (double) window.empty / window.count;
    b.setNanRate(nanRate);
    double referenceNan = reference == null ? 0 : reference.nanRate[feature];
    if (reference != null && window.count > 0) {
      String[] bins = reference.binCategories[feature];
      double[] actual = new double[bins.length + 1];
      double covered = 0;
      for (int i = 0; i < bins.length; i++) {
        actual[i] = (double) window.items.getEstimate(bins[i]) / window.count;
        covered += actual[i];
      }
      actual[bins.length] = Math.max(0, 1 - covered);
      double psi = psi(reference.proportions[feature], actual);
      double outOfRange = (double) window.outOfRange / window.count;
      b.setPsi(psi).setOutOfRangeRate(outOfRange);
      if (psi > config.psiThreshold()) {
        b.addFlags("psi");
      }
      if (outOfRange > config.outOfRangeThreshold()) {
        b.addFlags("out_of_range");
      }
    }
    if (window.count > 0 && nanRate - referenceNan > config.nanThreshold()) {
      b.addFlags("nan");
    }
    return b.build();
  }
}
