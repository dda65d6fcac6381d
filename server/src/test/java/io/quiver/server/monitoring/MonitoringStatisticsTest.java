package io.quiver.server.monitoring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.proto.monitoring.v1.FeatureReport;
import io.quiver.proto.monitoring.v1.FeatureStats;
import io.quiver.proto.monitoring.v1.FeatureWindow;
import io.quiver.proto.monitoring.v1.ModelMonitoringReport;
import io.quiver.proto.monitoring.v1.Quantile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.apache.datasketches.kll.KllSketch;
import org.junit.jupiter.api.Test;

/**
 * The statistics and scores of one monitor, fed generated data of known distributions through the
 * request-path sampling, the queue and the summariser, with windows closed by hand (no clocks).
 *
 * <p>The model: input {@code x} FP32 [batch, 4] (column 0 ~ N(0, 1), 1 ~ U(0, 10), 2 ~ Exp(1), 3 ~
 * a discrete value in 0..4), input {@code color} BYTES [batch, 1] (categories a, b, c, d with
 * probabilities .4, .3, .2, .1), output {@code y} FP32 [batch, 1].
 */
class MonitoringStatisticsTest {
  static final ModelSignature SIGNATURE = new ModelSignature(64,
      List.of(new TensorSpec("x", DataType.FP32, new long[] {4}), new TensorSpec("color", DataType.BYTES, new long[] {1})),
      List.of(new TensorSpec("y", DataType.FP32, new long[] {1})));
  static final int REFERENCE_ROWS = 5_000;
  static final int WINDOW_ROWS = 500;
  static final int ROWS_PER_REQUEST = 10;

  /** Generates rows; each column's distribution can be swapped. */
  static final class Rows {
    final Random random;
    DoubleSupplier[] columns;
    String[] categories = {"a", "b", "c", "d"};
    double[] categoryWeights = {0.4, 0.3, 0.2, 0.1};

    Rows(long seed) {
      random = new Random(seed);
      columns = new DoubleSupplier[] {random::nextGaussian, () -> random.nextDouble() * 10,
          () -> -Math.log(1 - random.nextDouble()), () -> random.nextInt(5)};
    }

    String category() {
      double u = random.nextDouble();
      for (int i = 0; i < categories.length; i++) {
        u -= categoryWeights[i];
        if (u < 0) {
          return categories[i];
        }
      }
      return categories[categories.length - 1];
    }

    /** One request's inputs in signature order, and its output y = sum of the row's x. */
    Tensor[][] request(int rows) {
      ByteBuffer x = ByteBuffer.allocate(rows * 4 * 4).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer y = ByteBuffer.allocate(rows * 4).order(ByteOrder.LITTLE_ENDIAN);
      List<String> colors = new ArrayList<>();
      for (int r = 0; r < rows; r++) {
        float sum = 0;
        for (DoubleSupplier column : columns) {
          float v = (float) column.getAsDouble();
          x.putFloat(v);
          sum += v;
        }
        y.putFloat(sum);
        colors.add(category());
      }
      Tensor[] inputs = {new Tensor("x", DataType.FP32, new long[] {rows, 4}, x.flip()),
          new Tensor("color", DataType.BYTES, new long[] {rows, 1}, BytesElements.encodeStrings(colors))};
      Tensor[] outputs = {new Tensor("y", DataType.FP32, new long[] {rows, 1}, y.flip())};
      return new Tensor[][] {inputs, outputs};
    }
  }

  static MonitoringConfig config() {
    return MonitoringConfig.defaults();
  }

  static VersionMonitor monitor(MonitoringConfig config) {
    return new VersionMonitor("m", 1, 1, TensorLayout.plan("m", SIGNATURE, config), config, 0);
  }

  /** Sends {@code rows} rows through the request-path hooks and summarises them, as the monitoring thread would. */
  static void feed(VersionMonitor monitor, Rows rows, int count) {
    for (int sent = 0; sent < count; sent += ROWS_PER_REQUEST) {
      Tensor[][] request = rows.request(ROWS_PER_REQUEST);
      monitor.sampleInputs(request[0], ROWS_PER_REQUEST);
      monitor.sampleOutputs(new int[] {0}, request[1], ROWS_PER_REQUEST);
      monitor.drain(Integer.MAX_VALUE);
    }
  }

