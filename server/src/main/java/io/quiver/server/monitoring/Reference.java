package io.quiver.server.monitoring;

import com.google.protobuf.InvalidProtocolBufferException;
import io.quiver.core.InferenceException;
import io.quiver.proto.monitoring.v1.FeatureStats;
import io.quiver.proto.monitoring.v1.ReferenceProfile;
import io.quiver.proto.monitoring.v1.TensorProfile;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.datasketches.frequencies.ItemsSketch;
import org.apache.datasketches.quantilescommon.QuantileSearchCriteria;

/**
 * A reference profile ready for scoring: the stored {@link ReferenceProfile} (and its bytes, as kept in
 * the repository), its sketches read back, and per feature what scoring needs precomputed (PSI bin
 * edges and proportions, category sets, the report's statistics). Built on any thread, then handed to
 * the monitoring thread, the only one that queries its sketches afterwards.
 */
final class Reference {
  /** Format of the stored profile; a newer one is refused rather than misread. */
  static final int FORMAT = 1;
  /** Most categories a categorical feature's PSI bins hold (the rest share one "other" bin). */
  static final int MAX_CATEGORY_BINS = 50;

  final ReferenceProfile profile;
  final byte[] bytes;
  final TensorReference[] inputs;
  final TensorReference[] outputs;

  private Reference(ReferenceProfile profile, byte[] bytes, TensorReference[] inputs, TensorReference[] outputs) {
    this.profile = profile;
    this.bytes = bytes;
    this.inputs = inputs;
    this.outputs = outputs;
  }

  TensorReference of(TensorLayout layout) {
    return layout.output() ? outputs[layout.position()] : inputs[layout.position()];
  }

  /**
   * Reads a stored profile and checks it against the version's monitored tensors.
   *
   * @throws InferenceException INVALID_ARGUMENT when it does not parse or does not describe these tensors
   */
  static Reference parse(byte[] bytes, List<TensorLayout> layouts, int psiBins) {
    ReferenceProfile profile;
    try {
      profile = ReferenceProfile.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw InferenceException.invalidArgument("the stored monitoring reference does not parse: %s", e.getMessage());
    }
    return of(profile, bytes, layouts, psiBins);
  }

  static Reference of(ReferenceProfile profile, byte[] bytes, List<TensorLayout> layouts, int psiBins) {
    if (profile.getFormat() != FORMAT) {
      throw InferenceException.invalidArgument("the monitoring reference has format %d; this server reads format %d",
          profile.getFormat(), FORMAT);
    }
    int inputs = (int) layouts.stream().filter(l -> !l.output()).count();
    TensorReference[] in = new TensorReference[inputs];
    TensorReference[] out = new TensorReference[layouts.size() - inputs];
    for (TensorLayout layout : layouts) {
      TensorProfile tensor = null;
      for (TensorProfile t : profile.getTensorsList()) {
        if (t.getName().equals(layout.name()) && t.getRole().equals(layout.role())) {
          tensor = t;
        }
      }
      if (tensor == null || !tensor.getLayout().equals(layout.layoutName())
          || !tensor.getDatatype().equals(layout.dataType().wireName()) || tensor.getFeaturesCount() != layout.features()) {
        throw InferenceException.invalidArgument("the monitoring reference does not describe %s '%s' as monitored (%s %s,"
            + " %d feature(s)); it has %s", layout.role(), layout.name(), layout.dataType().wireName(),
            layout.layoutName(), layout.features(), tensor == null ? "no such tensor"
                : tensor.getDatatype() + " " + tensor.getLayout() + ", " + tensor.getFeaturesCount() + " feature(s)");
      }
      TensorReference ref = new TensorReference(TensorSummary.fromProfile(layout, tensor), psiBins);
      if (layout.output()) {
        out[layout.position()] = ref;
      } else {
        in[layout.position()] = ref;
      }
    }
    return new Reference(profile, bytes, in, out);
  }

  /** One tensor's reference, per feature. */
  static final class TensorReference {
    final TensorSummary summary;
    final FeatureStats[] stats;
    final double[] nanRate;
    // numeric
    private final double[] min;
    private final double[] max;
    final float[][] edges;
    final double[][] proportions;
    // categorical
    private final Set<String>[] categories;
    final String[][] binCategories;

    @SuppressWarnings("unchecked")
    TensorReference(TensorSummary summary, int psiBins) {
      this.summary = summary;
      int n = summary.layout.features();
      stats = new FeatureStats[n];
      nanRate = new double[n];
      min = new double[n];
      max = new double[n];
      edges = new float[n][];
      proportions = new double[n][];
      categories = new Set[n];
      binCategories = new String[n][];
      for (int f = 0; f < n; f++) {
        if (summary.numeric != null) {
          NumericSummary s = summary.numeric[f];
          stats[f] = s.toStats();
          nanRate[f] = s.count == 0 ? 0 : (double) s.nan / s.count;
          // Without finite reference values every finite value is out of range.
          min[f] = s.finite == 0 ? Double.POSITIVE_INFINITY : s.min;
          max[f] = s.finite == 0 ? Double.NEGATIVE_INFINITY : s.max;
          if (!s.sketch.isEmpty()) {
            double[] ranks = new double[psiBins - 1];
            for (int i = 1; i < psiBins; i++) {
              ranks[i - 1] = (double) i / psiBins;
            }
            float[] cut = s.sketch.getQuantiles(ranks, QuantileSearchCriteria.INCLUSIVE);
            float[] unique = new float[cut.length]; // quantiles ascend; ties (discrete values) are dropped
            int u = 0;
            for (float v : cut) {
              if (u == 0 || v > unique[u - 1]) {
                unique[u++] = v;
              }
            }
            unique = Arrays.copyOf(unique, u);
            edges[f] = unique;
            proportions[f] = Drift.binProportions(s.sketch, unique);
          }
        } else {
          CategoricalSummary s = summary.categorical[f];
          stats[f] = s.toStats();
          nanRate[f] = s.count == 0 ? 0 : (double) s.empty / s.count;
          ItemsSketch.Row<String>[] rows = s.rows();
          Set<String> known = new HashSet<>();
          for (ItemsSketch.Row<String> row : rows) {
            known.add(row.getItem());
          }
          categories[f] = known;
          int bins = Math.min(rows.length, MAX_CATEGORY_BINS);
          binCategories[f] = new String[bins];
          double[] p = new double[bins + 1];
          double total = Math.max(1, s.count);
          double covered = 0;
          for (int i = 0; i < bins; i++) {
            binCategories[f][i] = rows[i].getItem();
            p[i] = rows[i].getEstimate() / total;
            covered += p[i];
          }
          p[bins] = Math.max(0, 1 - covered);
          proportions[f] = p;
        }
      }
    }

    double min(int feature) {
      return min[feature];
    }

    double max(int feature) {
      return max[feature];
    }

    Set<String> categories(int feature) {
      return categories[feature];
    }
  }

}
