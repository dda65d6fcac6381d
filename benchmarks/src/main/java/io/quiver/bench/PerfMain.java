package io.quiver.bench;

import io.quiver.bench.perf.ArrivalSchedule;
import io.quiver.bench.perf.GrpcEndpoint;
import io.quiver.bench.perf.HttpEndpoint;
import io.quiver.bench.perf.HttpInferRequest;
import io.quiver.bench.perf.InputData;
import io.quiver.bench.perf.LatencyStats;
import io.quiver.bench.perf.LoadGenerator;
import io.quiver.bench.perf.LoadRange;
import io.quiver.bench.perf.PointResult;
import io.quiver.bench.perf.ResultFiles;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code quiver perf}: a load generator for any KServe v2 gRPC server, in the spirit of Triton's
 * perf_analyzer. Closed-loop concurrency sweeps or open-loop request rates; warm-up, then windows
 * until the last three agree; latency percentiles (HdrHistogram, coordinated omission corrected in
 * open loop), server and client CPU per request, the server's mean formed batch.
 */
@Command(name = "quiver perf", mixinStandardHelpOptions = true, sortOptions = false,
    description = "Load generator for KServe v2 inference servers (gRPC unary or streaming, or REST over HTTP/1.1).",
    footer = {"", "Examples:",
        "  quiver perf -m identity_fp32 --concurrency-range 1:256:x2",
        "  quiver perf -m mlp_784 --request-rate-range 1000:5000:1000 --request-distribution poisson",
        "  quiver perf -m identity_fp32 --streaming --server-pid $(pgrep -f quiver-server) -f out.csv",
        "  quiver perf -m identity_fp32 -i http -u localhost:8000 --concurrency-range 1:64:x2"})
public final class PerfMain implements Callable<Integer> {
  @Option(names = {"-m", "--model-name"}, required = true, description = "Model to send requests to.")
  String model;

  @Option(names = {"-x", "--model-version"}, defaultValue = "", description = "Model version (default: the server's choice).")
  String version;

  @Option(names = {"-u", "--url"}, defaultValue = "localhost:8001", description = "Server HOST:PORT (default ${DEFAULT-VALUE}).")
  String url;

  @Option(names = {"-i", "--protocol"}, defaultValue = "grpc",
      description = "grpc or http (REST v2 over HTTP/1.1 keep-alive, or HTTP/2 with --http2; give the REST port with -u).")
  String protocol;

  @Option(names = "--http-json", description = "http: send tensors as JSON data instead of the binary tensor extension.")
  boolean httpJson;

  @Option(names = "--http2",
      description = "http: HTTP/2 with prior knowledge (h2c): every request a stream of one connection, as gRPC's.")
  boolean http2;

  @Option(names = "--grpc-url", paramLabel = "HOST:PORT",
      description = "http: ask metadata and ModelStatistics over gRPC here (default: over REST).")
  String grpcUrl;

  @Option(names = "--http-connections", defaultValue = "64",
      description = "http open loop: keep-alive connections to send over; bounds requests in flight (default ${DEFAULT-VALUE}).")
  int httpConnections;

  @Option(names = "--streaming", description = "Use the ModelStreamInfer bidi stream instead of unary ModelInfer.")
  boolean streaming;

  @Option(names = {"-b", "--batch-size"}, defaultValue = "1", description = "Rows per request (the leading dimension).")
  int batch;

  @Option(names = "--concurrency-range", paramLabel = "START:END[:STEP|:xF]",
      description = "Closed loop: requests kept in flight, e.g. 1:256:x2, 4:32:4 or 1,8,64 (default 1).")
  String concurrencyRange;

  @Option(names = "--request-rate-range", paramLabel = "START:END[:STEP|:xF]",
      description = "Open loop: requests per second, e.g. 1000:8000:1000, or a list run in order, e.g. 500,1000,2000,1000,500.")
  String rateRange;

