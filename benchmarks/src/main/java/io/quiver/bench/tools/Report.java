package io.quiver.bench.tools;

import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Turns the result files of one {@code benchmarks/run.sh} run into docs/benchmarks/RESULTS.md (the
 * table, the targets with pass/miss and by how much, the machine, the exact commands) and an SVG plot
 * of throughput against p99 for each case. Every ratio is computed per repeat, from numbers measured
 * in the same run, then summarized as median and spread.
 *
 * <p>Reads {@code RUN/results/*.json} named {@code a-echo-rN}, {@code a-quiver-rN},
 * {@code b-ort-MODEL-rN}, {@code b-quiver-MODEL-rN}, {@code c-tails-rN}, {@code d-on-rN},
 * {@code d-off-rN}, optional {@code jmh.json}; and {@code RUN/machine.txt}, {@code RUN/commands.txt}.
 */
public final class Report {
  static final double TARGET_RA = 0.85;
  static final double TARGET_ADDED_CPU_US = 10;
  static final double TARGET_RB_MLP = 0.90;
  static final double TARGET_RB_CNN = 0.95;
  static final double TARGET_TAIL_50 = 3;
  static final double TARGET_TAIL_80 = 8;
  static final List<String> MODELS = List.of("mlp_784", "cnn_small");

  private final Path results;
  private final StringBuilder md = new StringBuilder();
  private final List<String[]> targets = new ArrayList<>();
  /** Case (e)'s plot, written beside the main one: x = seconds into the ramp, y = p99 µs or mean batch. */
  static final String RAMP_SVG = "latency-target.svg";
  private final Map<String, Map<String, List<double[]>>> rampPlot = new LinkedHashMap<>();
  private final Map<String, Map<String, List<double[]>>> plot = new LinkedHashMap<>();

  private Report(Path run) {
    this.results = run.resolve("results");
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 3) {
      System.err.println("usage: Report RUN_DIR RESULTS.md PLOT.svg");
      System.exit(64);
    }
    Path run = Path.of(args[0]);
    Report report = new Report(run);
    String body = report.build(run, Path.of(args[2]).getFileName().toString());
    Files.writeString(Path.of(args[1]), body);
    Files.writeString(Path.of(args[2]), SvgPlot.render(report.plot));
    Path rampSvg = Path.of(args[2]).resolveSibling(RAMP_SVG);
    Files.writeString(rampSvg, SvgPlot.render(report.rampPlot));
    System.out.println("wrote " + args[1] + ", " + args[2] + " and " + rampSvg);
  }

  /** The rows of every repeat of one result series, e.g. "a-echo" → [rows of r1, rows of r2, ...]. */
  private List<List<Value>> repeats(String series) throws IOException {
    List<List<Value>> all = new ArrayList<>();
    for (int r = 1; ; r++) {
      Path file = results.resolve(series + "-r" + r + ".json");
      if (!Files.exists(file)) {
        return all;
      }
      all.add(Json.list(Json.read(file), "results"));
    }
  }

  private static Value at(List<Value> rows, double load) {
    for (Value row : rows) {
      if (Math.abs(Json.number(row, "load") - load) < 1e-6) {
        return row;
      }
    }
    return null;
  }

  private static Value best(List<Value> rows, String field) {
    Value best = null;
    for (Value row : rows) {
      if (best == null || Json.number(row, field) > Json.number(best, field)) {
        best = row;
      }
    }
    return best;
  }

  private String build(Path run, String svgName) throws IOException {
    String mode = read(run.resolve("mode.txt")).trim();
    md.append("# Benchmark results\n\n")
        .append("Written by `benchmarks/run.sh");
    md.append(mode.equals("quick") ? " --quick" : "").append("` on ").append(read(run.resolve("date.txt")).trim())
        .append(". Do not edit by hand: rerun the script. How to read every number: [README.md](README.md).\n\n");
    if (mode.equals("quick")) {
      md.append("> **Quick mode**: short windows and few repeats on a shared 2-core machine. These numbers are noisy "
          + "(other work was running on the same cores); treat differences under ≈15% as noise and rerun the full mode "
          + "on a quiet machine before quoting them.\n\n");
    }
    md.append("## Machine\n\n```\n").append(read(run.resolve("machine.txt")).trim()).append("\n```\n\n");

    StringBuilder tables = new StringBuilder();
    caseA(tables);
    caseB(tables);
    caseC(tables);
    caseD(tables);
    caseE(tables);
    caseF(tables);
    caseCuda(tables);
    jmh(tables);

    md.append("## Targets (from issue 4)\n\n| target | measured (median, spread over repeats) | verdict |\n|---|---|---|\n");
    for (String[] t : targets) {
      md.append("| ").append(t[0]).append(" | ").append(t[1]).append(" | ").append(t[2]).append(" |\n");
    }
    md.append("\nA ratio is computed inside each repeat (both sides measured minutes apart on the same machine), "
        + "then the median over repeats is compared with the target; the spread is min–max over repeats.\n\n");
    md.append("![throughput vs p99](").append(svgName).append(")\n\n");
    md.append(tables);
    md.append("## Exact commands\n\n```\n").append(read(run.resolve("commands.txt")).trim()).append("\n```\n");
    return md.toString();
  }

  /** Marks a row the load generator flagged: it fell behind its own schedule, so its latencies are its backlog. */
  static final String CLIENT_BOUND = "client-bound: not a server measurement";

  static boolean clientBound(Value row) {
    return Json.bool(row, "client_bound");
  }

  private void target(String name, Stats measured, String format, double target, boolean atLeast) {
    target(name, measured, format, target, atLeast, 0);
  }

  /** @param clientBound repeats left out because the client was bound; with none left, no verdict. */
  private void target(String name, Stats measured, String format, double target, boolean atLeast, int clientBound) {
    String verdict;
    if (measured.n() == 0 && clientBound > 0) {
      targets.add(new String[] {name, "n/a (" + clientBound + " client-bound)", "**" + CLIENT_BOUND + "**"});
      return;
    }
    if (measured.n() == 0) {
      verdict = "not measured";
    } else {
      boolean pass = atLeast ? measured.median() >= target : measured.median() <= target;
      double by = measured.median() - target;
      verdict = (pass ? "**pass**" : "**miss**") + String.format(Locale.ROOT, " (%s%s, %+.0f%%)", by >= 0 ? "+" : "",
          String.format(Locale.ROOT, format, by), 100 * by / target);
    }
    if (clientBound > 0) {
      verdict += " (" + clientBound + " client-bound repeat(s) left out)";
    }
    targets.add(new String[] {name, measured.format(format), verdict});
  }

  // (a) identity FP32[16]: Quiver vs the bare echo.
  private void caseA(StringBuilder out) throws IOException {
    List<List<Value>> echo = repeats("a-echo");
    List<List<Value>> quiver = repeats("a-quiver");
    int n = Math.min(echo.size(), quiver.size());
    List<Double> ra = new ArrayList<>();
    List<Double> addedP50 = new ArrayList<>();
    List<Double> addedCpu = new ArrayList<>();
    List<Double> echoBest = new ArrayList<>();
    List<Double> quiverBest = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      Value e = best(echo.get(r), "throughput_rps");
      Value q = best(quiver.get(r), "throughput_rps");
      echoBest.add(Json.number(e, "throughput_rps"));
      quiverBest.add(Json.number(q, "throughput_rps"));
      ra.add(Json.number(q, "throughput_rps") / Json.number(e, "throughput_rps"));
      Value e1 = at(echo.get(r), 1);
      Value q1 = at(quiver.get(r), 1);
      if (e1 != null && q1 != null) {
        addedP50.add(Json.number(q1, "p50_us") - Json.number(e1, "p50_us"));
      }
      Value eSame = at(echo.get(r), Json.number(q, "load"));
      if (eSame != null) {
        addedCpu.add(Json.number(q, "server_cpu_us_per_req") - Json.number(eSame, "server_cpu_us_per_req"));
      }
    }
    target("R_a = Quiver / echo throughput at the best concurrency (identity FP32[16])", Stats.of(ra), "%.3f", TARGET_RA, true);
    target("added server CPU per request vs echo, µs (at Quiver's best concurrency)", Stats.of(addedCpu), "%.2f",
        TARGET_ADDED_CPU_US, false);
    out.append("## (a) Protocol overhead: identity FP32[16], Quiver vs bare gRPC echo\n\n")
        .append("Best throughput: echo ").append(Stats.of(echoBest).format("%.0f")).append(" req/s, Quiver ")
        .append(Stats.of(quiverBest).format("%.0f")).append(" req/s. Added p50 at concurrency 1: ")
        .append(Stats.of(addedP50).format("%.1f")).append(" µs.\n\n");
    sweepTable(out, Map.of("echo", echo, "quiver", quiver), List.of("echo", "quiver"));
    series("(a) identity FP32[16]", "echo", echo);
    series("(a) identity FP32[16]", "quiver", quiver);
  }

  private void sweepTable(StringBuilder out, Map<String, List<List<Value>>> bySide, List<String> order) {
    out.append("| server | load | req/s | p50 µs | p99 µs | server CPU µs/req | client CPU µs/req | mean batch |\n")
        .append("|---|---|---|---|---|---|---|---|\n");
    for (String side : order) {
      List<List<Value>> reps = bySide.get(side);
      TreeMap<Double, List<Value>> byLoad = new TreeMap<>();
      for (List<Value> rows : reps) {
        for (Value row : rows) {
          byLoad.computeIfAbsent(Json.number(row, "load"), k -> new ArrayList<>()).add(row);
        }
      }
      for (Map.Entry<Double, List<Value>> e : byLoad.entrySet()) {
        List<Value> rows = e.getValue();
        String load = Json.string(rows.get(0), "mode").equals("rate")
            ? String.format(Locale.ROOT, "%.0f/s", e.getKey()) : "c=" + e.getKey().intValue();
        long bound = rows.stream().filter(Report::clientBound).count();
        if (bound > 0) {
          load += " ⚠ " + CLIENT_BOUND + " (" + bound + "/" + rows.size() + ")";
        }
        out.append("| ").append(side).append(" | ").append(load)
            .append(" | ").append(stat(rows, "throughput_rps", "%.0f"))
            .append(" | ").append(stat(rows, "p50_us", "%.0f"))
            .append(" | ").append(stat(rows, "p99_us", "%.0f"))
            .append(" | ").append(stat(rows, "server_cpu_us_per_req", "%.1f"))
            .append(" | ").append(stat(rows, "client_cpu_us_per_req", "%.1f"))
            .append(" | ").append(stat(rows, "mean_batch", "%.1f")).append(" |\n");
      }
    }
    out.append('\n');
  }

  /** Per-repeat values of a discrete choice (best batch, best concurrency), e.g. "4, 64". */
  private static String list(List<Double> values) {
    StringBuilder s = new StringBuilder();
    for (double v : values) {
      s.append(s.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.0f", v));
    }
    return s.toString();
  }

  private static String stat(List<Value> rows, String field, String format) {
    List<Double> v = new ArrayList<>();
    for (Value row : rows) {
      v.add(Json.number(row, field));
    }
    return Stats.of(v).format(format);
  }

  /** Adds a plot series: per load level, the median throughput and median p99 over repeats. */
  private void series(String panel, String name, List<List<Value>> reps) {
    TreeMap<Double, List<Value>> byLoad = new TreeMap<>();
    for (List<Value> rows : reps) {
      for (Value row : rows) {
        byLoad.computeIfAbsent(Json.number(row, "load"), k -> new ArrayList<>()).add(row);
      }
    }
    List<double[]> points = new ArrayList<>();
    for (List<Value> rows : byLoad.values()) {
      points.add(new double[] {median(rows, r -> Json.number(r, "throughput_rps")), median(rows, r -> Json.number(r, "p99_us"))});
    }
    plot.computeIfAbsent(panel, k -> new LinkedHashMap<>()).put(name, points);
  }

  private static double median(List<Value> rows, Function<Value, Double> f) {
    List<Double> v = new ArrayList<>();
    for (Value row : rows) {
      v.add(f.apply(row));
    }
    return Stats.of(v).median();
  }

  // (b) compute efficiency: Quiver with dynamic batching vs in-process ONNX Runtime, per CPU-second.
  private void caseB(StringBuilder out) throws IOException {
    out.append("## (b) Compute efficiency: Quiver (dynamic batching) vs in-process ONNX Runtime, per CPU-second\n\n")
        .append("| model | ORT best batch | ORT infer/CPU-s | ORT infer/s | Quiver best load | Quiver infer/server-CPU-s | Quiver infer/s | mean formed batch | R_b |\n")
        .append("|---|---|---|---|---|---|---|---|---|\n");
    for (String model : MODELS) {
      List<List<Value>> ort = repeats("b-ort-" + model);
      List<List<Value>> quiver = repeats("b-quiver-" + model);
      int n = Math.min(ort.size(), quiver.size());
      List<Double> rb = new ArrayList<>();
      List<Double> ortCpu = new ArrayList<>();
      List<Double> ortWall = new ArrayList<>();
      List<Double> ortBatch = new ArrayList<>();
      List<Double> qCpu = new ArrayList<>();
      List<Double> qWall = new ArrayList<>();
      List<Double> qBatch = new ArrayList<>();
      List<Double> qLoad = new ArrayList<>();
      for (int r = 0; r < n; r++) {
        Value o = best(ort.get(r), "inferences_per_cpu_s");
        Value q = best(quiver.get(r), "inferences_per_server_cpu_s");
        ortCpu.add(Json.number(o, "inferences_per_cpu_s"));
        ortWall.add(Json.number(o, "inferences_per_s"));
        ortBatch.add(Json.number(o, "batch_size"));
        qCpu.add(Json.number(q, "inferences_per_server_cpu_s"));
        qWall.add(Json.number(q, "inferences_per_s"));
        qBatch.add(Json.number(q, "mean_batch"));
        qLoad.add(Json.number(q, "load"));
        rb.add(Json.number(q, "inferences_per_server_cpu_s") / Json.number(o, "inferences_per_cpu_s"));
      }
      Stats rbStats = Stats.of(rb);
      out.append("| ").append(model).append(" | ").append(list(ortBatch)).append(" | ")
          .append(Stats.of(ortCpu).format("%.0f")).append(" | ").append(Stats.of(ortWall).format("%.0f")).append(" | c=")
          .append(list(qLoad)).append(" | ").append(Stats.of(qCpu).format("%.0f")).append(" | ")
          .append(Stats.of(qWall).format("%.0f")).append(" | ").append(Stats.of(qBatch).format("%.1f")).append(" | ")
          .append(rbStats.format("%.3f")).append(" |\n");
      target("R_b " + model + " = Quiver inferences per server CPU-second / in-process ORT per CPU-second (best batch)",
          rbStats, "%.3f", model.equals("mlp_784") ? TARGET_RB_MLP : TARGET_RB_CNN, true);
      series("(b) " + model, "quiver", quiver);
    }
    out.append("\nORT per batch size (median over repeats):\n\n| model | batch | infer/s | infer/CPU-s |\n|---|---|---|---|\n");
    for (String model : MODELS) {
      TreeMap<Double, List<Value>> byBatch = new TreeMap<>();
      for (List<Value> rows : repeats("b-ort-" + model)) {
        for (Value row : rows) {
          byBatch.computeIfAbsent(Json.number(row, "batch_size"), k -> new ArrayList<>()).add(row);
        }
      }
      for (Map.Entry<Double, List<Value>> e : byBatch.entrySet()) {
        out.append("| ").append(model).append(" | ").append(e.getKey().intValue()).append(" | ")
            .append(stat(e.getValue(), "inferences_per_s", "%.0f")).append(" | ")
            .append(stat(e.getValue(), "inferences_per_cpu_s", "%.0f")).append(" |\n");
      }
    }
    out.append("\nQuiver load levels:\n\n");
    Map<String, List<List<Value>>> sides = new LinkedHashMap<>();
    for (String model : MODELS) {
      sides.put(model, repeats("b-quiver-" + model));
    }
    sweepTable(out, sides, MODELS);
  }

  // (c) open-loop tails at 50% and 80% of saturation.
  private void caseC(StringBuilder out) throws IOException {
    List<List<Value>> quiverA = repeats("a-quiver");
    List<Double> unloaded = new ArrayList<>();
    for (List<Value> rows : quiverA) {
      Value c1 = at(rows, 1);
      if (c1 != null) {
        unloaded.add(Json.number(c1, "p50_us"));
      }
    }
    double p50 = Stats.of(unloaded).median();
    List<List<Value>> tails = repeats("c-tails");
    List<Double> r50 = new ArrayList<>();
    List<Double> r80 = new ArrayList<>();
    int[] bound = new int[2];
    // run.sh runs two rates per repeat, in order: 50% then 80% of that repeat's saturation. A row the
    // client could not generate measures the client's backlog: it gives no ratio.
    for (List<Value> rows : tails) {
      if (rows.size() >= 2) {
        for (int i = 0; i < 2; i++) {
          if (clientBound(rows.get(i))) {
            bound[i]++;
          } else {
            (i == 0 ? r50 : r80).add(Json.number(rows.get(i), "p99_us") / p50);
          }
        }
      }
    }
    target("p99 / unloaded p50 at 50% of saturation (identity FP32[16], Poisson)", Stats.of(r50), "%.2f", TARGET_TAIL_50,
        false, bound[0]);
    target("p99 / unloaded p50 at 80% of saturation (identity FP32[16], Poisson)", Stats.of(r80), "%.2f", TARGET_TAIL_80,
        false, bound[1]);
    out.append("## (c) Open-loop tails (Poisson arrivals, latency from the intended send time)\n\n")
        .append(String.format(Locale.ROOT, "Saturation = Quiver's best closed-loop throughput in (a), per repeat; "
            + "unloaded p50 = Quiver's p50 at concurrency 1 in (a): %.0f µs (median). A row marked client-bound is one "
            + "where `quiver perf` sent below 95%% of the offered rate (or ended a window behind its schedule): its "
            + "latencies are the client's backlog, and it gives no verdict.%n%n", p50));
    sweepTable(out, Map.of("quiver", tails), List.of("quiver"));
    series("(c) open-loop tails", "quiver (Poisson)", tails);
    // The closed-loop sweep for context: open-loop points should sit left of its knee.
    series("(c) open-loop tails", "quiver closed loop (a)", quiverA);
  }

  // Optional: the CUDA execution-provider case (run.sh --cuda on a machine with an NVIDIA GPU).
  private void caseCuda(StringBuilder out) throws IOException {
    boolean any = false;
    for (String model : MODELS) {
      List<List<Value>> reps = repeats("cuda-ort-" + model);
      if (reps.isEmpty()) {
        continue;
      }
      if (!any) {
        out.append("## CUDA execution provider (in-process ONNX Runtime)\n\n| model | batch | infer/s |\n|---|---|---|\n");
        any = true;
      }
      for (Value row : reps.get(0)) {
        out.append("| ").append(model).append(" | ").append((int) Json.number(row, "batch_size")).append(" | ")
            .append(String.format(Locale.ROOT, "%.0f", Json.number(row, "inferences_per_s"))).append(" |\n");
      }
    }
    if (any) {
      out.append('\n');
    }
  }

  // (d) batching on vs off.
  private void caseD(StringBuilder out) throws IOException {
    List<List<Value>> on = repeats("d-on");
    List<List<Value>> off = repeats("d-off");
    List<Double> gain = new ArrayList<>();
    for (int r = 0; r < Math.min(on.size(), off.size()); r++) {
      gain.add(Json.number(on.get(r).get(0), "throughput_rps") / Json.number(off.get(r).get(0), "throughput_rps"));
    }
    out.append("## (d) Dynamic batching on vs off, mlp_784 at concurrency 64\n\n")
        .append("Throughput on/off: ").append(Stats.of(gain).format("%.2f")).append("×. "
            + "Off = the same model with no `dynamic_batching` block (every request its own batch, through the same queue).\n\n");
    List<Double> batchOn = new ArrayList<>();
    List<Double> p99Ratio = new ArrayList<>();
    for (int r = 0; r < Math.min(on.size(), off.size()); r++) {
      batchOn.add(Json.number(on.get(r).get(0), "mean_batch"));
      p99Ratio.add(Json.number(on.get(r).get(0), "p99_us") / Json.number(off.get(r).get(0), "p99_us"));
    }
    out.append("Issue 3's claim (dynamic batching ≥ 3× the throughput of none, p99 no worse): throughput on/off ")
        .append(Stats.of(gain).format("%.2f")).append("× (target ≥ 3), mean formed batch with batching ")
        .append(Stats.of(batchOn).format("%.1f")).append(", p99 on/off ").append(Stats.of(p99Ratio).format("%.2f"))
        .append(" (target ≤ 1). Off = `max_batch_size: 0` (every request its own batch; its mean batch must read 1.0).\n\n");
    target("issue 3: throughput batching on / off, mlp_784 c=64", Stats.of(gain), "%.2f", 3, true);
    target("issue 3: p99 batching on / off, mlp_784 c=64", Stats.of(p99Ratio), "%.2f", 1, false);
    sweepTable(out, Map.of("batching on", on, "batching off", off), List.of("batching on", "batching off"));
    series("(d) mlp_784 c=64", "batching on", on);
    series("(d) mlp_784 c=64", "batching off", off);
  }

  // (e) latency target under a load that rises and falls: one row per step (one window each).
  private void caseE(StringBuilder out) throws IOException {
    List<List<Value>> fixed = repeats("e-fixed");
    List<List<Value>> target = repeats("e-target");
    if (fixed.isEmpty() && target.isEmpty()) {
      return;
    }
    out.append("## (e) Latency target: mlp_784, open-loop rate stepped up then down\n\n")
        .append("Two copies of mlp_784 with `max_batch_size: 64` and a 4000 µs queue delay, one with "
            + "`quiver.latency_target_us: 5000`. One window per step; mean batch from ModelStatistics deltas. "
            + "Repeat 1 shown; plot: [").append(RAMP_SVG).append("](").append(RAMP_SVG).append(").\n\n")
        .append("| step | offered/s | fixed: req/s | fixed: mean batch | fixed: p99 µs | target: req/s | target: mean batch | target: p99 µs |\n")
        .append("|---|---|---|---|---|---|---|---|\n");
    List<Value> f = fixed.isEmpty() ? List.of() : fixed.get(0);
    List<Value> t = target.isEmpty() ? List.of() : target.get(0);
    for (int i = 0; i < Math.max(f.size(), t.size()); i++) {
      Value a = i < f.size() ? f.get(i) : null;
      Value b = i < t.size() ? t.get(i) : null;
      Value any = a != null ? a : b;
      String mark = (a != null && clientBound(a)) || (b != null && clientBound(b)) ? " ⚠ client-bound" : "";
      out.append(String.format(Locale.ROOT, "| %d%s | %.0f | %s | %s | %s | %s | %s | %s |\n", i + 1, mark, Json.number(any, "load"),
          cell(a, "throughput_rps", "%.0f"), cell(a, "mean_batch", "%.1f"), cell(a, "p99_us", "%.0f"),
          cell(b, "throughput_rps", "%.0f"), cell(b, "mean_batch", "%.1f"), cell(b, "p99_us", "%.0f")));
    }
    out.append('\n');
    rampSeries("fixed", f);
    rampSeries("target 5 ms", t);
  }

  private void rampSeries(String name, List<Value> rows) {
    List<double[]> p99 = new ArrayList<>();
    List<double[]> batch = new ArrayList<>();
    List<double[]> rate = new ArrayList<>();
    double seconds = 0;
    for (Value row : rows) {
      seconds += Json.number(row, "windows") > 0 ? 1 : 0; // one window per step: x is the step's end
      p99.add(new double[] {seconds, Json.number(row, "p99_us")});
      batch.add(new double[] {seconds, Json.number(row, "mean_batch")});
      rate.add(new double[] {seconds, Json.number(row, "throughput_rps")});
    }
    rampPlot.computeIfAbsent("(e) p99 µs per step", k -> new LinkedHashMap<>()).put(name, p99);
    rampPlot.computeIfAbsent("(e) mean formed batch per step", k -> new LinkedHashMap<>()).put(name, batch);
    rampPlot.computeIfAbsent("(e) served req/s per step", k -> new LinkedHashMap<>()).put(name, rate);
  }

  private static String cell(Value row, String field, String format) {
    return row == null ? "" : String.format(Locale.ROOT, format, Json.number(row, field));
  }

  // (f) overload: offered vs served vs rejected at 1×, 2×, 3× saturation, small queue.
  private void caseF(StringBuilder out) throws IOException {
    List<List<Value>> reps = repeats("f-overload");
    if (reps.isEmpty()) {
      return;
    }
    out.append("## (f) Overload: mlp_784 with `max_queue_size: 32`, open loop at 1×, 2×, 3× saturation\n\n")
        .append("Saturation = `mlp_784_bounded`'s closed-loop throughput at concurrency 32 (its queue bound), measured "
            + "after its warm-up. All rates are per second over the same measured windows: sent = requests the client "
            + "sent, served = answered OK, rejected = answered RESOURCE_EXHAUSTED or UNAVAILABLE, other errors = any "
            + "other failure (mostly DEADLINE_EXCEEDED at the 2 s timeout); sent − served − rejected − other = growth of "
            + "the requests in flight. p99 is of served requests, from the intended send time.\n\n")
        .append("| offered (target)/s | sent/s | served/s | rejected/s | other errors/s | in flight Δ/s | p50 µs | p99 µs | server CPU µs/served |\n")
        .append("|---|---|---|---|---|---|---|---|---|\n");
    TreeMap<Double, List<Value>> byLoad = new TreeMap<>();
    for (List<Value> rows : reps) {
      for (Value row : rows) {
        byLoad.computeIfAbsent(Json.number(row, "load"), k -> new ArrayList<>()).add(row);
      }
    }
    for (Map.Entry<Double, List<Value>> e : byLoad.entrySet()) {
      List<Value> rows = e.getValue();
      List<Double> other = new ArrayList<>();
      List<Double> inflight = new ArrayList<>();
      for (Value row : rows) {
        // Per second over the measured windows, like the other columns (errors_rps includes the rejections).
        double errors = Json.number(row, "errors_rps");
        other.add(errors - Json.number(row, "rejected_rps"));
        inflight.add(Json.number(row, "offered_rps") - Json.number(row, "throughput_rps") - errors);
      }
      long bound = rows.stream().filter(Report::clientBound).count();
      String mark = bound > 0 ? " ⚠ " + CLIENT_BOUND : "";
      out.append(String.format(Locale.ROOT, "| %.0f%s | %s | %s | %s | %s | %s | %s | %s | %s |\n", e.getKey(), mark,
          stat(rows, "offered_rps", "%.0f"), stat(rows, "throughput_rps", "%.0f"), stat(rows, "rejected_rps", "%.0f"),
          Stats.of(other).format("%.0f"), Stats.of(inflight).format("%+.0f"), stat(rows, "p50_us", "%.0f"),
          stat(rows, "p99_us", "%.0f"), stat(rows, "server_cpu_us_per_req", "%.1f")));
    }
    out.append('\n');
  }

  private void jmh(StringBuilder out) throws IOException {
    Path file = results.resolve("jmh.json");
    if (!Files.exists(file)) {
      return;
    }
    out.append("## JMH (per operation; `-prof gc` bytes per operation)\n\n| benchmark | params | ns/op | B/op |\n|---|---|---|---|\n");
    for (Value b : Json.list(Json.read(file))) {
      String name = Json.string(b, "benchmark").replace("io.quiver.bench.jmh.", "");
      StringBuilder params = new StringBuilder();
      Value p = Json.get(b, "params");
      if (p != null && p.hasStructValue()) {
        new TreeMap<>(p.getStructValue().getFieldsMap()).forEach((k, v) ->
            params.append(params.length() == 0 ? "" : ", ").append(k).append('=').append(v.getStringValue()));
      }
      double score = Json.number(b, "primaryMetric", "score");
      // JMH 1.37 names it "gc.alloc.rate.norm"; older versions prefixed a middle dot.
      double bytes = Json.number(b, "secondaryMetrics", "gc.alloc.rate.norm", "score");
      if (Double.isNaN(bytes)) {
        bytes = Json.number(b, "secondaryMetrics", "·gc.alloc.rate.norm", "score");
      }
      out.append("| ").append(name).append(" | ").append(params).append(" | ")
          .append(String.format(Locale.ROOT, "%.1f", score)).append(" | ")
          .append(Double.isNaN(bytes) ? "n/a" : String.format(Locale.ROOT, "%.0f", bytes)).append(" |\n");
    }
    out.append('\n');
  }

  private static String read(Path file) throws IOException {
    return Files.exists(file) ? Files.readString(file) : "(missing " + file.getFileName() + ")";
  }
}
