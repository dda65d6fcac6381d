package io.quiver.server.monitoring;

import io.quiver.core.DataType;
import io.quiver.proto.monitoring.v1.FeatureProfile;
import io.quiver.proto.monitoring.v1.TensorProfile;
import io.quiver.server.http.Fp16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The per-feature summaries of one monitored tensor, and the code that reads a sample's bytes into
 * them. Not thread-safe: owned by the monitoring thread (or one reference builder).
 *
 * <p>Cost per value: a decode, a few comparisons and a Welford step; finite values go to the KLL
 * sketch in bulk per column. A whole tensor (no columns) sends at most
 * {@value #WHOLE_SKETCH_VALUES_PER_SAMPLE} evenly spaced values of each sample to its sketch; its
 * counts, moments and range use every element.
 */
final class TensorSummary {
  static final int WHOLE_SKETCH_VALUES_PER_SAMPLE = 4096;

  final TensorLayout layout;
  final NumericSummary[] numeric; // null for BYTES
  final CategoricalSummary[] categorical; // null for numeric types
  private float[] scratch = new float[64];

  TensorSummary(TensorLayout layout) {
    this.layout = layout;
    int n = layout.features();
    if (layout.categorical()) {
      numeric = null;
      categorical = new CategoricalSummary[n];
      for (int i = 0; i < n; i++) {
        categorical[i] = new CategoricalSummary();
      }
    } else {
      categorical = null;
      numeric = new NumericSummary[n];
      for (int i = 0; i < n; i++) {
        numeric[i] = new NumericSummary();
      }
    }
  }

  private TensorSummary(TensorLayout layout, NumericSummary[] numeric, CategoricalSummary[] categorical) {
    this.layout = layout;
    this.numeric = numeric;
    this.categorical = categorical;
  }

  /**
   * Reads one sampled tensor.
   *
   * @param reference the reference's view of this tensor for out-of-range counts, or null
   */
  void add(byte[] data, int elements, Reference.TensorReference reference) {
    if (categorical != null) {
      addBytes(data, elements, reference);
      return;
    }
    ByteBuffer le = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    DataType type = layout.dataType();
    int columns = layout.columns();
    if (columns == 0) {
      NumericSummary s = numeric[0];
      double low = reference == null ? Double.NEGATIVE_INFINITY : reference.min(0);
      double high = reference == null ? Double.POSITIVE_INFINITY : reference.max(0);
      int stride = Math.max(1, elements / WHOLE_SKETCH_VALUES_PER_SAMPLE);
      float[] buf = scratch(Math.min(elements, WHOLE_SKETCH_VALUES_PER_SAMPLE + 1));
      int k = 0;
      for (int i = 0; i < elements; i++) {
        double v = value(le, type, i);
        if (s.add(v, low, high) && i % stride == 0 && k < buf.length) {
          buf[k++] = NumericSummary.sketchValue(v);
        }
      }
      if (k > 0) {
        s.sketch.update(buf, 0, k);
      }
      return;
    }
    int rows = elements / columns;
    float[] buf = scratch(rows);
    for (int c = 0; c < columns; c++) {
      NumericSummary s = numeric[c];
      double low = reference == null ? Double.NEGATIVE_INFINITY : reference.min(c);
      double high = reference == null ? Double.POSITIVE_INFINITY : reference.max(c);
      int k = 0;
      for (int r = 0, i = c; r < rows; r++, i += columns) {
        double v = value(le, type, i);
        if (s.add(v, low, high)) {
          buf[k++] = NumericSummary.sketchValue(v);
        }
      }
      if (k > 0) {
        s.sketch.update(buf, 0, k);
      }
    }
  }

  private void addBytes(byte[] data, int elements, Reference.TensorReference reference) {
    int columns = Math.max(1, layout.columns());
    int p = 0;
    for (int i = 0; i < elements && data.length - p >= 4; i++) {
      int length = (data[p] & 0xff) | (data[p + 1] & 0xff) << 8 | (data[p + 2] & 0xff) << 16 | (data[p + 3] & 0xff) << 24;
      p += 4;
      if (length < 0 || length > data.length - p) {
        return; // framing was validated on the request path; a truncated copy ends here
      }
      int feature = layout.columns() == 0 ? 0 : i % columns;
      categorical[feature].add(CategoricalSummary.category(data, p, length),
          reference == null ? null : reference.categories(feature));
      p += length;
    }
  }

  private float[] scratch(int n) {
    if (scratch.length < n) {
      scratch = new float[Math.max(n, scratch.length * 2)];
    }
    return scratch;
  }

  /** Element {@code i} of a little-endian buffer of {@code type}, as a double (unsigned types unsigned). */
  static double value(ByteBuffer le, DataType type, int i) {
    return switch (type) {
      case FP32 -> le.getFloat(i * 4);
      case FP64 -> le.getDouble(i * 8);
      case INT64 -> le.getLong(i * 8);
      case INT32 -> le.getInt(i * 4);
      case INT16 -> le.getShort(i * 2);
      case INT8 -> le.get(i);
      case UINT8 -> le.get(i) & 0xff;
      case UINT16 -> le.getShort(i * 2) & 0xffff;
      case UINT32 -> le.getInt(i * 4) & 0xffffffffL;
      case UINT64 -> {
        long bits = le.getLong(i * 8);
        yield bits >= 0 ? bits : (bits >>> 1) * 2.0 + (bits & 1);
      }
      case BOOL -> le.get(i) != 0 ? 1 : 0;
      case FP16 -> Fp16.halfToFloat(le.getShort(i * 2));
      case BF16 -> Fp16.bf16ToFloat(le.getShort(i * 2));
      case BYTES -> throw new IllegalArgumentException("BYTES is categorical");
    };
  }

  void merge(TensorSummary other) {
    for (int i = 0; i < layout.features(); i++) {
      if (numeric != null) {
        numeric[i].merge(other.numeric[i]);
      } else {
        categorical[i].merge(other.categorical[i]);
      }
    }
  }

  void reset() {
    for (int i = 0; i < layout.features(); i++) {
      if (numeric != null) {
        numeric[i].reset();
      } else {
        categorical[i].reset();
      }
    }
  }

  TensorSummary copy() {
    NumericSummary[] n = null;
    CategoricalSummary[] c = null;
    if (numeric != null) {
      n = new NumericSummary[numeric.length];
      for (int i = 0; i < n.length; i++) {
        n[i] = numeric[i].copy();
      }
    } else {
      c = new CategoricalSummary[categorical.length];
      for (int i = 0; i < c.length; i++) {
        c[i] = categorical[i].copy();
      }
    }
    return new TensorSummary(layout, n, c);
  }

  long count(int feature) {
    return numeric != null ? numeric[feature].count : categorical[feature].count;
  }

  TensorProfile toProfile() {
    TensorProfile.Builder b = TensorProfile.newBuilder().setName(layout.name()).setRole(layout.role())
        .setDatatype(layout.dataType().wireName()).setLayout(layout.layoutName());
    for (int i = 0; i < layout.features(); i++) {
      b.addFeatures(numeric != null ? numeric[i].toProfile() : categorical[i].toProfile());
    }
    return b.build();
  }

  /** The summaries a stored profile describes; the caller has checked that it matches the layout. */
  static TensorSummary fromProfile(TensorLayout layout, TensorProfile profile) {
    NumericSummary[] n = null;
    CategoricalSummary[] c = null;
    if (layout.categorical()) {
      c = new CategoricalSummary[layout.features()];
      for (int i = 0; i < c.length; i++) {
        c[i] = CategoricalSummary.fromProfile(profile.getFeatures(i));
      }
    } else {
      n = new NumericSummary[layout.features()];
      for (int i = 0; i < n.length; i++) {
        FeatureProfile f = profile.getFeatures(i);
        n[i] = NumericSummary.fromProfile(f);
      }
    }
    return new TensorSummary(layout, n, c);
  }
}