  @Option(names = "--request-distribution", defaultValue = "constant",
      description = "Open-loop spacing: constant or poisson (default ${DEFAULT-VALUE}).")
  String distribution;

  @Option(names = {"-p", "--measurement-interval"}, defaultValue = "5000", paramLabel = "MS",
      description = "Length of one measurement window in ms (default ${DEFAULT-VALUE}).")
  long windowMs;

  @Option(names = "--warmup", defaultValue = "2000", paramLabel = "MS", description = "Warm-up before each level, ms.")
  long warmupMs;

  @Option(names = "--max-windows", defaultValue = "10", description = "Windows at most per level (default ${DEFAULT-VALUE}).")
  int maxWindows;

  @Option(names = {"-s", "--stability-percentage"}, defaultValue = "10",
      description = "Stop when the last 3 windows' throughput and p50 are within this %% of their mean.")
  double stabilityPercent;

  @Option(names = "--server-pid", defaultValue = "0", description = "PID of a local server: report its CPU per request from /proc.")
  long serverPid;

  @Option(names = "--client-warmup", defaultValue = "0", paramLabel = "MS",
      description = "Before the first level, run closed loop (concurrency 8) this long, unmeasured, to warm the client's JIT;"
          + " with --request-rate-range, then as long again open loop at half the first rate.")
  long clientWarmupMs;

  @Option(names = "--max-inflight", defaultValue = "1000",
      description = "Open loop: most requests in flight (default below the 1,024 streams a Quiver connection allows:"
          + " streams past a server's limit are queued inside the client's HTTP/2 layer, at a cost per request"
          + " that makes a client behind its schedule fall further behind).")
  int maxInflight;

  @Option(names = "--busy-poll", negatable = true,
      description = "The client's event loop polls without sleeping (default: on with --request-rate-range, off in"
          + " closed loop). An open-loop client otherwise spends most of its core on a wake-up per send and per"
          + " answer at a few thousand requests a second; busy-polling takes the whole core instead, so the"
          + " client CPU column then means nothing.")
  Boolean busyPoll;

  @Option(names = "--streams", defaultValue = "1", description = "Open loop with --streaming: streams to spread requests over.")
  int streams;

  @Option(names = "--request-timeout", defaultValue = "30000", paramLabel = "MS",
      description = "Per-request deadline in ms for unary calls (0 = none).")
  long requestTimeoutMs;

  @Option(names = "--input-data", defaultValue = "random", paramLabel = "random|FILE",
      description = "random (from the model metadata) or a JSON file {\"data\": [{INPUT: values}, ...]}.")
  String inputData;

  @Option(names = "--shape", paramLabel = "NAME:D1,D2,...", description = "Dimensions (without the batch) of a variable-shape input.")
  List<String> shapes = new ArrayList<>();

  @Option(names = "--string-length", defaultValue = "16", description = "Length of random BYTES elements.")
  int stringLength;

  @Option(names = "--seed", defaultValue = "1", description = "Seed of random data and Poisson gaps.")
  long seed;

  @Option(names = "--wait-ready", defaultValue = "30", paramLabel = "S", description = "Wait this long for the model to be ready.")
  long waitReadySeconds;

  @Option(names = {"-f", "--csv"}, paramLabel = "FILE", description = "Write results as CSV.")
  Path csv;

  @Option(names = "--json", paramLabel = "FILE", description = "Write results as JSON.")
  Path json;

  @Option(names = "--label", defaultValue = "", description = "Free text stored with every result row.")
  String label;

  @Option(names = {"-q", "--quiet"}, description = "No progress line on stderr.")
  boolean quiet;

  private Progress progress;