  /** A monitor whose reference was captured from REFERENCE_ROWS rows of the reference distribution. */
  static VersionMonitor withReference(long seed) {
    VersionMonitor monitor = monitor(config());
    Reference[] captured = new Reference[1];
    monitor.startCapture(REFERENCE_ROWS, ref -> captured[0] = ref);
    feed(monitor, new Rows(seed), REFERENCE_ROWS);
    assertThat(captured[0]).as("the capture completes after %d rows", REFERENCE_ROWS).isNotNull();
    assertThat(monitor.referenceInfo().getState()).isEqualTo("READY");
    return monitor;
  }

  static VersionMonitor.ClosedWindow window(VersionMonitor monitor, Rows rows) {
    feed(monitor, rows, WINDOW_ROWS);
    monitor.closeWindow(System.nanoTime());
    return monitor.lastWindow();
  }

  @Test
  void noFeatureIsFlagged_onSamplesOfTheReferenceDistribution_withinTheStatedBoundOverManyWindows() {
    VersionMonitor monitor = withReference(1);
    Rows live = new Rows(2);
    int windows = 200;
    int featureWindows = 0;
    int flagged = 0;
    List<String> flags = new ArrayList<>();
    for (int w = 0; w < windows; w++) {
      VersionMonitor.ClosedWindow closed = window(monitor, live);
      assertThat(closed.info().getScored()).isTrue();
      assertThat(closed.info().getRows()).isEqualTo(WINDOW_ROWS);
      for (int t = 0; t < closed.features().length; t++) {
        for (int f = 0; f < closed.features()[t].length; f++) {
          featureWindows++;
          FeatureWindow fw = closed.features()[t][f];
          if (fw.getFlagsCount() > 0) {
            flagged++;
            flags.add("window " + w + " tensor " + t + " feature " + f + " " + fw.getFlagsList() + " psi=" + fw.getPsi()
                + " ks=" + fw.getKs() + " oor=" + fw.getOutOfRangeRate());
          }
        }
      }
    }
    assertThat(featureWindows).isEqualTo(windows * 6);
    // docs/monitoring.md states the bound: at most 1% of feature-windows flagged on undrifted data with
    // the default thresholds, >= 1000 reference rows and >= 200 rows per window.
    assertThat(flagged).as("flags: %s", flags).isLessThanOrEqualTo(featureWindows / 100);
  }

  @Test
  void drift_isFlagged_onAShiftedMean_aWiderVariance_andACategoryThatAppears() {
    VersionMonitor monitor = withReference(3);

    Rows halfSd = new Rows(4);
    halfSd.columns[0] = () -> 0.5 + halfSd.random.nextGaussian();
    for (int w = 0; w < 10; w++) {
      FeatureWindow x0 = window(monitor, halfSd).features()[0][0];
      // KS ≈ 0.20 against a critical value of ≈ 0.12 at these sizes; PSI ≈ 0.2 sits on its threshold.
      assertThat(x0.getFlagsList()).as("mean + 0.5 sd, window %d: psi=%s ks=%s", w, x0.getPsi(), x0.getKs())
          .contains("ks");
    }
    Rows oneSd = new Rows(4);
    oneSd.columns[0] = () -> 1 + oneSd.random.nextGaussian();
    for (int w = 0; w < 10; w++) {
      FeatureWindow x0 = window(monitor, oneSd).features()[0][0];
      assertThat(x0.getFlagsList()).as("mean + 1 sd, window %d: psi=%s ks=%s", w, x0.getPsi(), x0.getKs())
          .contains("psi", "ks");
    }

    Rows wider = new Rows(5);
    wider.columns[0] = () -> 2 * wider.random.nextGaussian();
    for (int w = 0; w < 10; w++) {
      FeatureWindow x0 = window(monitor, wider).features()[0][0];
      assertThat(x0.getFlagsList()).as("sd x2, window %d: psi=%s ks=%s oor=%s", w, x0.getPsi(), x0.getKs(),
          x0.getOutOfRangeRate()).contains("psi", "ks", "out_of_range");
    }

    Rows newCategory = new Rows(6);
    newCategory.categories = new String[] {"a", "b", "c", "d", "e"};
    newCategory.categoryWeights = new double[] {0.32, 0.24, 0.16, 0.08, 0.2};
    for (int w = 0; w < 10; w++) {
      VersionMonitor.ClosedWindow closed = window(monitor, newCategory);
      FeatureWindow color = closed.features()[1][0];
      assertThat(color.getFlagsList()).as("category e at 20%%, window %d: psi=%s unseen=%s", w, color.getPsi(),
          color.getOutOfRangeRate()).contains("psi", "out_of_range");
      assertThat(color.getOutOfRangeRate()).isEqualTo((double) color.getStats().getOutOfRangeCount() / WINDOW_ROWS);
      assertThat(color.getStats().getTopCategoriesList()).anyMatch(c -> c.getValue().equals("e"));
      // The numeric columns were left alone in that phase.
      assertThat(closed.features()[0][1].getFlagsList()).isEmpty();
    }
  }

