package io.quiver.bench.perf;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A sweep of load levels parsed from perf_analyzer-style text: {@code start:end:step} (linear),
 * {@code start:end:xF} (geometric, factor F), {@code start:end} (step 1), a single value, or a
 * list {@code a,b,c} run in the order given (repeats allowed: a load that rises and falls).
 * Range values never exceed {@code end}; {@code end} itself is always included. Immutable.
 */
public final class LoadRange {
  /** Sweeps longer than this are a typo, not a plan. */
  public static final int MAX_POINTS = 10_000;

  private final List<Double> values;

  private LoadRange(List<Double> values) {
    this.values = List.copyOf(values);
  }

  /**
   * Parses a range.
   *
   * @throws IllegalArgumentException naming the text and what is wrong with it
   */
  public static LoadRange parse(String text) {
    if (text.contains(",")) {
      List<Double> values = new ArrayList<>();
      for (String part : text.split(",")) {
        double v = number(part, text);
        if (v <= 0) {
          throw new IllegalArgumentException("list values must be > 0; was '" + text + "'");
        }
        add(values, v, text);
      }
      return new LoadRange(values);
    }
    String[] parts = text.trim().split(":");
    if (parts.length < 1 || parts.length > 3 || parts[0].isEmpty()) {
      throw new IllegalArgumentException("range must be START[:END[:STEP|:xFACTOR]]; was '" + text + "'");
    }
    double start = number(parts[0], text);
    double end = parts.length > 1 ? number(parts[1], text) : start;
    if (start <= 0 || end < start) {
      throw new IllegalArgumentException("range needs 0 < START <= END; was '" + text + "'");
    }
    List<Double> values = new ArrayList<>();
    if (parts.length == 3 && parts[2].toLowerCase(Locale.ROOT).startsWith("x")) {
      double factor = number(parts[2].substring(1), text);
      if (factor <= 1) {
        throw new IllegalArgumentException("geometric factor must be > 1; was '" + text + "'");
      }
      for (double v = start; v <= end * (1 + 1e-9); v *= factor) {
        add(values, v, text);
      }
    } else {
      double step = parts.length == 3 ? number(parts[2], text) : 1;
      if (step <= 0) {
        throw new IllegalArgumentException("step must be > 0; was '" + text + "'");
      }
      // Index-based so that fractional steps do not accumulate rounding error.
      for (long i = 0; start + i * step <= end * (1 + 1e-9); i++) {
        add(values, start + i * step, text);
      }
    }
    if (Math.abs(values.get(values.size() - 1) - end) > 1e-9 * end) {
      add(values, end, text);
    }
    return new LoadRange(values);
  }

  private static void add(List<Double> values, double v, String text) {
    if (values.size() >= MAX_POINTS) {
      throw new IllegalArgumentException("range has more than " + MAX_POINTS + " points: '" + text + "'");
    }
    values.add(v);
  }

  private static double number(String s, String text) {
    try {
      return Double.parseDouble(s.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a number: '" + s + "' in range '" + text + "'");
    }
  }

  public List<Double> values() {
    return values;
  }

  /** The values as whole numbers (concurrency levels), rounded, without duplicates. */
  public List<Integer> intValues() {
    List<Integer> ints = new ArrayList<>();
    for (double v : values) {
      int i = (int) Math.round(v);
      if (i >= 1 && (ints.isEmpty() || ints.get(ints.size() - 1) != i)) {
        ints.add(i);
      }
    }
    return ints;
  }
}
