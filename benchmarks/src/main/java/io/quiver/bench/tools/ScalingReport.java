package io.quiver.bench.tools;

import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Summarizes a {@code benchmarks/scaling.sh} run: {@code ScalingReport OUT_DIR SUMMARY.md}. Sums the
 * clients of each point ({@code results/NAME-cI.json}), divides the server's CPU ({@code results/NAME.cpu}:
 * ticks, ticks per second, seconds) by the summed throughput, and computes the scaling ratio
 * Quiver(N) / (N × Quiver(smallest N)) and the open-loop p99 ratios against the echo.
 */
public final class ScalingReport {
  private static final Pattern SCALE = Pattern.compile("scale-(quiver|echo)-n(\\d+)-c\\d+\\.json");
  /** The bar: throughput at 8× the cores ≥ 0.8 × 8 × the smallest point's. */
  private static final double SCALING_TARGET = 0.8;
  private static final double OPEN_LOOP_P99_TARGET = 1.5;

  private ScalingReport() {}

  /**
   * One point: every client's rows, summed where that means something, and the server's CPU over
   * {@code seconds} of the measured windows, in total and by thread group ("cpu-seconds name" lines).
   */
  record Point(double rps, double offeredRps, double errors, List<Double> p99s, boolean clientBound,
      double serverCpuSeconds, double seconds, List<String> threadGroups) {
    double cpuMicrosPerRequest() {
      return serverCpuSeconds > 0 && rps > 0 ? serverCpuSeconds / seconds / rps * 1e6 : Double.NaN;
    }

    double coresUsed() {
      return seconds > 0 ? serverCpuSeconds / seconds : Double.NaN;
    }
  }

  public static void main(String[] args) throws IOException {
    Path out = Path.of(args[0]);
    Path results = out.resolve("results");
    TreeSet<Integer> sizes = new TreeSet<>();
    try (DirectoryStream<Path> files = Files.newDirectoryStream(results, "scale-*.json")) {
      for (Path f : files) {
        Matcher m = SCALE.matcher(f.getFileName().toString());
        if (m.matches()) {
          sizes.add(Integer.parseInt(m.group(2)));
        }
      }
    }
    StringBuilder md = new StringBuilder();
    md.append("# Multi-core scaling (benchmarks/scaling.sh)\n\n");
    md.append("Run on ").append(read(out.resolve("date.txt")).strip()).append(".\n\n```\n")
        .append(read(out.resolve("machine.txt")).strip()).append("\n```\n\n");
    md.append("## Closed loop: identity FP32[16], N server CPUs + N client JVMs (one CPU and one connection each, concurrency 64)\n\n");
    int base = sizes.isEmpty() ? 1 : sizes.first();
    int last = sizes.isEmpty() ? 1 : sizes.last();
    md.append("| N (server + client CPUs) | echo req/s | Quiver req/s | Quiver / echo | Quiver(N) / (N × Quiver(").append(base)
        .append(")) | echo(N) / (N × echo(").append(base)
        .append(")) | server CPU µs/req, Quiver / echo | server cores used, Quiver / echo | errors, Quiver / echo |\n");
    md.append("|---|---|---|---|---|---|---|---|---|\n");
    Map<Integer, Point> quiver = new TreeMap<>();
    Map<Integer, Point> echo = new TreeMap<>();
    for (int n : sizes) {
      quiver.put(n, point(results, "scale-quiver-n" + n));
      echo.put(n, point(results, "scale-echo-n" + n));
      Point q = quiver.get(n);
      Point e = echo.get(n);
      md.append(String.format(Locale.ROOT, "| %d + %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.1f / %.1f | %.2f / %.2f | %.0f / %.0f |%n",
          n, n, e.rps, q.rps, q.rps / e.rps, scaling(quiver, base, n), scaling(echo, base, n),
          q.cpuMicrosPerRequest(), e.cpuMicrosPerRequest(), q.coresUsed(), e.coresUsed(), q.errors, e.errors));
    }
    md.append('\n');
    if (last > base) {
      double measured = scaling(quiver, base, last);
      md.append(String.format(Locale.ROOT, "Target (issue 11): Quiver at %d + %d CPUs ≥ %.1f × %d × Quiver at %d + %d: measured %.2f: **%s**.%n%n",
          last, last, SCALING_TARGET, last / base, base, base, measured, measured >= SCALING_TARGET ? "pass" : "miss"));
    }
    md.append("Server CPU is read from /proc/PID/stat over the middle of the clients' measured windows; req/s is the sum\n"
        + "of the clients' throughput over their windows (the clients start together; their windows overlap to within\n"
        + "their JVM start times).\n\n");
    md.append("Where Quiver's CPU went (cores used by thread group over the same interval, from /proc/PID/task):\n\n");
    quiver.forEach((n, q) -> md.append("- N=").append(n).append(": ").append(threadGroups(q)).append('\n'));
    md.append('\n');

    Path saturation = results.resolve("ol-saturation-c0.json");
    if (Files.exists(saturation)) {
      Point sat = point(results, "ol-saturation");
      md.append("## Open loop: identity FP32[16], the server on 1 CPU, several client JVMs\n\n");
      md.append(String.format(Locale.ROOT, "Quiver's saturation with these clients (closed loop, concurrency 64 each): %.0f req/s, "
          + "server CPU %.1f µs/req.%n%n", sat.rps, sat.cpuMicrosPerRequest()));
      md.append("| load | offered req/s | served / offered, Quiver / echo | p99 µs Quiver, median (min–max) of clients | p99 µs echo | p99 Quiver / echo | client-bound windows |\n");
      md.append("|---|---|---|---|---|---|---|\n");
      for (int pct : new int[] {50, 80}) {
        if (!Files.exists(results.resolve("ol-quiver-" + pct + "-c0.json"))) {
          continue;
        }
        Point q = point(results, "ol-quiver-" + pct);
        Point e = point(results, "ol-echo-" + pct);
        Stats qp = Stats.of(q.p99s);
        Stats ep = Stats.of(e.p99s);
        double ratio = qp.median() / ep.median();
        md.append(String.format(Locale.ROOT, "| %d%% | %.0f | %.3f / %.3f | %s | %s | %.2f%s | %s |%n", pct, q.offeredRps,
            q.rps / q.offeredRps, e.rps / e.offeredRps, qp.format("%.0f"), ep.format("%.0f"), ratio,
            q.clientBound || e.clientBound ? "" : ratio <= OPEN_LOOP_P99_TARGET ? " (**pass**, target ≤ 1.5)" : " (**miss**, target ≤ 1.5)",
            q.clientBound || e.clientBound ? "yes: not a server measurement" : "none"));
      }
      md.append("\nEach client is an independent Poisson stream at rate/K; the p99 of each client estimates the same quantile of\n"
          + "the server's latency (the streams interleave at random), so the table shows their median and range.\n");
    }
    Files.writeString(Path.of(args[1]), md.toString(), StandardCharsets.UTF_8);
  }

