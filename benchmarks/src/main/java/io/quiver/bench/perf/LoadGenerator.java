package io.quiver.bench.perf;

import io.grpc.ManagedChannel;
import io.netty.channel.EventLoop;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStatistics;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelStatisticsResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Drives one KServe v2 gRPC endpoint at one load level at a time and measures it.
 *
 * <p>Closed loop ({@link #runClosed}): {@code concurrency} slots each keep one request in flight
 * and send the next when the previous answers; latency is from send to answer. Open loop
 * ({@link #runOpen}): a sender on the client's event loop sends at the times an
 * {@link ArrivalSchedule} fixes in advance, paced by an {@link OpenLoopPacer} (one wake-up sends
 * every request that fell due, in a burst); latency is from the <em>intended</em> send time, so a
 * late send (client or server falling behind, in-flight limit reached) counts against the server as
 * it would for a real client (coordinated omission corrected). Because a client that cannot keep
 * its own schedule would then measure its own backlog, each open-loop window records how far the
 * schedule advanced and how far behind the sender was, and is flagged client-bound
 * ({@link WindowResult#isClientBound}) when the client, not the server, fell behind. The schedule
 * restarts at the end of the warm-up if the sender is behind it then (a cold client JIT).
 *
 * <p>Threads: the caller's thread runs the level (warm-up, windows, drain) and reads counters;
 * responses arrive on the endpoint's one event loop thread (direct executor) and send the next
 * closed-loop request from there; the open-loop sender runs there too. Latencies go
 * to an HdrHistogram {@link Recorder} (no allocation when recording; windows swap interval
 * histograms). One level at a time: not for concurrent use.
 */
public final class LoadGenerator implements AutoCloseable {
  /** How a run measures; durations in nanoseconds. */
  public record Settings(String modelName, boolean streaming, long warmupNanos, long windowNanos, int maxWindows,
      double stabilityTolerance, long serverPid, int maxInflight, long requestTimeoutNanos, int streams,
      long seed, long drainTimeoutNanos) {

    public Settings {
      if (windowNanos <= 0 || maxWindows < 1 || warmupNanos < 0) {
        throw new IllegalArgumentException("window must be > 0, max windows >= 1 and warm-up >= 0");
      }
      if (maxInflight < 1 || streams < 1) {
        throw new IllegalArgumentException("max in-flight and streams must be >= 1");
      }
    }
  }

  /** Receives progress while a level runs (called on the caller's thread about once a second). */
  public interface ProgressListener {
    void update(String stage, double throughput, long completed, long errors, double p99Us);
  }

  private static final long PROGRESS_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);
  /** Open loop: most sends per event-loop task before I/O gets a turn. */
  private static final int MAX_BURST = 64;

  private final EventLoop eventLoop;
  private final GRPCInferenceServiceGrpc.GRPCInferenceServiceStub asyncStub;
  private final GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub blockingStub;
  private final ModelInferRequest[] requests;
  private final int rowsPerRequest;
  private final Settings settings;
  /** The server's allocation and context switches at window edges; null without a server pid. */
  private final ServerProbe probe;
  private final ProgressListener progress;
  private boolean statisticsSupported = true;
  /** REST mode: the endpoint and the encoded requests (null in gRPC mode). */
  private final HttpEndpoint http;
  private final HttpInferRequest[] httpRequests;
  /** REST mode: every connection the running level opened, closed when it ends. */
  private final List<HttpEndpoint.Connection> httpConnections = java.util.Collections.synchronizedList(new ArrayList<>());

  // Per level; reset by begin().
  private volatile boolean running;
  private final LongAdder sent = new LongAdder();
  private final LongAdder completed = new LongAdder();
  private final LongAdder errors = new LongAdder();
  /** The part of {@link #errors} that the server refused for load: RESOURCE_EXHAUSTED or UNAVAILABLE. */
  private final LongAdder rejected = new LongAdder();
  private final AtomicLong outstanding = new AtomicLong();
  private final AtomicReference<String> firstError = new AtomicReference<>("");
  /** Open loop: times the sender found the in-flight limit reached. */
  private final LongAdder inflightStalls = new LongAdder();
  /** Open loop: the running level's pacer (null in closed loop); its frontier is read at window edges. */
  private volatile OpenLoopPacer pacer;
  /** The open-loop sender of the level running now (null in closed loop). */
  private volatile OpenSender openSender;
  private Recorder recorder;
  private Histogram total;
  /** Time from send to answer of the requests the server refused for load (gRPC and REST, unary). */
  private Recorder rejections;

  /**
   * @param endpoint the connection and its event loop (not owned: the caller closes it)
   * @param requests sent in turn
   * @param rowsPerRequest the batch size of each request
   * @param progress told about once a second how the level goes; null for none
   */
  public LoadGenerator(GrpcEndpoint endpoint, List<ModelInferRequest> requests, int rowsPerRequest,
      Settings settings, ProgressListener progress) {
    if (requests.isEmpty()) {
      throw new IllegalArgumentException("no requests to send");
    }
    ManagedChannel channel = endpoint.channel();
    this.eventLoop = endpoint.eventLoop();
    this.asyncStub = GRPCInferenceServiceGrpc.newStub(channel);
    this.blockingStub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
    this.requests = requests.toArray(new ModelInferRequest[0]);
    this.rowsPerRequest = rowsPerRequest;
    this.settings = settings;
    this.probe = settings.serverPid() > 0 ? new ServerProbe(settings.serverPid()) : null;
    this.progress = progress;
    this.http = null;
    this.httpRequests = null;
  }

  /**
   * REST mode: requests go over HTTP/1.1 keep-alive connections of {@code http} (closed loop: one
   * connection per slot; open loop: {@link HttpEndpoint#openLoopConnections} connections, which also
   * bound the requests in flight). {@code statisticsFrom} (may be null) answers ModelStatistics over
   * gRPC; without it they come from GET /v2/models/{m}/stats. Streaming settings are ignored.
   */
  public LoadGenerator(HttpEndpoint http, GrpcEndpoint statisticsFrom, List<HttpInferRequest> requests,
      int rowsPerRequest, Settings settings, ProgressListener progress) {
    if (requests.isEmpty()) {
      throw new IllegalArgumentException("no requests to send");
    }
    this.http = http;
    this.httpRequests = requests.toArray(new HttpInferRequest[0]);
    this.eventLoop = http.eventLoop();
    this.asyncStub = null;
    this.blockingStub = statisticsFrom == null ? null : GRPCInferenceServiceGrpc.newBlockingStub(statisticsFrom.channel());
    this.requests = null;
    this.rowsPerRequest = rowsPerRequest;
    this.settings = settings;
    this.probe = settings.serverPid() > 0 ? new ServerProbe(settings.serverPid()) : null;
    this.progress = progress;
  }

  /** Runs a closed-loop level: {@code concurrency} requests always in flight. */
  public PointResult runClosed(int concurrency) throws InterruptedException {
    if (http != null) {
      return runClosedHttp(concurrency);
    }
    begin();
    List<Stop> stops = new ArrayList<>();
    if (settings.streaming()) {
      for (int i = 0; i < concurrency; i++) {
        ClosedStream stream = new ClosedStream(i);
        stream.start();
      }
    } else {
      for (int i = 0; i < concurrency; i++) {
        new ClosedUnary(i).fire();
      }
    }
    return measure("concurrency", concurrency, "", stops);
  }

  /** Runs an open-loop level at {@code rate} requests per second, spaced by {@code distribution}. */
  public PointResult runOpen(double rate, ArrivalSchedule.Distribution distribution) throws InterruptedException {
    List<HttpEndpoint.Connection> pool = http == null ? List.of() : connectAll(http.openLoopConnections());
    try {
      return runOpen(rate, distribution, pool);
    } finally {
      closeHttpConnections();
    }
  }

  private PointResult runOpen(double rate, ArrivalSchedule.Distribution distribution,
      List<HttpEndpoint.Connection> pool) throws InterruptedException {
    begin();
    OpenSender sender = new OpenSender(new ArrivalSchedule(distribution, rate, settings.seed()));
    sender.idle.addAll(pool);
    pacer = sender.pacer;
    openSender = sender;
    sender.start();
    List<Stop> stops = new ArrayList<>();
    stops.add(sender::stop);
    return measure("rate", rate, distribution.name().toLowerCase(java.util.Locale.ROOT), stops);
  }

  private PointResult runClosedHttp(int concurrency) throws InterruptedException {
    List<HttpEndpoint.Connection> connections = connectAll(concurrency);
    try {
      begin();
      eventLoop.execute(() -> {
        for (int i = 0; i < concurrency; i++) {
          new ClosedHttp(i, connections.get(i)).fire();
        }
      });
      return measure("concurrency", concurrency, "", new ArrayList<>());
    } finally {
      closeHttpConnections();
    }
  }

  /** Opens {@code n} keep-alive connections (caller's thread), remembered to be closed at the level's end. */
  private List<HttpEndpoint.Connection> connectAll(int n) throws InterruptedException {
    List<HttpEndpoint.Connection> connections = new ArrayList<>(n);
    try {
      for (int i = 0; i < n; i++) {
        HttpEndpoint.Connection c = http.connect();
        connections.add(c);
        httpConnections.add(c);
      }
    } catch (RuntimeException | InterruptedException e) {
      closeHttpConnections();
      throw e;
    }
    return connections;
  }

  private void closeHttpConnections() {
    synchronized (httpConnections) {
      for (HttpEndpoint.Connection c : httpConnections) {
        c.close();
      }
      httpConnections.clear();
    }
  }

  /** Something to do when a level's measuring ends, before the drain. */
  private interface Stop {
    void run() throws InterruptedException;
  }

  private void begin() {
    sent.reset();
    completed.reset();
    errors.reset();
    rejected.reset();
    inflightStalls.reset();
    pacer = null;
    openSender = null;
    outstanding.set(0);
    firstError.set("");
    recorder = new Recorder(LatencyStats.SIGNIFICANT_DIGITS);
    rejections = new Recorder(LatencyStats.SIGNIFICANT_DIGITS);
    total = LatencyStats.newHistogram();
    running = true;
  }

  private PointResult measure(String mode, double load, String distribution, List<Stop> stops)
      throws InterruptedException {
    try {
      // What is alive now (input data, histograms, the transport's state) lives as long as this run:
      // promote it to the old generation before the warm-up, so that the measured windows' young
      // collections copy only what requests leave behind. Without this, the first young collections of
      // a client on one core copied ≈ 10 MB each and paused it for 36-70 ms inside the windows
      // (docs/benchmarks/overload.md), noise in every latency it reports. The warm-up absorbs this
      // collection, and the schedule restarts after it if it fell behind.
      System.gc();
      sleepWithProgress("warm-up", settings.warmupNanos());
      restartScheduleIfBehind();
      Snapshot before = snapshot(); // its histogram holds the warm-up's latencies
      total.add(before.latencies);
      rejections.reset(); // the warm-up's
      List<WindowResult> windows = new ArrayList<>();
      boolean stable = false;
      while (windows.size() < settings.maxWindows() && !stable) {
        sleepWithProgress("window " + (windows.size() + 1) + "/" + settings.maxWindows(), settings.windowNanos());
        Snapshot after = snapshot();
        total.add(after.latencies);
        windows.add(after.minus(before, rowsPerRequest));
        before = after;
        stable = WindowStability.isStable(windows, settings.stabilityTolerance());
      }
      Histogram refused = rejections.getIntervalHistogram(); // every measured window's
      running = false;
      for (Stop stop : stops) {
        stop.run();
      }
      drain();
      total.add(recorder.getIntervalHistogram());
      List<WindowResult> last = windows.subList(Math.max(0, windows.size() - WindowStability.WINDOWS), windows.size());
      return new PointResult(mode, load, distribution, settings.streaming(), WindowResult.merge(last), windows.size(),
          stable, sent.sum(), completed.sum(), errors.sum(), rejected.sum(), total.getTotalCount(), firstError.get(),
          refused);
    } finally {
      running = false;
      pacer = null;
    }
  }

  /**
   * Open loop: if the sender is behind its schedule at the end of the warm-up, restarts the schedule
   * now (on the event loop, which owns the pacer) so that the warm-up's backlog is not measured.
   */
  private void restartScheduleIfBehind() throws InterruptedException {
    OpenLoopPacer p = pacer;
    if (p == null) {
      return;
    }
    try {
      eventLoop.submit(() -> p.rebase(System.nanoTime())).get(5, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      noteError("could not restart the send schedule after the warm-up: " + e);
    }
  }

  private void drain() throws InterruptedException {
    long deadline = System.nanoTime() + settings.drainTimeoutNanos();
    while (outstanding.get() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    if (outstanding.get() > 0) {
      // Should not happen with a request timeout: report the stragglers rather than hang.
      long stragglers = outstanding.getAndSet(0);
      errors.add(stragglers);
      firstError.compareAndSet("", stragglers + " requests unanswered after the drain timeout");
    }
  }

  private void sleepWithProgress(String stage, long nanos) throws InterruptedException {
    long end = System.nanoTime() + nanos;
    long lastCompleted = completed.sum();
    long lastTime = System.nanoTime();
    while (true) {
      long left = end - System.nanoTime();
      if (left <= 0) {
        return;
      }
      TimeUnit.NANOSECONDS.sleep(Math.min(left, PROGRESS_INTERVAL_NS));
      if (progress != null) {
        long now = System.nanoTime();
        long done = completed.sum();
        progress.update(stage, Rates.perSecond(done - lastCompleted, now - lastTime), done, errors.sum(), Double.NaN);
        lastCompleted = done;
        lastTime = now;
      }
    }
  }

  /**
   * The state at a window edge. The histogram swap, the clock and the counters are read back to back
   * (the slow ModelStatistics call comes first), so a window's completions are exactly the latencies
   * its histogram holds and its duration is the time between swaps.
   */
  private record Snapshot(long nanos, Histogram latencies, long sent, long errors, long rejected, long serverCpu,
      long clientCpu, long[] statistics, long frontier, long lag, long stalls, long serverAllocated,
      long serverSwitches) {
    WindowResult minus(Snapshot before, int rows) {
      long allocated = serverAllocated < 0 || before.serverAllocated < 0 ? -1 : serverAllocated - before.serverAllocated;
      long switches = serverSwitches < 0 || before.serverSwitches < 0 ? -1 : serverSwitches - before.serverSwitches;
      return window(before, rows).withServerCounters(allocated, switches);
    }

    private WindowResult window(Snapshot before, int rows) {
      long server = serverCpu < 0 || before.serverCpu < 0 ? -1 : serverCpu - before.serverCpu;
      long client = clientCpu < 0 || before.clientCpu < 0 ? -1 : clientCpu - before.clientCpu;
      long inferences = -1;
      long executions = -1;
      if (statistics != null && before.statistics != null) {
        inferences = statistics[0] - before.statistics[0];
        executions = statistics[1] - before.statistics[1];
      }
      if (frontier < 0 || before.frontier < 0) {
        return new WindowResult(nanos - before.nanos, sent - before.sent, latencies.getTotalCount(),
            errors - before.errors, rejected - before.rejected, latencies, server, client, inferences, executions, rows);
      }
      return WindowResult.open(nanos - before.nanos, sent - before.sent, latencies.getTotalCount(),
          errors - before.errors, rejected - before.rejected, latencies, server, client, inferences, executions, rows,
          Math.max(0, frontier - before.frontier), lag, stalls - before.stalls);
    }
  }

  private Snapshot snapshot() {
    long[] statistics = statistics();
    Histogram latencies = recorder.getIntervalHistogram();
    long now = System.nanoTime();
    long sentNow = sent.sum();
    long errorsNow = errors.sum();
    long rejectedNow = rejected.sum();
    OpenLoopPacer p = pacer;
    long frontier = p == null ? -1 : p.publishedFrontierNanos();
    long lag = p == null ? -1 : Math.max(0, now - frontier);
    long stalls = inflightStalls.sum();
    long server = settings.serverPid() > 0 ? CpuClock.processCpuNanos(settings.serverPid()) : -1;
    long client = CpuClock.selfCpuNanos();
    long switches = probe == null ? -1 : probe.contextSwitches();
    long allocated = probe == null ? -1 : probe.allocatedBytes();
    return new Snapshot(now, latencies, sentNow, errorsNow, rejectedNow, server, client, statistics, frontier, lag, stalls,
        allocated, switches);
  }

  /**
   * {inference_count, execution_count} of the model from ModelStatistics (summed over versions), or
   * null when the server does not offer it; asked once per window edge, off the measured path.
   */
  long[] statistics() {
    if (!statisticsSupported) {
      return null;
    }
    if (blockingStub == null) {
      long[] fromRest = http == null ? null : http.statistics(settings.modelName());
      statisticsSupported = fromRest != null;
      return fromRest;
    }
    try {
      ModelStatisticsResponse response = blockingStub.withDeadlineAfter(5, TimeUnit.SECONDS)
          .modelStatistics(ModelStatisticsRequest.newBuilder().setName(settings.modelName()).build());
      long inferences = 0;
      long executions = 0;
      for (ModelStatistics stats : response.getModelStatsList()) {
        if (stats.getName().equals(settings.modelName())) {
          inferences += stats.getInferenceCount();
          executions += stats.getExecutionCount();
        }
      }
      return new long[] {inferences, executions};
    } catch (StatusRuntimeException e) {
      statisticsSupported = false;
      return null;
    }
  }

  /**
   * Open-loop latency, corrected for coordinated omission: from when the schedule meant the request
   * to be sent, not from when it was sent, so time spent waiting behind a stalled server or the
   * in-flight limit is counted. (Closed loop measures from the real send: it has no schedule.)
   */
  static long correctedLatencyNanos(long intendedSendNanos, long completedNanos) {
    return completedNanos - intendedSendNanos;
  }

  private void recordSuccess(long latencyNanos) {
    recorder.recordValue(Math.max(0, latencyNanos));
    completed.increment();
    released();
  }

  /** One request fewer in flight; wakes an open-loop sender waiting for room. */
  private void released() {
    outstanding.decrementAndGet();
    OpenSender sender = openSender;
    if (sender != null) {
      sender.resume();
    }
  }

  private void recordError(Throwable t) {
    recordError(t, -1);
  }

  /** @param sentNanos when the request was sent ({@code System.nanoTime()}), or -1: times a rejection */
  private void recordError(Throwable t, long sentNanos) {
    if (isRejection(Status.fromThrowable(t).getCode())) {
      recordRejection(sentNanos);
    }
    errors.increment();
    released();
    noteError(t);
  }

  /**
   * True for the codes a server answers when it sheds load (a full queue, a rate limit, shutting
   * down): counted apart from other errors, as the overload curve's "rejected".
   */
  static boolean isRejection(Status.Code code) {
    return code == Status.Code.RESOURCE_EXHAUSTED || code == Status.Code.UNAVAILABLE;
  }

  /** REST: 429 and 503 are load shedding (rejected); anything else but 200 is an error. */
  static boolean isHttpRejection(int status) {
    return status == 429 || status == 503;
  }

  /**
   * Counts a refusal for load and, when its send time is known (not -1), times it. Called before the
   * error is counted: a window edge never sees more rejections than errors.
   */
  private void recordRejection(long sentNanos) {
    if (sentNanos >= 0) {
      rejections.recordValue(Math.max(0, System.nanoTime() - sentNanos));
    }
    rejected.increment();
  }

  /** @param sentNanos when the request was sent, or -1: times a rejection */
  private void recordHttp(int status, String error, long latencyNanos, long sentNanos) {
    if (status == 200) {
      recordSuccess(latencyNanos);
      return;
    }
    if (isHttpRejection(status)) {
      recordRejection(sentNanos);
    }
    errors.increment();
    released();
    noteError(error);
  }

  /**
   * A closed-loop REST slot: one keep-alive connection, one request in flight, the next sent from the
   * previous one's answer. A connection the server closed is replaced (asynchronously). Event loop only.
   */
  private final class ClosedHttp implements HttpEndpoint.Callback {
    private HttpEndpoint.Connection connection;
    private long next;
    private long startNanos;

    ClosedHttp(int slot, HttpEndpoint.Connection connection) {
      this.next = slot;
      this.connection = connection;
    }

    void fire() {
      if (!running) {
        return;
      }
      if (!connection.usable()) {
        reconnect();
        return;
      }
      HttpInferRequest request = httpRequests[(int) (next++ % httpRequests.length)];
      outstanding.incrementAndGet();
      sent.increment();
      startNanos = System.nanoTime();
      connection.send(request, this);
    }

    @Override
    public void done(int status, String error) {
      recordHttp(status, error, System.nanoTime() - startNanos, startNanos);
      if (connection.usable()) {
        fire();
      } else {
        reconnect();
      }
    }

    private void reconnect() {
      if (!running) {
        return;
      }
      connection.close();
      http.connectAsync(c -> {
        if (c == null) {
          noteError("cannot reconnect to " + http.hostHeader());
          eventLoop.schedule(this::reconnect, 1, TimeUnit.MILLISECONDS);
          return;
        }
        httpConnections.add(c);
        connection = c;
        if (!running) {
          c.close();
          return;
        }
        fire();
      });
    }
  }

  private void noteError(Object error) {
    if (firstError.get().isEmpty()) {
      String text = error instanceof Throwable t ? Status.fromThrowable(t).toString() : String.valueOf(error);
      firstError.compareAndSet("", text);
    }
  }

  private GRPCInferenceServiceGrpc.GRPCInferenceServiceStub unaryStub() {
    return settings.requestTimeoutNanos() > 0
        ? asyncStub.withDeadlineAfter(settings.requestTimeoutNanos(), TimeUnit.NANOSECONDS)
        : asyncStub;
  }

  /** A closed-loop unary slot: one call in flight, the next sent from the previous one's completion. */
  private final class ClosedUnary implements StreamObserver<ModelInferResponse> {
    private long next;
    private long startNanos;

    ClosedUnary(int slot) {
      this.next = slot;
    }

    void fire() {
      if (!running) {
        return;
      }
      ModelInferRequest request = requests[(int) (next++ % requests.length)];
      outstanding.incrementAndGet();
      sent.increment();
      startNanos = System.nanoTime();
      unaryStub().modelInfer(request, this);
    }

    @Override
    public void onNext(ModelInferResponse response) {}

    @Override
    public void onError(Throwable t) {
      recordError(t, startNanos);
      // An error may be delivered inside the call that failed: retrying inline could recurse.
      eventLoop.schedule(this::fire, 1, TimeUnit.MILLISECONDS);
    }

    @Override
    public void onCompleted() {
      recordSuccess(System.nanoTime() - startNanos);
      fire();
    }
  }

  /** A closed-loop stream: one bidi stream with one request in flight at a time. */
  private final class ClosedStream implements ClientResponseObserver<ModelInferRequest, ModelStreamInferResponse> {
    private final int slot;
    private StreamObserver<ModelInferRequest> out;
    private long next;
    private long startNanos;
    private boolean halfClosed;
    private volatile boolean inFlight;

    ClosedStream(int slot) {
      this.slot = slot;
      this.next = slot;
    }

    void start() {
      out = asyncStub.modelStreamInfer(this);
      fire();
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<ModelInferRequest> requestStream) {}

    void fire() {
      if (!running) {
        if (!halfClosed) {
          halfClosed = true;
          out.onCompleted();
        }
        return;
      }
      ModelInferRequest request = requests[(int) (next++ % requests.length)].toBuilder()
          .setId(slot + "-" + next).build();
      outstanding.incrementAndGet();
      sent.increment();
      inFlight = true;
      startNanos = System.nanoTime();
      out.onNext(request);
    }

    @Override
    public void onNext(ModelStreamInferResponse response) {
      inFlight = false;
      if (!response.getErrorMessage().isEmpty()) {
        errors.increment();
        outstanding.decrementAndGet();
        noteError(response.getErrorMessage());
      } else {
        recordSuccess(System.nanoTime() - startNanos);
      }
      fire();
    }

    @Override
    public void onError(Throwable t) {
      // The stream is gone, and with it the one request it had in flight (if any).
      halfClosed = true;
      if (inFlight) {
        inFlight = false;
        recordError(t);
      } else {
        noteError(t);
      }
    }

    @Override
    public void onCompleted() {}
  }

  /**
   * The open-loop sender, run as tasks on the client's event loop. Each run asks the pacer for every
   * request whose intended time has come and sends them in one burst (at most {@value #MAX_BURST},
   * so I/O is not starved; fewer when the in-flight limit leaves less room), then schedules one
   * task for the next intended time; at the in-flight limit it sleeps until an answer frees a slot.
   * One timer task per wake-up, not per request, and no allocation per send beyond the call itself.
   * Runs on the event loop thread; {@link #resume} may be called from any thread.
   */
  private final class OpenSender implements Runnable, java.util.function.LongConsumer {
    private final OpenLoopPacer pacer;
    private final int capacity;
    /** Streaming only: per ring slot, the sequence number in flight there (-1 = free) and its intended time. */
    private final AtomicLongArray slotSeq;
    private final long[] slotIntended;
    private final OpenStream[] streams;
    /** REST: connections with no request in flight. */
    final java.util.ArrayDeque<HttpEndpoint.Connection> idle = new java.util.ArrayDeque<>();
    private long seq;
    private volatile boolean finished;
    /** Set while the sender waits for the in-flight limit to leave room; cleared by {@link #resume}. */
    private final java.util.concurrent.atomic.AtomicBoolean waitingForRoom = new java.util.concurrent.atomic.AtomicBoolean();

    OpenSender(ArrivalSchedule schedule) {
      this.capacity = Integer.highestOneBit(Math.max(1, settings.maxInflight() - 1)) << 1;
      if (settings.streaming()) {
        slotSeq = new AtomicLongArray(capacity);
        for (int i = 0; i < capacity; i++) {
          slotSeq.set(i, -1);
        }
        slotIntended = new long[capacity];
        streams = new OpenStream[settings.streams()];
      } else {
        slotSeq = null;
        slotIntended = null;
        streams = null;
      }
      this.pacer = new OpenLoopPacer(schedule, System.nanoTime());
    }

    /** Opens the streams (on the event loop) and starts sending. */
    void start() {
      eventLoop.execute(() -> {
        if (streams != null) {
          for (int i = 0; i < streams.length; i++) {
            streams[i] = new OpenStream(this);
          }
        }
        run();
      });
    }

    @Override
    public void run() {
      if (!running) {
        finish();
        return;
      }
      long now = System.nanoTime();
      // Bounded in flight: send only what fits; waiting for room counts in the latency (from the intended time).
      int room = room(MAX_BURST);
      int sentNow = pacer.sendDue(now, room, this);
      if (!running) {
        finish();
        return;
      }
      if (pacer.isDue(now)) {
        if (sentNow == room && room == MAX_BURST) {
          eventLoop.execute(this); // behind schedule: continue after pending I/O
        } else {
          // At the in-flight limit: the next answer (or failure) resumes the sender. Polling for room
          // instead cost the client core a timer wake-up every few µs, exactly when it was busiest,
          // and kept a client that had reached the limit there (PROFILE.md).
          inflightStalls.increment();
          waitingForRoom.set(true);
          if (room(1) > 0 && waitingForRoom.compareAndSet(true, false)) {
            eventLoop.execute(this); // room appeared meanwhile
          }
        }
        return;
      }
      eventLoop.schedule(this, pacer.nextIntendedNanos() - System.nanoTime(), TimeUnit.NANOSECONDS);
    }

    /** How many more requests may go out now: the in-flight limit, and free ring slots when streaming. */
    private int room(int max) {
      int room = (int) Math.min(max, settings.maxInflight() - outstanding.get());
      if (http != null) {
        room = Math.min(room, idle.size());
      }
      if (streams != null) {
        for (int i = 0; i < room; i++) {
          if (slotSeq.get((int) ((seq + i) & (capacity - 1))) != -1) {
            return i;
          }
        }
      }
      return Math.max(0, room);
    }

    /** A request left the in-flight count: restarts a sender that was waiting for room. Any thread. */
    void resume() {
      if (waitingForRoom.get() && waitingForRoom.compareAndSet(true, false)) {
        eventLoop.execute(this);
      }
    }

    /** Sends the next request, intended for {@code intended} (called by the pacer). */
    @Override
    public void accept(long intended) {
      if (!running) {
        return; // a stream died earlier in this burst
      }
      send(intended);
    }

    private void send(long intended) {
      if (http != null) {
        HttpEndpoint.Connection connection = idle.poll();
        HttpInferRequest request = httpRequests[(int) (seq++ % httpRequests.length)];
        outstanding.incrementAndGet();
        sent.increment();
        connection.send(request, new OpenHttpCall(intended, connection, this));
        return;
      }
      ModelInferRequest request = requests[(int) (seq % requests.length)];
      if (streams == null) {
        outstanding.incrementAndGet();
        sent.increment();
        unaryStub().modelInfer(request, new OpenUnaryCall(intended));
      } else {
        OpenStream stream = streams[(int) (seq % streams.length)];
        if (stream.dead) {
          noteError("stream closed by the server");
          running = false;
          return;
        }
        int slot = (int) (seq & (capacity - 1));
        slotIntended[slot] = intended;
        slotSeq.set(slot, seq); // volatile: publishes slotIntended[slot] to whichever thread reads the answer
        outstanding.incrementAndGet();
        sent.increment();
        stream.out.onNext(request.toBuilder().setId(Long.toString(seq)).build());
      }
      seq++;
    }

    private void finish() {
      if (streams != null) {
        for (OpenStream stream : streams) {
          if (stream != null && !stream.dead) {
            stream.out.onCompleted();
          }
        }
      }
      finished = true;
    }

    /** Stops sending and waits until the sender has half-closed its streams. Caller's thread. */
    void stop() throws InterruptedException {
      running = false;
      eventLoop.execute(() -> {
        if (!finished) {
          finish();
        }
      });
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (!finished && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
    }

    void complete(String id, String error) {
      long sequence;
      try {
        sequence = Long.parseLong(id);
      } catch (NumberFormatException e) {
        noteError("response with unknown id '" + id + "'" + (error == null ? "" : ": " + error));
        return;
      }
      int slot = (int) (sequence & (capacity - 1));
      if (slotSeq.get(slot) != sequence) {
        noteError("response with unknown id '" + id + "'");
        return;
      }
      long intended = slotIntended[slot];
      slotSeq.set(slot, -1);
      if (error == null) {
        recordSuccess(correctedLatencyNanos(intended, System.nanoTime()));
      } else {
        errors.increment();
        released();
        noteError(error);
      }
    }

    /** Fails every request still in flight on a stream that died. */
    void failStream(OpenStream stream, Throwable t) {
      stream.dead = true;
      noteError(t);
      for (int slot = 0; slot < capacity; slot++) {
        long inFlight = slotSeq.get(slot);
        if (inFlight >= 0 && streams[(int) (inFlight % streams.length)] == stream
            && slotSeq.compareAndSet(slot, inFlight, -1)) {
          errors.increment();
          released();
        }
      }
    }
  }

  /** One open-loop REST request; gives its connection back to the pool when answered (or replaces it). */
  private final class OpenHttpCall implements HttpEndpoint.Callback {
    private final long intendedNanos;
    private final long sentNanos = System.nanoTime(); // created just before the request is written
    private final HttpEndpoint.Connection connection;
    private final OpenSender sender;

    OpenHttpCall(long intendedNanos, HttpEndpoint.Connection connection, OpenSender sender) {
      this.intendedNanos = intendedNanos;
      this.connection = connection;
      this.sender = sender;
    }

    @Override
    public void done(int status, String error) {
      recordHttp(status, error, correctedLatencyNanos(intendedNanos, System.nanoTime()), sentNanos);
      if (connection.usable()) {
        sender.idle.push(connection);
        return;
      }
      connection.close();
      if (running) {
        http.connectAsync(c -> {
          if (c == null) {
            noteError("cannot reconnect to " + http.hostHeader());
            return; // the pool shrinks by one
          }
          httpConnections.add(c);
          if (running) {
            sender.idle.push(c);
          } else {
            c.close();
          }
        });
      }
    }
  }

  private final class OpenUnaryCall implements StreamObserver<ModelInferResponse> {
    private final long intendedNanos;
    private final long sentNanos = System.nanoTime(); // created just before the call is started

    OpenUnaryCall(long intendedNanos) {
      this.intendedNanos = intendedNanos;
    }

    @Override
    public void onNext(ModelInferResponse response) {}

    @Override
    public void onError(Throwable t) {
      recordError(t, sentNanos);
    }

    @Override
    public void onCompleted() {
      recordSuccess(correctedLatencyNanos(intendedNanos, System.nanoTime()));
    }
  }

  private final class OpenStream implements StreamObserver<ModelStreamInferResponse> {
    private final OpenSender sender;
    private final StreamObserver<ModelInferRequest> out;
    private volatile boolean dead;

    OpenStream(OpenSender sender) {
      this.sender = sender;
      this.out = asyncStub.modelStreamInfer(this);
    }

    @Override
    public void onNext(ModelStreamInferResponse response) {
      String error = response.getErrorMessage().isEmpty() ? null : response.getErrorMessage();
      sender.complete(response.getInferResponse().getId(), error);
    }

    @Override
    public void onError(Throwable t) {
      sender.failStream(this, t);
    }

    @Override
    public void onCompleted() {
      dead = true;
    }
  }

  @Override
  public void close() {
    running = false;
    if (probe != null) {
      probe.close();
    }
  }
}
