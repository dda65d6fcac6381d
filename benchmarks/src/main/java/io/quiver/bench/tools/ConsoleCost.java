package io.quiver.bench.tools;

import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The table of benchmarks/console-cost.sh: for each case, the console-on server against the console-off
 * one (measured at the same time), from the {@code quiver perf --json} files {@code <case>-<side>-r<N>.json}
 * (sides: off, on), as medians (min-max) over the repeats and the median of the per-repeat ratios on/off. Usage:
 * {@code ConsoleCost RESULTS_DIR CASE...}; prints markdown.
 */
public final class ConsoleCost {
  private ConsoleCost() {}

  public static void main(String[] args) throws IOException {
    Path dir = Path.of(args[0]);
    StringBuilder out = new StringBuilder();
    out.append("| case | server | req/s | ratio to off | server CPU µs/req | p50 µs | p99 µs | repeats |\n");
    out.append("|---|---|---|---|---|---|---|---|\n");
    for (String c : Arrays.copyOfRange(args, 1, args.length)) {
      List<Double> offRps = series(dir, c, "off", "throughput_rps");
      for (String side : List.of("off", "on")) {
        List<Double> rps = series(dir, c, side, "throughput_rps");
        if (rps.isEmpty()) {
          continue;
        }
        List<Double> ratios = new ArrayList<>();
        for (int i = 0; i < Math.min(rps.size(), offRps.size()); i++) {
          ratios.add(rps.get(i) / offRps.get(i));
        }
        out.append(String.format(Locale.ROOT, "| %s | console %s | %s | %s | %s | %s | %s | %d |%n", c,
            side, spread(rps, "%.0f"),
            side.equals("off") ? "1" : spread(ratios, "%.3f"),
            spread(series(dir, c, side, "server_cpu_us_per_req"), "%.1f"),
            spread(series(dir, c, side, "p50_us"), "%.0f"), spread(series(dir, c, side, "p99_us"), "%.0f"), rps.size()));
      }
    }
    System.out.print(out);
  }

  /** One number per repeat, in repeat order (r1, r2, ...), from the first result row of each file. */
  private static List<Double> series(Path dir, String c, String side, String field) throws IOException {
    List<Double> values = new ArrayList<>();
    for (int r = 1; ; r++) {
      Path file = dir.resolve(c + "-" + side + "-r" + r + ".json");
      if (!Files.exists(file)) {
        return values;
      }
      List<Value> rows = Json.list(Json.read(file), "results");
      values.add(rows.isEmpty() ? Double.NaN : Json.number(rows.get(0), field));
    }
  }

  private static String spread(List<Double> values, String format) {
    if (values.isEmpty()) {
      return "";
    }
    double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    double median = sorted.length % 2 == 1 ? sorted[sorted.length / 2]
        : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    return String.format(Locale.ROOT, format + " (" + format + "–" + format + ")", median, sorted[0],
        sorted[sorted.length - 1]);
  }
}
