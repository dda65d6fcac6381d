package io.quiver.bench.tools;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/** Median and spread of repeated measurements (NaNs ignored). */
record Stats(double median, double min, double max, int n) {
  static Stats of(List<Double> values) {
    List<Double> v = new ArrayList<>();
    for (Double d : values) {
      if (d != null && !d.isNaN()) {
        v.add(d);
      }
    }
    if (v.isEmpty()) {
      return new Stats(Double.NaN, Double.NaN, Double.NaN, 0);
    }
    Collections.sort(v);
    int n = v.size();
    double median = n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
    return new Stats(median, v.get(0), v.get(n - 1), n);
  }

  /** "median (min–max, n=3)" with the given format for each number. */
  String format(String number) {
    if (n == 0) {
      return "n/a";
    }
    String m = String.format(Locale.ROOT, number, median);
    if (n == 1) {
      return m + " (n=1)";
    }
    return m + " (" + String.format(Locale.ROOT, number, min) + "–" + String.format(Locale.ROOT, number, max)
        + ", n=" + n + ")";
  }
}