  @Test
  void nanInfinityAndOutOfRangeCounts_areExact() {
    VersionMonitor monitor = withReference(7);
    double refMin = monitor.report().getTensors(0).getFeatures(1).getReference().getMin();
    double refMax = monitor.report().getTensors(0).getFeatures(1).getReference().getMax();
    assertThat(refMin).isBetween(0.0, 0.1);
    assertThat(refMax).isBetween(9.9, 10.0);
    // Column 1 (U(0, 10) in the reference) gets: 7 NaN, 3 +Inf, 1 -Inf, 11 above the max, 5 below the
    // min, 2 exactly at the max (in range), the rest in range; all in one window.
    Rows rows = new Rows(8);
    int[] i = {0};
    rows.columns[1] = () -> {
      int n = i[0]++;
      if (n < 7) {
        return Double.NaN;
      } else if (n < 10) {
        return Double.POSITIVE_INFINITY;
      } else if (n < 11) {
        return Double.NEGATIVE_INFINITY;
      } else if (n < 22) {
        return refMax + 1 + n;
      } else if (n < 27) {
        return refMin - 1 - n;
      } else if (n < 29) {
        return refMax;
      }
      return refMin + (refMax - refMin) * rows.random.nextDouble();
    };
    VersionMonitor.ClosedWindow closed = window(monitor, rows);
    FeatureStats stats = closed.features()[0][1].getStats();
    assertThat(stats.getCount()).isEqualTo(WINDOW_ROWS);
    assertThat(stats.getNanCount()).isEqualTo(7);
    assertThat(stats.getInfCount()).isEqualTo(4);
    assertThat(stats.getOutOfRangeCount()).isEqualTo(4 + 11 + 5);
    assertThat(closed.features()[0][1].getNanRate()).isEqualTo(7.0 / WINDOW_ROWS);
    assertThat(closed.features()[0][1].getOutOfRangeRate()).isEqualTo(20.0 / WINDOW_ROWS);
    assertThat(closed.features()[0][1].getFlagsList()).contains("nan", "out_of_range");
    // Untouched columns: nothing out of range is invented.
    assertThat(closed.features()[0][3].getStats().getOutOfRangeCount()).isZero();
    assertThat(closed.features()[0][3].getStats().getNanCount()).isZero();

    // The totals since load (reference capture included) count the same values exactly.
    ModelMonitoringReport report = monitor.report();
    FeatureStats totals = report.getTensors(0).getFeatures(1).getTotals();
    assertThat(totals.getCount()).isEqualTo(REFERENCE_ROWS + WINDOW_ROWS);
    assertThat(totals.getNanCount()).isEqualTo(7);
    assertThat(totals.getInfCount()).isEqualTo(4);
    assertThat(report.getSamples().getDropped()).isZero();
  }

