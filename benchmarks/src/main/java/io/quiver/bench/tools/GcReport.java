package io.quiver.bench.tools;

import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The table of {@code benchmarks/gc-compare.sh}: per GC configuration, the medians over repeats of the
 * open-loop latencies, server CPU and bytes per request ({@code quiver perf --json} files
 * {@code NAME-rN.json}) and of the stop-the-world pauses during the measured window (unified GC log
 * lines with a "Pause ..." and a duration in ms, {@code NAME-rN.gc.measured}).
 *
 * <p>Usage: {@code GcReport WORK_DIR RATE REPEATS NAME...}; prints Markdown.
 */
public final class GcReport {
  private static final Pattern PAUSE = Pattern.compile("Pause [^\\n]*?([0-9]+(?:\\.[0-9]+)?)ms\\s*$");

  private GcReport() {}

  public static void main(String[] args) throws IOException {
    Path work = Path.of(args[0]);
    String rate = args[1];
    int repeats = Integer.parseInt(args[2]);
    StringBuilder md = new StringBuilder("# Which garbage collector: identity_fp32 at ").append(rate)
        .append(" req/s, open loop (Poisson)\n\nWritten by `benchmarks/gc-compare.sh` (").append(repeats)
        .append(" interleaved repeats; server pinned to CPU 1, client to CPU 0; every server `-Xms1g -Xmx1g -XX:+AlwaysPreTouch` plus the "
            + "flags below). Medians over repeats, spread min–max. Pauses: the stop-the-world pauses the GC log "
            + "reports during the measured window.\n\n")
        .append("| configuration | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | server B/req | pauses/s | longest pause ms | paused ms/s |\n")
        .append("|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 3; i < args.length; i++) {
      String name = args[i];
      List<Double> p50 = new ArrayList<>();
      List<Double> p99 = new ArrayList<>();
      List<Double> p999 = new ArrayList<>();
      List<Double> cpu = new ArrayList<>();
      List<Double> bytes = new ArrayList<>();
      List<Double> pausesPerSecond = new ArrayList<>();
      List<Double> longest = new ArrayList<>();
      List<Double> pausedPerSecond = new ArrayList<>();
      for (int r = 1; r <= repeats; r++) {
        Path result = work.resolve(name + "-r" + r + ".json");
        if (!Files.exists(result)) {
          continue;
        }
        List<Value> rows = Json.list(Json.read(result), "results");
        if (rows.isEmpty()) {
          continue;
        }
        Value row = rows.get(0);
        p50.add(Json.number(row, "p50_us"));
        p99.add(Json.number(row, "p99_us"));
        p999.add(Json.number(row, "p999_us"));
        cpu.add(Json.number(row, "server_cpu_us_per_req"));
        bytes.add(Json.number(row, "server_alloc_bytes_per_req"));
        double seconds = Json.number(row, "measured_s");
        List<Double> pauses = pauses(work.resolve(name + "-r" + r + ".gc.measured"));
        double total = pauses.stream().mapToDouble(Double::doubleValue).sum();
        double max = pauses.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        if (seconds > 0) {
          pausesPerSecond.add(pauses.size() / seconds);
          pausedPerSecond.add(total / seconds);
        }
        longest.add(max);
      }
      md.append(String.format(Locale.ROOT, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
          Stats.of(p50).format("%.0f"), Stats.of(p99).format("%.0f"), Stats.of(p999).format("%.0f"),
          Stats.of(cpu).format("%.1f"), Stats.of(bytes).format("%.0f"), Stats.of(pausesPerSecond).format("%.2f"),
          Stats.of(longest).format("%.2f"), Stats.of(pausedPerSecond).format("%.2f")));
    }
    System.out.print(md);
  }

  /** Pause durations in ms from a unified GC log excerpt. */
  static List<Double> pauses(Path log) throws IOException {
    List<Double> out = new ArrayList<>();
    if (!Files.exists(log)) {
      return out;
    }
    for (String line : Files.readAllLines(log)) {
      Matcher m = PAUSE.matcher(line);
      if (m.find()) {
        out.add(Double.parseDouble(m.group(1)));
      }
    }
    return out;
  }
}