  private static Point point(Path results, String name) throws IOException {
    double rps = 0;
    double offered = 0;
    double errors = 0;
    boolean clientBound = false;
    List<Double> p99s = new ArrayList<>();
    for (int i = 0; ; i++) {
      Path f = results.resolve(name + "-c" + i + ".json");
      if (!Files.exists(f)) {
        break;
      }
      List<Value> rows = Json.list(Json.read(f), "results");
      if (rows.isEmpty()) {
        continue;
      }
      Value row = rows.get(rows.size() - 1);
      rps += Json.number(row, "throughput_rps");
      offered += Json.number(row, "offered_rps");
      errors += Json.number(row, "errors");
      p99s.add(Json.number(row, "p99_us"));
      clientBound |= Json.bool(row, "client_bound");
    }
    double cpuSeconds = Double.NaN;
    double seconds = Double.NaN;
    Path cpu = results.resolve(name + ".cpu");
    if (Files.exists(cpu)) {
      String[] f = read(cpu).trim().split("\\s+"); // ticks, ticks per second, seconds
      cpuSeconds = Double.parseDouble(f[0]) / Double.parseDouble(f[1]);
      seconds = Double.parseDouble(f[2]);
    }
    List<String> threads = read(results.resolve(name + ".threads")).lines().filter(l -> !l.isBlank()).toList();
    return new Point(rps, offered, errors, p99s, clientBound, cpuSeconds, seconds, threads);
  }

  /** Throughput at n CPUs over n/base times the throughput at base CPUs (1.0 = linear). */
  private static double scaling(Map<Integer, Point> points, int base, int n) {
    return points.get(n).rps / ((double) n / base * points.get(base).rps);
  }

  /** "name cores, ..." for the thread groups above 2% of a core over the point's measured seconds. */
  private static String threadGroups(Point point) {
    StringBuilder line = new StringBuilder();
    for (String row : point.threadGroups) {
      String[] f = row.trim().split("\\s+", 2);
      double cores = Double.parseDouble(f[0]) / point.seconds;
      if (f.length == 2 && cores >= 0.02) {
        line.append(line.length() == 0 ? "" : ", ").append(f[1]).append(String.format(Locale.ROOT, " %.2f", cores));
      }
    }
    return line.length() == 0 ? "n/a" : line.toString();
  }

  private static String read(Path f) throws IOException {
    return Files.exists(f) ? Files.readString(f, StandardCharsets.UTF_8) : "";
  }
}