  public static void main(String[] args) {
    // The client is a measuring tool: Netty's sampled leak tracking fills a stack trace every 128 buffers.
    if (System.getProperty("io.netty.leakDetection.level") == null) {
      System.setProperty("io.netty.leakDetection.level", "disabled");
    }
    System.exit(new CommandLine(new PerfMain()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    boolean rest = protocol.equalsIgnoreCase("http");
    if (!rest && !protocol.equalsIgnoreCase("grpc")) {
      throw new CommandLine.ParameterException(new CommandLine(this), "--protocol must be grpc or http; was " + protocol);
    }
    if (rest && streaming) {
      throw new CommandLine.ParameterException(new CommandLine(this), "--streaming is gRPC only");
    }
    if (concurrencyRange != null && rateRange != null) {
      throw new CommandLine.ParameterException(new CommandLine(this),
          "give --concurrency-range or --request-rate-range, not both");
    }
    if (batch < 1) {
      throw new CommandLine.ParameterException(new CommandLine(this), "--batch-size must be >= 1; was " + batch);
    }
    ArrivalSchedule.Distribution spacing = ArrivalSchedule.Distribution.valueOf(distribution.toUpperCase(Locale.ROOT));
    Map<String, long[]> shapeOverrides = parseShapes(shapes);
    PrintStream out = System.out;
    progress = new Progress(quiet);
    if (rest) {
      return callRest(out, spacing, shapeOverrides);
    }
    try (GrpcEndpoint endpoint = GrpcEndpoint.open(url, busyPoll())) {
      endpoint.awaitModelReady(model, version, TimeUnit.SECONDS.toNanos(waitReadySeconds));
      ModelMetadataResponse metadata = endpoint.metadata(model, version);
      List<ModelInferRequest> requests = inputData.equals("random")
          ? List.of(InputData.random(metadata, model, version, batch, shapeOverrides, seed, stringLength))
          : InputData.fromJson(Path.of(inputData), metadata, model, version, batch, shapeOverrides);
      return runLevels(out, streaming, streams, streaming ? "grpc streaming" : "grpc unary", spacing,
          s -> new LoadGenerator(endpoint, requests, batch, s, progress));
    }
  }

  /** Opens a load generator over one protocol's endpoint and requests. */
  @FunctionalInterface
  private interface GeneratorFactory {
    LoadGenerator open(LoadGenerator.Settings settings) throws Exception;
  }

  /** The optional client warm-up, then every level of the range (open or closed loop), then the result files. */
  private int runLevels(PrintStream out, boolean streamingMode, int streamCount, String mode,
      ArrivalSchedule.Distribution spacing, GeneratorFactory generators) throws Exception {
    LoadGenerator.Settings settings = new LoadGenerator.Settings(model, streamingMode,
        TimeUnit.MILLISECONDS.toNanos(warmupMs), TimeUnit.MILLISECONDS.toNanos(windowMs), maxWindows,
        stabilityPercent / 100.0, serverPid, maxInflight, TimeUnit.MILLISECONDS.toNanos(requestTimeoutMs), streamCount,
        seed, TimeUnit.MILLISECONDS.toNanos(Math.max(requestTimeoutMs, 10_000) + 5_000));
    out.printf(Locale.ROOT, "quiver perf: %s model=%s%s batch=%d %s, window %d ms, warm-up %d ms%s%n", url, model,
        version.isEmpty() ? "" : "/" + version, batch, mode, windowMs, warmupMs,
        serverPid > 0 ? ", server pid " + serverPid : "");
    out.println(header());
    List<Map<String, Object>> rows = new ArrayList<>();
    if (clientWarmupMs > 0) {
      // A cold client JIT (one core, compiling for seconds) would make the first level client-bound.
      progress.level("client warm-up");
      LoadGenerator.Settings warm = new LoadGenerator.Settings(model, streamingMode, 0,
          TimeUnit.MILLISECONDS.toNanos(clientWarmupMs), 1, 1.0, -1, maxInflight, settings.requestTimeoutNanos(),
          streamCount, seed, settings.drainTimeoutNanos());
      try (LoadGenerator warmer = generators.open(warm)) {
        warmer.runClosed(8);
        if (rateRange != null) {
          // The open-loop sender's own paths compile too: unwarmed, its first level stalls for JIT
          // compilation, falls behind and, at the in-flight limit, never catches up. Half the first
          // rate, so a range that starts in overload does not leave a backlog behind.
          warmer.runOpen(LoadRange.parse(rateRange).values().get(0) / 2, spacing);
        }
      }
    }
    try (LoadGenerator generator = generators.open(settings)) {
      if (rateRange != null) {
        for (double rate : LoadRange.parse(rateRange).values()) {
          progress.level(String.format(Locale.ROOT, "rate %.0f/s", rate));
          rows.add(report(out, generator.runOpen(rate, spacing)));
        }
      } else {
        for (int concurrency : LoadRange.parse(concurrencyRange == null ? "1" : concurrencyRange).intValues()) {
          progress.level("concurrency " + concurrency);
          rows.add(report(out, generator.runClosed(concurrency)));
        }
      }
    }
    return finish(rows);
  }

  private int finish(List<Map<String, Object>> rows) throws java.io.IOException {
    progress.clear();
    if (csv != null) {
      ResultFiles.writeCsv(csv, rows);
    }
    if (json != null) {
      ResultFiles.writeJson(json, runDescription(), rows);
    }
    // Load shedding (RESOURCE_EXHAUSTED, UNAVAILABLE; HTTP 429, 503) is a measured outcome, not a failed run.
    long errors = rows.stream()
        .mapToLong(r -> ((Number) r.get("errors")).longValue() - ((Number) r.get("rejected")).longValue()).sum();
    return errors > 0 ? 2 : 0;
  }

  /** Whether the client's event loop busy-polls: as asked, else in open loop only. */
  private boolean busyPoll() {
    return busyPoll != null ? busyPoll : rateRange != null;
  }

  /** -i http: the same levels over REST v2 (HTTP/1.1 keep-alive connections on one event loop). */
  private int callRest(PrintStream out, ArrivalSchedule.Distribution spacing, Map<String, long[]> shapeOverrides)
      throws Exception {
    GrpcEndpoint grpc = grpcUrl == null ? null : GrpcEndpoint.open(grpcUrl, busyPoll());
    try (HttpEndpoint endpoint = HttpEndpoint.open(url, grpc, httpConnections, busyPoll(), http2)) {
      ModelMetadataResponse metadata;
      long readyNanos = TimeUnit.SECONDS.toNanos(waitReadySeconds);
      if (grpc != null) {
        grpc.awaitModelReady(model, version, readyNanos);
        metadata = grpc.metadata(model, version);
      } else {
        endpoint.awaitModelReady(model, version, readyNanos);
        metadata = endpoint.metadata(model, version);
      }
      List<ModelInferRequest> protos = inputData.equals("random")
          ? List.of(InputData.random(metadata, model, version, batch, shapeOverrides, seed, stringLength))
          : InputData.fromJson(Path.of(inputData), metadata, model, version, batch, shapeOverrides);
      List<HttpInferRequest> requests = new ArrayList<>();
      for (ModelInferRequest r : protos) {
        requests.add(HttpInferRequest.encode(r, endpoint.hostHeader(), httpJson));
      }
      return runLevels(out, false, 1, (httpJson ? "http json" : "http binary") + (http2 ? " h2" : ""), spacing,
          s -> new LoadGenerator(endpoint, grpc, requests, batch, s, progress));
    } finally {
      if (grpc != null) {
        grpc.close();
      }
    }
  }

  private Map<String, Object> runDescription() {
    Map<String, Object> run = new LinkedHashMap<>();
    run.put("tool", "quiver perf");
    run.put("label", label);
    run.put("url", url);
    run.put("model", model);
    run.put("version", version);
    run.put("protocol", protocol.equalsIgnoreCase("http") ? (httpJson ? "http-json" : "http-binary") : "grpc");
    run.put("http_version", protocol.equalsIgnoreCase("http") ? (http2 ? "2" : "1.1") : "2");
    run.put("streaming", streaming);
    run.put("batch_size", batch);
    run.put("window_ms", windowMs);
    run.put("warmup_ms", warmupMs);
    run.put("max_windows", maxWindows);
    run.put("stability_percent", stabilityPercent);
    run.put("input_data", inputData);
    run.put("java", System.getProperty("java.version"));
    return run;
  }

  private static String header() {
    return String.format(Locale.ROOT, "%-14s %11s %11s %9s %9s %9s %9s %9s %7s %7s %7s %6s %6s %6s %8s %s", "load", "req/s",
        "infer/s", "p50 us", "p90 us", "p95 us", "p99 us", "p99.9 us", "srv us", "srv B", "srv cs", "cli us", "batch",
        "errors", "rejected", "windows");
  }

  private Map<String, Object> report(PrintStream out, PointResult r) {
    progress.clear();
    LatencyStats l = r.latency();
    String load = r.mode().equals("rate") ? String.format(Locale.ROOT, "%.0f/s", r.load()) : "c=" + (int) r.load();
    out.println(String.format(Locale.ROOT,
        "%-14s %11.1f %11.1f %9.1f %9.1f %9.1f %9.1f %9.1f %7.2f %7.0f %7.3f %6.2f %6.2f %6d %8d %d",
        load, r.throughput(), r.inferencesPerSecond(), l.p50Us(), l.p90Us(), l.p95Us(), l.p99Us(), l.p999Us(),
        r.serverCpuMicrosPerRequest(), r.serverAllocatedBytesPerRequest(), r.serverContextSwitchesPerRequest(),
        r.clientCpuMicrosPerRequest(), r.meanBatch(), r.errors(), r.rejected(), r.windows())
        + (r.stable() ? "" : " (not stable)") + clientBoundNote(r) + (r.firstError().isEmpty() ? "" : "  first error: " + r.firstError()));
    return ResultFiles.row(label, r);
  }

  /** Open loop: says when the client could not keep its own schedule (its latencies are then its backlog). */
  private static String clientBoundNote(PointResult r) {
    if (!r.clientBound()) {
      return r.inflightLimited() ? " (in-flight limit reached)" : "";
    }
    return String.format(Locale.ROOT, " CLIENT-BOUND: sent at %.0f%% of the offered rate, %.1f ms behind schedule;"
        + " not a server measurement", 100 * r.measured().sendRateRatio(), r.measured().sendLagNanos() / 1e6);
  }

  static Map<String, long[]> parseShapes(List<String> shapes) {
    Map<String, long[]> parsed = new LinkedHashMap<>();
    for (String shape : shapes) {
      int colon = shape.lastIndexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("--shape must be NAME:D1,D2,...; was '" + shape + "'");
      }
      String[] dims = shape.substring(colon + 1).split(",");
      long[] values = new long[dims.length];
      for (int i = 0; i < dims.length; i++) {
        values[i] = Long.parseLong(dims[i].trim());
      }
      parsed.put(shape.substring(0, colon), values);
    }
    return parsed;
  }

  /** The progress line on stderr: rewritten in place on a terminal, one line per second otherwise. */
  static final class Progress implements LoadGenerator.ProgressListener {
    private final boolean quiet;
    private final boolean terminal = System.console() != null;
    private String level = "";

    Progress(boolean quiet) {
      this.quiet = quiet;
    }

    void level(String level) {
      this.level = level;
    }

    @Override
    public void update(String stage, double throughput, long completed, long errors, double p99Us) {
      if (quiet) {
        return;
      }
      String line = String.format(Locale.ROOT, "[perf] %s | %s | %.0f req/s | %d done | %d errors", level, stage,
          throughput, completed, errors);
      if (terminal) {
        System.err.print("\r" + line + "\u001b[K");
      } else {
        System.err.println(line);
      }
      System.err.flush();
    }

    void clear() {
      if (!quiet && terminal) {
        System.err.print("\r\u001b[K");
        System.err.flush();
      }
    }
  }
}
