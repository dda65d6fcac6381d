package io.quiver.bench.perf;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes results as CSV (one row per load level) and JSON (run description plus the same rows).
 * Latencies are in microseconds, CPU in microseconds per request, rates per second; unknown values
 * are empty in CSV and null in JSON.
 */
public final class ResultFiles {
  private ResultFiles() {}

  /** The columns, in order; also the JSON field names of each row. */
  public static final List<String> COLUMNS = List.of("label", "mode", "load", "distribution", "streaming",
      "batch_size", "throughput_rps", "inferences_per_s", "p50_us", "p90_us", "p95_us", "p99_us", "p999_us",
      "mean_us", "max_us", "windows", "measured_s", "stable", "sent", "completed", "errors", "rejected", "offered_rps", "rejected_rps",
      "server_cpu_us_per_req", "server_alloc_bytes_per_req", "server_cs_per_req", "client_cpu_us_per_req", "server_cores", "inferences_per_server_cpu_s", "mean_batch",
      "send_rate_ratio", "send_lag_us", "client_bound", "inflight_limited", "errors_rps", "first_error");

  /** One row: column name to value (Number, Boolean or String; NaN means unknown). */
  public static Map<String, Object> row(String label, PointResult r) {
    LatencyStats l = r.latency();
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("label", label);
    row.put("mode", r.mode());
    row.put("load", r.load());
    row.put("distribution", r.distribution());
    row.put("streaming", r.streaming());
    row.put("batch_size", r.measured().rowsPerRequest());
    row.put("throughput_rps", r.throughput());
    row.put("inferences_per_s", r.inferencesPerSecond());
    row.put("p50_us", l.p50Us());
    row.put("p90_us", l.p90Us());
    row.put("p95_us", l.p95Us());
    row.put("p99_us", l.p99Us());
    row.put("p999_us", l.p999Us());
    row.put("mean_us", l.meanUs());
    row.put("max_us", l.maxUs());
    row.put("windows", r.windows());
    row.put("measured_s", r.measured().wallNanos() / 1e9);
    row.put("stable", r.stable());
    row.put("sent", r.sent());
    row.put("completed", r.completed());
    row.put("errors", r.errors());
    row.put("rejected", r.rejected());
    row.put("offered_rps", r.measured().offeredRate());
    row.put("rejected_rps", r.measured().rejectedRate());
    row.put("rejection_p50_us", r.rejectionLatency().p50Us());
    row.put("rejection_p99_us", r.rejectionLatency().p99Us());
    row.put("server_cpu_us_per_req", r.serverCpuMicrosPerRequest());
    row.put("server_alloc_bytes_per_req", r.serverAllocatedBytesPerRequest());
    row.put("server_cs_per_req", r.serverContextSwitchesPerRequest());
    row.put("client_cpu_us_per_req", r.clientCpuMicrosPerRequest());
    row.put("server_cores", r.serverCoresUsed());
    row.put("inferences_per_server_cpu_s", r.inferencesPerServerCpuSecond());
    row.put("mean_batch", r.meanBatch());
    // Open loop: achieved send rate / offered rate, and how far behind schedule the sender ended (NaN in closed loop).
    row.put("send_rate_ratio", r.measured().sendRateRatio());
    row.put("send_lag_us", r.measured().sendLagNanos() < 0 ? Double.NaN : r.measured().sendLagNanos() / 1e3);
    row.put("client_bound", r.clientBound());
    row.put("inflight_limited", r.inflightLimited());
    row.put("errors_rps", Rates.perSecond(r.measured().errors(), r.measured().wallNanos()));
    row.put("first_error", r.firstError());
    return row;
  }

  public static void writeCsv(Path file, List<Map<String, Object>> rows) throws IOException {
    StringBuilder csv = new StringBuilder(String.join(",", COLUMNS)).append('\n');
    for (Map<String, Object> row : rows) {
      List<String> cells = new ArrayList<>();
      for (String column : COLUMNS) {
        cells.add(csvCell(row.get(column)));
      }
      csv.append(String.join(",", cells)).append('\n');
    }
    write(file, csv.toString());
  }

  /** {@code {"run": {...}, "results": [rows]}}. */
  public static void writeJson(Path file, Map<String, Object> run, List<Map<String, Object>> rows) throws IOException {
    StringBuilder json = new StringBuilder("{\n  \"run\": ");
    object(json, run);
    json.append(",\n  \"results\": [");
    for (int i = 0; i < rows.size(); i++) {
      json.append(i == 0 ? "\n    " : ",\n    ");
      object(json, rows.get(i));
    }
    json.append("\n  ]\n}\n");
    write(file, json.toString());
  }

  private static void write(Path file, String text) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.writeString(file, text, StandardCharsets.UTF_8);
  }

  private static void object(StringBuilder json, Map<String, Object> map) {
    json.append('{');
    boolean first = true;
    for (Map.Entry<String, Object> e : map.entrySet()) {
      json.append(first ? "" : ", ");
      first = false;
      string(json, e.getKey());
      json.append(": ");
      value(json, e.getValue());
    }
    json.append('}');
  }

  private static void value(StringBuilder json, Object v) {
    if (v == null) {
      json.append("null");
    } else if (v instanceof Double d) {
      json.append(Double.isNaN(d) || Double.isInfinite(d) ? "null" : number(d));
    } else if (v instanceof Number || v instanceof Boolean) {
      json.append(v);
    } else {
      string(json, v.toString());
    }
  }

  static String number(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : String.format(Locale.ROOT, "%.4f", d);
  }

  private static void string(StringBuilder json, String s) {
    json.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> json.append("\\\"");
        case '\\' -> json.append("\\\\");
        case '\n' -> json.append("\\n");
        case '\r' -> json.append("\\r");
        case '\t' -> json.append("\\t");
        default -> {
          if (c < 0x20) {
            json.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
          } else {
            json.append(c);
          }
        }
      }
    }
    json.append('"');
  }

  private static String csvCell(Object v) {
    if (v == null) {
      return "";
    }
    if (v instanceof Double d) {
      return Double.isNaN(d) || Double.isInfinite(d) ? "" : number(d);
    }
    String s = v.toString();
    if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
      return '"' + s.replace("\"", "\"\"") + '"';
    }
    return s;
  }
}
