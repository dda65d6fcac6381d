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
 * {@code a-syscalls-rN} (optional: perf stat), {@code b-ort-MODEL-rN}, {@code b-quiver-MODEL-rN},
 * {@code b-echo-MODEL-rN}, {@code c-tails-rN}, {@code c-tails-echo-rN}, {@code d-on-rN},
 * {@code d-off-rN}, {@code e-*}, {@code f-*}, {@code g-rest-rN}, {@code g-rest-h2-rN}, optional {@code jmh.json}; and
 * {@code RUN/machine.txt}, {@code RUN/commands.txt}.
 */
public final class Report {
  // Issue 11's targets (the hot path), each a ratio against a baseline measured in the same repeat.
  static final double TARGET_RA = 0.85;
  static final double TARGET_CPU_RATIO_C256 = 1.3;
  static final double TARGET_CPU_RATIO_C64 = 1.5;
  static final double TARGET_CPU_RATIO_C1 = 2.0;
  static final double TARGET_ADDED_P50_C1_US = 50;
  static final double TARGET_CLIENT_CPU_RATIO = 1.2;
  static final double TARGET_SWITCHES_PER_REQ = 0.2;
  static final double TARGET_SYSCALLS_PER_REQ = 0.3;
  static final double TARGET_ADDED_ALLOC_BYTES = 1024;
  static final double TARGET_TAIL_VS_ECHO = 1.5;
  static final double TARGET_COMPUTE_OF_LIMIT = 0.95;
  static final double TARGET_REST_VS_GRPC_CPU = 1.5;
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
    caseG(tables);
    caseCuda(tables);
    jmh(tables);