  @Test
  void sketchQuantiles_areWithinTheDocumentedRankError() {
    assertThat(String.format(java.util.Locale.ROOT, "%.2f", 100 * KllSketch.getNormalizedRankError(NumericSummary.SKETCH_K,
        true))).isEqualTo(NumericSummary.RANK_ERROR_PERCENT);
    double documented = Double.parseDouble(NumericSummary.RANK_ERROR_PERCENT) / 100;
    VersionMonitor monitor = monitor(MonitoringConfig.defaults());
    Rows rows = new Rows(9);
    int n = 100_000;
    double[][] values = new double[4][n];
    int[] next = new int[4];
    DoubleSupplier[] generators = rows.columns.clone();
    for (int c = 0; c < 4; c++) {
      int column = c;
      rows.columns[c] = () -> {
        double v = generators[column].getAsDouble();
        values[column][next[column]++] = (float) v;
        return v;
      };
    }
    feed(monitor, rows, n);
    ModelMonitoringReport report = monitor.report();
    for (int c = 0; c < 4; c++) {
      double[] sorted = values[c].clone();
      Arrays.sort(sorted);
      FeatureReport feature = report.getTensors(0).getFeatures(c);
      assertThat(feature.getTotals().getCount()).isEqualTo(n);
      assertThat(feature.getTotals().getQuantilesCount()).isEqualTo(NumericSummary.REPORT_RANKS.length);
      for (Quantile q : feature.getTotals().getQuantilesList()) {
        // Rank of the returned value in the data: a discrete column's value covers a range of ranks.
        double below = (double) lowerBound(sorted, q.getValue()) / n;
        double atOrBelow = (double) upperBound(sorted, q.getValue()) / n;
        assertThat(q.getRank()).as("column %d rank %s -> %s (true ranks %s..%s)", c, q.getRank(), q.getValue(), below,
            atOrBelow).isBetween(below - documented, atOrBelow + documented);
      }
      assertThat(feature.getTotals().getMean()).isCloseTo(Arrays.stream(sorted).average().orElseThrow(), within(1e-6));
      assertThat(feature.getTotals().getMin()).isEqualTo(sorted[0]);
      assertThat(feature.getTotals().getMax()).isEqualTo(sorted[n - 1]);
    }
  }

  private static int lowerBound(double[] sorted, double v) {
    int i = Arrays.binarySearch(sorted, v);
    if (i < 0) {
      return -i - 1;
    }
    while (i > 0 && sorted[i - 1] == v) {
      i--;
    }
    return i;
  }

  private static int upperBound(double[] sorted, double v) {
    int i = Arrays.binarySearch(sorted, v);
    if (i < 0) {
      return -i - 1;
    }
    while (i < sorted.length && sorted[i] == v) {
      i++;
    }
    return i;
  }

  @Test
  void meanAndVariance_matchTheGeneratingDistribution() {
    VersionMonitor monitor = monitor(MonitoringConfig.defaults());
    feed(monitor, new Rows(10), 50_000);
    FeatureStats normal = monitor.report().getTensors(0).getFeatures(0).getTotals();
    assertThat(normal.getMean()).isCloseTo(0, within(0.03));
    assertThat(normal.getStddev()).isCloseTo(1, within(0.02));
    FeatureStats uniform = monitor.report().getTensors(0).getFeatures(1).getTotals();
    assertThat(uniform.getMean()).isCloseTo(5, within(0.06));
    assertThat(uniform.getStddev()).isCloseTo(10 / Math.sqrt(12), within(0.03));
    FeatureStats y = monitor.report().getTensors(2).getFeatures(0).getTotals();
    assertThat(y.getCount()).isEqualTo(50_000);
  }