    md.append("## Targets (issue 11, the hot path; issue 3's batching claims)\n\n| target | measured (median, spread over repeats) | verdict |\n|---|---|---|\n");
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
    List<Double> ra64 = new ArrayList<>();
    List<Double> ra256 = new ArrayList<>();
    List<Double> cpu1 = new ArrayList<>();
    List<Double> cpu64 = new ArrayList<>();
    List<Double> cpu256 = new ArrayList<>();
    List<Double> addedP50 = new ArrayList<>();
    List<Double> clientCpu64 = new ArrayList<>();
    List<Double> switches64 = new ArrayList<>();
    List<Double> echoSwitches64 = new ArrayList<>();
    List<Double> addedAlloc64 = new ArrayList<>();
    List<Double> echoBest = new ArrayList<>();
    List<Double> quiverBest = new ArrayList<>();
    for (int r = 0; r < n; r++) {
      echoBest.add(Json.number(best(echo.get(r), "throughput_rps"), "throughput_rps"));
      quiverBest.add(Json.number(best(quiver.get(r), "throughput_rps"), "throughput_rps"));
      ratio(ra64, quiver.get(r), echo.get(r), 64, "throughput_rps");
      ratio(ra256, quiver.get(r), echo.get(r), 256, "throughput_rps");
      ratio(cpu1, quiver.get(r), echo.get(r), 1, "server_cpu_us_per_req");
      ratio(cpu64, quiver.get(r), echo.get(r), 64, "server_cpu_us_per_req");
      ratio(cpu256, quiver.get(r), echo.get(r), 256, "server_cpu_us_per_req");
      ratio(clientCpu64, quiver.get(r), echo.get(r), 64, "client_cpu_us_per_req");
      Value e1 = at(echo.get(r), 1);
      Value q1 = at(quiver.get(r), 1);
      if (e1 != null && q1 != null) {
        addedP50.add(Json.number(q1, "p50_us") - Json.number(e1, "p50_us"));
      }
      Value q64 = at(quiver.get(r), 64);
      Value e64 = at(echo.get(r), 64);
      if (q64 != null && known(q64, "server_cs_per_req")) {
        switches64.add(Json.number(q64, "server_cs_per_req"));
      }
      if (e64 != null && known(e64, "server_cs_per_req")) {
        echoSwitches64.add(Json.number(e64, "server_cs_per_req"));
      }
      if (q64 != null && e64 != null && known(q64, "server_alloc_bytes_per_req") && known(e64, "server_alloc_bytes_per_req")) {
        addedAlloc64.add(Json.number(q64, "server_alloc_bytes_per_req") - Json.number(e64, "server_alloc_bytes_per_req"));
      }
    }
    target("server CPU per request, Quiver / echo, c=256 (identity FP32[16])", Stats.of(cpu256), "%.2f",
        TARGET_CPU_RATIO_C256, false);
    target("server CPU per request, Quiver / echo, c=64", Stats.of(cpu64), "%.2f", TARGET_CPU_RATIO_C64, false);
    target("server CPU per request, Quiver / echo, c=1", Stats.of(cpu1), "%.2f", TARGET_CPU_RATIO_C1, false);
    target("added p50 at c=1, Quiver − echo, µs", Stats.of(addedP50), "%.1f", TARGET_ADDED_P50_C1_US, false);
    target("R_a = Quiver / echo throughput, c=64 (the echo is client-bound here)", Stats.of(ra64), "%.3f", TARGET_RA, true);
    target("R_a = Quiver / echo throughput, c=256", Stats.of(ra256), "%.3f", TARGET_RA, true);
    target("client CPU per request against Quiver / against the echo, c=64", Stats.of(clientCpu64), "%.2f",
        TARGET_CLIENT_CPU_RATIO, false);
    target("server context switches per request, c=64 (echo: " + Stats.of(echoSwitches64).format("%.3f") + ")",
        Stats.of(switches64), "%.3f", TARGET_SWITCHES_PER_REQ, false);
    target("server bytes allocated per request, Quiver − echo, c=64", Stats.of(addedAlloc64), "%.0f",
        TARGET_ADDED_ALLOC_BYTES, false);
    syscalls();
    out.append("## (a) Protocol overhead: identity FP32[16], Quiver vs bare gRPC echo\n\n")
        .append("Best throughput: echo ").append(Stats.of(echoBest).format("%.0f")).append(" req/s, Quiver ")
        .append(Stats.of(quiverBest).format("%.0f")).append(" req/s. Added p50 at concurrency 1: ")
        .append(Stats.of(addedP50).format("%.1f")).append(" µs. Server bytes allocated (JMX, all threads) and "
            + "context switches (/proc, all threads) per request are measured over the same windows as the CPU.\n\n");
    sweepTable(out, Map.of("echo", echo, "quiver", quiver), List.of("echo", "quiver"));
    series("(a) identity FP32[16]", "echo", echo);
    series("(a) identity FP32[16]", "quiver", quiver);
  }

  /** Syscalls per request at c=64 from `perf stat` during a run of its own (absent where perf is not available). */
  private void syscalls() throws IOException {
    List<Double> quiver = new ArrayList<>();
    List<Double> echo = new ArrayList<>();
    for (List<Value> rows : repeats("a-syscalls")) {
      for (Value row : rows) {
        double perRequest = Json.number(row, "syscalls_per_req");
        if (!Double.isNaN(perRequest)) {
          (Json.string(row, "server").equals("echo") ? echo : quiver).add(perRequest);
        }
      }
    }
    target("server syscalls per request, c=64, perf stat (echo: " + Stats.of(echo).format("%.3f") + ")",
        Stats.of(quiver), "%.3f", TARGET_SYSCALLS_PER_REQ, false);
  }

  /** Adds {@code quiver / echo} of {@code field} at concurrency {@code load}, when both rows exist and are known. */
  private static void ratio(List<Double> into, List<Value> quiver, List<Value> echo, double load, String field) {
    Value q = at(quiver, load);
    Value e = at(echo, load);
    if (q != null && e != null && known(q, field) && known(e, field) && Json.number(e, field) > 0) {
      into.add(Json.number(q, field) / Json.number(e, field));
    }
  }

  private static boolean known(Value row, String field) {
    double v = Json.number(row, field);
    return !Double.isNaN(v) && v >= 0;
  }

  private void sweepTable(StringBuilder out, Map<String, List<List<Value>>> bySide, List<String> order) {
    out.append("| server | load | req/s | p50 µs | p99 µs | server CPU µs/req | server B/req | server cs/req | client CPU µs/req | mean batch |\n")
        .append("|---|---|---|---|---|---|---|---|---|---|\n");
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
            .append(" | ").append(stat(rows, "server_alloc_bytes_per_req", "%.0f"))
            .append(" | ").append(stat(rows, "server_cs_per_req", "%.3f"))
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
        .append("R_b = Quiver's inferences per server CPU-second / in-process ORT's at its best batch: no server with a "
            + "network in front can reach 1. The limit a server can reach is 1 / (ORT's CPU per inference at the batch "
            + "Quiver forms + the bare echo's server CPU per request for the same request payload); "
            + "\"of limit\" is Quiver's figure over that limit (target ≥ 0.95).\n\n")
        .append("| model | ORT best batch | ORT infer/CPU-s | ORT infer/s | Quiver best load | Quiver infer/server-CPU-s | Quiver infer/s | mean formed batch | R_b | echo CPU µs/req (same payload) | limit infer/CPU-s | of limit |\n")
        .append("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (String model : MODELS) {
      List<List<Value>> ort = repeats("b-ort-" + model);
      List<List<Value>> quiver = repeats("b-quiver-" + model);
      List<List<Value>> echoSame = repeats("b-echo-" + model);
      int n = Math.min(ort.size(), quiver.size());
      List<Double> rb = new ArrayList<>();
      List<Double> ofLimit = new ArrayList<>();
      List<Double> limits = new ArrayList<>();
      List<Double> echoCpu = new ArrayList<>();
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
        if (r < echoSame.size() && !echoSame.get(r).isEmpty()) {
          double echoUs = Json.number(echoSame.get(r).get(0), "server_cpu_us_per_req");
          Value atBatch = nearestBatch(ort.get(r), Json.number(q, "mean_batch"));
          double ortUs = 1e6 / Json.number(atBatch, "inferences_per_cpu_s");
          double limit = 1e6 / (ortUs + echoUs);
          echoCpu.add(echoUs);
          limits.add(limit);
          ofLimit.add(Json.number(q, "inferences_per_server_cpu_s") / limit);
        }
      }
      Stats rbStats = Stats.of(rb);
      out.append("| ").append(model).append(" | ").append(list(ortBatch)).append(" | ")
          .append(Stats.of(ortCpu).format("%.0f")).append(" | ").append(Stats.of(ortWall).format("%.0f")).append(" | c=")
          .append(list(qLoad)).append(" | ").append(Stats.of(qCpu).format("%.0f")).append(" | ")
          .append(Stats.of(qWall).format("%.0f")).append(" | ").append(Stats.of(qBatch).format("%.1f")).append(" | ")
          .append(rbStats.format("%.3f")).append(" | ").append(Stats.of(echoCpu).format("%.1f")).append(" | ")
          .append(Stats.of(limits).format("%.0f")).append(" | ").append(Stats.of(ofLimit).format("%.3f")).append(" |\n");
      target("compute: Quiver inferences per server CPU-second / the limit (ORT at Quiver's batch + echo), " + model,
          Stats.of(ofLimit), "%.3f", TARGET_COMPUTE_OF_LIMIT, true);
      targets.add(new String[] {"R_b " + model + " = Quiver / in-process ORT at its best batch (no target: see (b))",
          rbStats.format("%.3f"), "information"});
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

  /** The ORT row whose batch size is nearest to {@code batch} (the batch Quiver formed). */
  private static Value nearestBatch(List<Value> ortRows, double batch) {
    Value nearest = null;
    for (Value row : ortRows) {
      if (nearest == null || Math.abs(Json.number(row, "batch_size") - batch)
          < Math.abs(Json.number(nearest, "batch_size") - batch)) {
        nearest = row;
      }
    }
    return nearest;
  }

  // (c) open-loop tails at 50% and 80% of saturation.
  private void caseC(StringBuilder out) throws IOException {
    List<List<Value>> quiverA = repeats("a-quiver");
    List<List<Value>> tails = repeats("c-tails");
    List<List<Value>> echoTails = repeats("c-tails-echo");
    List<Double> r50 = new ArrayList<>();
    List<Double> r80 = new ArrayList<>();
    List<Double> sent50 = new ArrayList<>();
    List<Double> sent80 = new ArrayList<>();
    int[] bound = new int[2];
    // run.sh runs two rates per repeat, in order: 50% then 80% of that repeat's Quiver saturation, against
    // Quiver and against the echo at the same absolute rates. A row the client could not generate
    // measures the client's backlog: it gives no ratio. Neither does a rate the echo itself could not be
    // served at within the client's in-flight limit: the floor the ratio divides by is then the client's.
    for (int r = 0; r < Math.min(tails.size(), echoTails.size()); r++) {
      List<Value> q = tails.get(r);
      List<Value> e = echoTails.get(r);
      for (int i = 0; i < Math.min(2, Math.min(q.size(), e.size())); i++) {
        if (clientBound(q.get(i)) || clientBound(e.get(i)) || Json.bool(e.get(i), "inflight_limited")) {
          bound[i]++;
          continue;
        }
        (i == 0 ? r50 : r80).add(Json.number(q.get(i), "p99_us") / Json.number(e.get(i), "p99_us"));
        (i == 0 ? sent50 : sent80).add(Json.number(q.get(i), "throughput_rps") / Json.number(q.get(i), "load"));
      }
    }
    target("open loop at 50% of saturation: p99 Quiver / p99 echo at the same rate (identity FP32[16], Poisson)",
        Stats.of(r50), "%.2f", TARGET_TAIL_VS_ECHO, false, bound[0]);
    target("open loop at 80% of saturation: p99 Quiver / p99 echo at the same rate", Stats.of(r80), "%.2f",
        TARGET_TAIL_VS_ECHO, false, bound[1]);
    target("open loop at 80%: served / offered (sustained)", Stats.of(sent80), "%.3f", 0.95, true, bound[1]);
    out.append("## (c) Open-loop tails (Poisson arrivals, latency from the intended send time)\n\n")
        .append("Saturation = Quiver's best closed-loop throughput in (a), per repeat; the echo is driven at the same "
            + "absolute rates by the same client, so its p99 is the floor the client and the machine set (on 2 shared "
            + "cores the measuring client dominates the tail). A row marked client-bound is one where `quiver perf` "
            + "sent below 95% of the offered rate (or ended a window behind its schedule): its latencies are the "
            + "client's backlog, and it gives no verdict.\n\n");
    sweepTable(out, Map.of("quiver", tails, "echo", echoTails), List.of("quiver", "echo"));
    series("(c) open-loop tails", "quiver (Poisson)", tails);
    series("(c) open-loop tails", "echo (Poisson)", echoTails);
    series("(c) open-loop tails", "quiver closed loop (a)", quiverA);
  }

  // (g) REST with the binary tensor extension vs gRPC, same model and concurrency, and the bare REST echo.
  private void caseG(StringBuilder out) throws IOException {
    List<List<Value>> rest = repeats("g-rest");
    if (rest.isEmpty()) {
      return;
    }
    List<List<Value>> grpc = repeats("a-quiver");
    List<List<Value>> restEcho = repeats("g-rest-echo");
    List<List<Value>> restH2 = repeats("g-rest-h2");
    List<List<Value>> grpcEcho = repeats("a-echo");
    List<Double> cpu = new ArrayList<>();
    List<Double> echoCpu = new ArrayList<>();
    List<Double> ofRestEcho = new ArrayList<>();
    List<Double> h2Cpu = new ArrayList<>();
    for (int r = 0; r < rest.size(); r++) {
      if (r < grpc.size()) {
        ratio(cpu, rest.get(r), grpc.get(r), 64, "server_cpu_us_per_req");
      }
      if (r < restH2.size() && r < grpc.size()) {
        ratio(h2Cpu, restH2.get(r), grpc.get(r), 64, "server_cpu_us_per_req");
      }
      if (r < restEcho.size() && r < grpcEcho.size()) {
        ratio(echoCpu, restEcho.get(r), grpcEcho.get(r), 64, "server_cpu_us_per_req");
      }
      if (r < restEcho.size()) {
        ratio(ofRestEcho, rest.get(r), restEcho.get(r), 64, "server_cpu_us_per_req");
      }
    }
    target("REST (binary extension) over HTTP/1.1 / gRPC server CPU per request, identity FP32[16], c=64",
        Stats.of(cpu), "%.2f", TARGET_REST_VS_GRPC_CPU, false);
    if (!h2Cpu.isEmpty()) {
      target("REST (binary extension) over HTTP/2 / gRPC server CPU per request, identity FP32[16], c=64",
          Stats.of(h2Cpu), "%.2f", TARGET_REST_VS_GRPC_CPU, false);
    }
    if (!echoCpu.isEmpty()) {
      targets.add(new String[] {"the protocols' own ratio: bare REST echo / bare gRPC echo server CPU per request, c=64 "
          + "(no target: the floor of the row above)", Stats.of(echoCpu).format("%.2f"), "information"});
      targets.add(new String[] {"Quiver REST / bare REST echo server CPU per request, c=64 (no target: Quiver's own "
          + "share of REST)", Stats.of(ofRestEcho).format("%.2f"), "information"});
    }
    out.append("## (g) REST v2 with the binary tensor extension vs gRPC, identity FP32[16]\n\n")
        .append("64 keep-alive HTTP/1.1 connections, one request in flight on each, against the same server's gRPC "
            + "at concurrency 64 on one connection (case (a)). The REST echo is the bare baseline of REST as the gRPC "
            + "echo is of gRPC: Netty's HTTP/1.1 codec and aggregator on the same event loops, the JSON header parsed "
            + "and a new one written, the tensor bytes sent back without a copy, no model and no queue (EchoServer "
            + "--http-port). Its CPU per request over the gRPC echo's is what HTTP/1.1 with one request per connection "
            + "costs on this machine before Quiver does anything. REST over HTTP/2 is the same server's REST port "
            + "spoken with prior knowledge (h2c): 64 requests in flight as streams of one connection, as gRPC's are, "
            + "each batch's answers flushed once per connection.\n\n");
    Map<String, List<List<Value>>> series = new LinkedHashMap<>();
    series.put("quiver REST", rest);
    if (!restH2.isEmpty()) {
      series.put("quiver REST HTTP/2", restH2);
    }
    if (!restEcho.isEmpty()) {
      series.put("echo REST", restEcho);
    }
    sweepTable(out, series, new ArrayList<>(series.keySet()));
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