  @Test
  void aFullQueue_dropsSamplesAndCountsThem_withoutBlocking() {
    MonitoringConfig small = new MonitoringConfig(1.0, 300, 200, 0, "", 0.2, 0.1, 0.001, 0.02, 0.01, 10, 1024, 32, 16,
        1 << 20, List.of());
    VersionMonitor monitor = monitor(small);
    Rows rows = new Rows(11);
    for (int i = 0; i < 100; i++) {
      monitor.sampleInputs(rows.request(1)[0], 1);
    }
    assertThat(monitor.taken.sum()).isEqualTo(16);
    assertThat(monitor.dropped.sum()).isEqualTo(84);
    assertThat(monitor.drain(Integer.MAX_VALUE)).isEqualTo(16);
    monitor.sampleInputs(rows.request(1)[0], 1);
    assertThat(monitor.taken.sum()).isEqualTo(17);

    // The byte budget bounds the queue as well: 64 KiB, 4 KiB rows of x (1024 columns).
    MonitoringConfig bytes = new MonitoringConfig(1.0, 300, 200, 0, "", 0.2, 0.1, 0.001, 0.02, 0.01, 10, 1024, 32, 1024,
        1 << 16, List.of("wide"));
    ModelSignature wide = new ModelSignature(8, List.of(new TensorSpec("wide", DataType.FP32, new long[] {1024})), List.of());
    VersionMonitor budgeted = new VersionMonitor("m", 1, 0, TensorLayout.plan("m", wide, bytes), bytes, 0);
    Tensor row = new Tensor("wide", DataType.FP32, new long[] {1, 1024},
        ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN));
    for (int i = 0; i < 40; i++) {
      budgeted.sampleInputs(new Tensor[] {row}, 1);
    }
    assertThat(budgeted.taken.sum()).isEqualTo(16);
    assertThat(budgeted.dropped.sum()).isEqualTo(24);
    // A tensor bigger than the per-sample limit (a quarter of the budget) keeps only its first whole rows.
    Tensor eight = new Tensor("wide", DataType.FP32, new long[] {8, 1024},
        ByteBuffer.allocate(8 * 4096).order(ByteOrder.LITTLE_ENDIAN));
    budgeted.drain(Integer.MAX_VALUE);
    budgeted.sampleInputs(new Tensor[] {eight}, 8);
    budgeted.drain(Integer.MAX_VALUE);
    assertThat(budgeted.report().getTensors(0).getFeatures(5).getTotals().getCount()).isEqualTo(16 + 4);
  }

  @Test
  void sampleRate_bounds_theShareOfRequestsSampled() {
    MonitoringConfig tenth = new MonitoringConfig(0.1, 300, 200, 0, "", 0.2, 0.1, 0.001, 0.02, 0.01, 10, 1024, 32,
        1 << 16, 1 << 30, List.of());
    VersionMonitor monitor = monitor(tenth);
    Rows rows = new Rows(12);
    Tensor[] inputs = rows.request(1)[0];
    for (int i = 0; i < 20_000; i++) {
      monitor.sampleInputs(inputs, 1);
    }
    // Binomial(20000, 0.1): mean 2000, sd 42; 6 sd either side.
    assertThat(monitor.taken.sum()).isBetween(1750L, 2250L);
  }

  @Test
  void withoutAReference_onlyNanIsJudged_andTheWindowIsNotScored() {
    VersionMonitor monitor = monitor(MonitoringConfig.defaults());
    Rows rows = new Rows(13);
    rows.columns[2] = () -> rows.random.nextInt(10) == 0 ? Double.NaN : 1.0;
    VersionMonitor.ClosedWindow closed = window(monitor, rows);
    assertThat(closed.info().getScored()).isFalse();
    FeatureWindow x2 = closed.features()[0][2];
    assertThat(x2.getFlagsList()).containsExactly("nan");
    assertThat(x2.getPsi()).isNaN();
    assertThat(closed.features()[0][0].getFlagsList()).isEmpty();
  }

  @Test
  void aStoredProfile_readsBackTheSameReference_andOneForOtherTensorsIsRefused() {
    VersionMonitor monitor = withReference(14);
    byte[] bytes = monitor.referenceBytes();
    Reference again = Reference.parse(bytes, monitor.layouts(), 10);
    assertThat(again.profile.getRows()).isEqualTo(REFERENCE_ROWS);
    assertThat(again.of(monitor.layouts().get(0)).stats[1]).isEqualTo(
        monitor.report().getTensors(0).getFeatures(1).getReference());
    ModelSignature other = new ModelSignature(64, List.of(new TensorSpec("x", DataType.FP32, new long[] {5})), List.of());
    MonitoringConfig config = MonitoringConfig.defaults();
    org.assertj.core.api.Assertions.assertThatThrownBy(
        () -> Reference.parse(bytes, TensorLayout.plan("m", other, config), 10))
        .isInstanceOf(io.quiver.core.InferenceException.class)
        .hasMessageContaining("does not describe input 'x'");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Reference.parse(new byte[] {1, 2, 3}, monitor.layouts(), 10))
        .hasMessageContaining("does not parse");
  }
}
