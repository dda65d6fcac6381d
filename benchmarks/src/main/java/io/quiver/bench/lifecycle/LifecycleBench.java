package io.quiver.bench.lifecycle;

import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.bench.perf.CpuClock;
import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.lifecycle.LifecycleListener;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.LoadScheduling;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelManagerOptions;
import io.quiver.lifecycle.ProcessMemory;
import io.quiver.lifecycle.ResidentWaiter;
import io.quiver.registry.LocalModelRepository;
import io.quiver.server.IdleLoads;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The lifecycle benchmarks of issue 17, in one JVM with a {@link ModelManager} over the real ONNX
 * Runtime and dynamic batcher, requests sent the way the data plane sends them
 * ({@link ModelManager#tryAcquire}, else {@link ModelManager#awaitResident}; then the version's
 * scheduler). Models are the generator's offset models (OUTPUT0 = INPUT0 + offset, plus a dense
 * branch whose width sets the model's size); every answer is checked.
 *
 * <ul>
 *   <li>{@code soak}: lazy mode, a budget that holds two models, three models requested in turn, so
 *       every request loads one model and evicts another; resident memory and open file descriptors
 *       sampled every 50 cycles over 1,000 cycles.
 *   <li>{@code cold-start}: per model size, the latency of a request to a model that is not resident
 *       (load, warm-up, first inference), repeats interleaved across sizes.
 *   <li>{@code hot-cold}: a hot set's request latency (closed loop) with and without a cold tail
 *       churning through loads and evictions beside it, phases alternated.
 * </ul>
 *
 * Prints one line per measurement and a summary; {@code --out FILE} also writes the summary there.
 */
@Command(name = "lifecycle-bench", mixinStandardHelpOptions = true,
    subcommands = {LifecycleBench.Soak.class, LifecycleBench.ColdStart.class, LifecycleBench.HotCold.class},
    description = "Model lifecycle benchmarks: load/evict soak, cold-start latency by model size, hot set under churn.")
public final class LifecycleBench implements Runnable {
  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new LifecycleBench()).execute(args));
  }

  // ---------------------------------------------------------------------------------------------

  /** A repository of offset models and a manager over it; close it when done. */
  static final class Bench implements AutoCloseable {
    final Path repository;
    final ModelManager manager;
    final LongAdder evictions = new LongAdder();
    final LongAdder loads = new LongAdder();

    Bench(Path repository, ModelManagerOptions options) {
      this.repository = repository;
      this.manager = new ModelManager(new LocalModelRepository(repository), ModelManager.discoverRuntimes(),
          new DynamicBatcherFactory(), options);
      manager.setListener(new LifecycleListener() {
        @Override
        public void loadedOnDemand(String model, boolean ok, long nanos, long coldStartNanos, int waiters) {
          loads.increment();
        }

        @Override
        public void evicted(String model, long bytes, EvictionCause cause) {
          evictions.increment();
        }
      });
      manager.start();
    }

    /** One request ({@code x..x+3}) to {@code model}; completes with OUTPUT0 or the failure. Never blocks. */
    CompletableFuture<float[]> infer(String model, float x) {
      CompletableFuture<float[]> result = new CompletableFuture<>();
      try {
        LoadedVersion version = manager.tryAcquire(model, "", null);
        if (version != null) {
          submit(version, x, result);
        } else {
          manager.awaitResident(model, "", null, System.nanoTime() + TimeUnit.SECONDS.toNanos(120), new ResidentWaiter() {
            @Override
            public void resident(LoadedVersion v) {
              submit(v, x, result);
            }

            @Override
            public void failed(InferenceException error) {
              result.completeExceptionally(error);
            }
          });
        }
      } catch (RuntimeException e) {
        result.completeExceptionally(e);
      }
      return result;
    }

    private static void submit(LoadedVersion version, float x, CompletableFuture<float[]> result) {
      // A heap buffer, as the transports hand over (KServeCodec: a view of the request's protobuf bytes); the
      // instance copies it into its pooled direct batch buffer. A direct buffer per request here would give
      // the collector a Cleaner per request to carry (≈ 15 MB of survivors per young collection at 10k req/s),
      // a cost of this stand-in client that the server does not have.
      ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < 4; i++) {
        data.putFloat(x + i);
      }
      data.flip();
      InferRequest request = new InferRequest(version.name(), version.version(), "",
          new Tensor[] {new Tensor("INPUT0", DataType.FP32, new long[] {1, 4}, data)}, new int[] {0}, 1, 0, 0,
          InferRequest.NO_DEADLINE, new InferCallback() {
            @Override
            public void onSuccess(InferRequest r, Tensor[] outputs) {
              version.release();
              ByteBuffer out = outputs[0].data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
              float[] values = new float[4];
              for (int i = 0; i < 4; i++) {
                values[i] = out.getFloat();
              }
              result.complete(values);
            }

            @Override
            public void onFailure(InferRequest r, InferenceException error) {
              version.release();
              result.completeExceptionally(error);
            }
          });
      try {
        version.scheduler().submit(request);
      } catch (RuntimeException e) {
        version.release();
        result.completeExceptionally(e);
      }
    }

    /** Sends one request and checks the answer is {@code x + offset}. */
    void call(String model, float x, float offset) throws Exception {
      float[] out = infer(model, x).get(120, TimeUnit.SECONDS);
      if (out[0] != x + offset || out[3] != x + 3 + offset) {
        throw new AssertionError(model + " answered " + Arrays.toString(out) + " to " + x);
      }
    }

    @Override
    public void close() {
      manager.close();
    }
  }

  static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.1f", bytes / 1048576.0);
  }

  static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    sorted.sort(null);
    int n = sorted.size();
    return n == 0 ? Double.NaN : n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  static PrintStream out(Path file) throws IOException {
    return file == null ? System.out : new PrintStream(Files.newOutputStream(file), true, java.nio.charset.StandardCharsets.UTF_8);
  }

  static double load1() {
    try {
      return Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split("\\s+")[0]);
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  // ---------------------------------------------------------------------------------------------

  @Command(name = "soak", mixinStandardHelpOptions = true,
      description = "Load/evict cycles under a budget that holds one model of three: resident memory and file descriptors.")
  static final class Soak implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--cycles", defaultValue = "1000", description = "Load/evict cycles (default ${DEFAULT-VALUE}).")
    int cycles;

    @Option(names = "--hidden", defaultValue = "262144", description = "Dense width of each model (36 B per unit; default ${DEFAULT-VALUE} = 9.4 MB).")
    int hidden;

    @Option(names = "--sample-every", defaultValue = "50", description = "Cycles between samples (default ${DEFAULT-VALUE}).")
    int every;

    @Option(names = "--out", description = "Also write the summary here.")
    Path outFile;

    @Override
    public Integer call() throws Exception {
      Path repo = Files.createTempDirectory("quiver-soak-");
      for (int i = 0; i < 3; i++) {
        ExampleModels.writeOffsetModel(repo, "m" + i, i, hidden);
      }
      long modelBytes = Files.size(repo.resolve("m0/1/model.onnx"));
      // One model fits, not two (ONNX Runtime holds about 1.7 times the file once loaded, give or take a few
      // MiB of measurement noise): each request for the next model in turn loads it and evicts the previous one.
      long budget = (long) (2.5 * modelBytes);
      List<long[]> samples = new ArrayList<>(); // cycle, rss, fds, used
      long t0 = System.nanoTime();
      try (Bench bench = new Bench(repo, ModelManagerOptions.defaults().withControlMode(ControlMode.LAZY)
          .withMemoryBudgetBytes(budget))) {
        for (int c = 0; c <= cycles; c++) {
          int m = c % 3;
          bench.call("m" + m, c, m);
          if (c % every == 0) {
            System.gc();
            long[] s = {c, ProcessMemory.residentBytes(), ProcessMemory.openFileDescriptors(), bench.manager.memoryUsedBytes(),
                bench.loads.sum(), bench.evictions.sum()};
            samples.add(s);
            System.out.printf(Locale.ROOT, "cycle %5d  rss %8s MiB  fds %4d  accounted %6s MiB  loads %5d  evictions %5d  load1 %.1f%n",
                s[0], mib(s[1]), s[2], mib(s[3]), s[4], s[5], load1());
          }
        }
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
        // Growth: the last quarter's median against the second quarter's (after the first loads warmed everything up).
        int q = samples.size() / 4;
        List<Double> early = new ArrayList<>();
        List<Double> late = new ArrayList<>();
        List<Double> earlyFd = new ArrayList<>();
        List<Double> lateFd = new ArrayList<>();
        for (int i = q; i < 2 * q; i++) {
          early.add((double) samples.get(i)[1]);
          earlyFd.add((double) samples.get(i)[2]);
        }
        for (int i = samples.size() - q; i < samples.size(); i++) {
          late.add((double) samples.get(i)[1]);
          lateFd.add((double) samples.get(i)[2]);
        }
        try (PrintStream out = out(outFile)) {
          out.printf(Locale.ROOT, "soak: %d cycles (%d on-demand loads, %d evictions) in %d s; three models of %s MiB (files)"
                  + " requested in turn, budget %s MiB (one of them)%n",
              cycles, bench.loads.sum(), bench.evictions.sum(), seconds, mib(modelBytes), mib(budget));
          out.printf(Locale.ROOT, "rss median, cycles %d-%d: %s MiB; cycles %d-%d: %s MiB; growth %+.1f MiB (%+.1f KiB per cycle)%n",
              samples.get(q)[0], samples.get(2 * q - 1)[0], mib((long) median(early)), samples.get(samples.size() - q)[0],
              samples.get(samples.size() - 1)[0], mib((long) median(late)), (median(late) - median(early)) / 1048576.0,
              (median(late) - median(early)) / 1024.0 / Math.max(1, samples.get(samples.size() - q)[0] - samples.get(q)[0]));
          out.printf(Locale.ROOT, "open fds median: %.0f then %.0f; min %d max %d over the run%n", median(earlyFd), median(lateFd),
              samples.stream().mapToLong(s -> s[2]).min().orElse(-1), samples.stream().mapToLong(s -> s[2]).max().orElse(-1));
          out.printf(Locale.ROOT, "rss min %s max %s MiB over the run (first sample %s MiB)%n",
              mib(samples.stream().mapToLong(s -> s[1]).min().orElse(-1)), mib(samples.stream().mapToLong(s -> s[1]).max().orElse(-1)),
              mib(samples.get(0)[1]));
        }
      } finally {
        LocalModelRepository.deleteTree(repo);
      }
      return 0;
    }
  }

  // ---------------------------------------------------------------------------------------------

  @Command(name = "cold-start", mixinStandardHelpOptions = true,
      description = "Latency of a request to a model that is not resident, per model size (repeats interleaved).")
  static final class ColdStart implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--hidden", split = ",", defaultValue = "0,16384,262144,1048576",
        description = "Dense widths (36 B per unit): default 0 (a few hundred bytes), 16384 (0.6 MB), 262144 (9.4 MB), 1048576 (38 MB).")
    List<Integer> widths;

    @Option(names = "--repeats", defaultValue = "15", description = "Cold starts per size (default ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--out", description = "Also write the summary here.")
    Path outFile;

    @Override
    public Integer call() throws Exception {
      Path repo = Files.createTempDirectory("quiver-cold-");
      List<String> names = new ArrayList<>();
      for (int i = 0; i < widths.size(); i++) {
        names.add("size_" + i);
        ExampleModels.writeOffsetModel(repo, names.get(i), i, widths.get(i));
      }
      List<List<Double>> cold = new ArrayList<>();
      List<List<Double>> warm = new ArrayList<>();
      for (int i = 0; i < widths.size(); i++) {
        cold.add(new ArrayList<>());
        warm.add(new ArrayList<>());
      }
      try (Bench bench = new Bench(repo, ModelManagerOptions.defaults().withControlMode(ControlMode.LAZY))) {
        for (int i = 0; i < names.size(); i++) {
          bench.call(names.get(i), 0, i); // first loads (runtime start-up, JIT) are not counted
          bench.manager.unload(names.get(i));
        }
        for (int r = 0; r < repeats; r++) {
          for (int k = 0; k < names.size(); k++) {
            int i = (k + r) % names.size(); // rotate the order every repeat
            long t0 = System.nanoTime();
            bench.call(names.get(i), r, i);
            long t1 = System.nanoTime();
            bench.call(names.get(i), r + 1, i);
            long t2 = System.nanoTime();
            cold.get(i).add((t1 - t0) / 1e6);
            warm.get(i).add((t2 - t1) / 1e6);
            bench.manager.unload(names.get(i));
          }
        }
        try (PrintStream out = out(outFile)) {
          out.printf(Locale.ROOT, "%-10s %12s %14s %14s %14s %14s%n", "model", "file MiB", "cold p50 ms", "cold p90 ms",
              "cold max ms", "warm p50 ms");
          for (int i = 0; i < names.size(); i++) {
            List<Double> c = new ArrayList<>(cold.get(i));
            c.sort(null);
            out.printf(Locale.ROOT, "%-10s %12s %14.1f %14.1f %14.1f %14.2f%n", names.get(i),
                mib(Files.size(repo.resolve(names.get(i)).resolve("1/model.onnx"))), median(c),
                c.get((int) Math.min(c.size() - 1, Math.ceil(c.size() * 0.9) - 1)), c.get(c.size() - 1), median(warm.get(i)));
          }
          out.printf(Locale.ROOT, "(%d cold starts per size, sizes rotated every repeat; load1 at the end %.1f)%n", repeats, load1());
        }
      } finally {
        LocalModelRepository.deleteTree(repo);
      }
      return 0;
    }
  }

  // ---------------------------------------------------------------------------------------------

  @Command(name = "hot-cold", mixinStandardHelpOptions = true,
      description = "A hot set's latency (closed loop) alone and with a cold tail churning beside it, phases alternated.")
  static final class HotCold implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--hot", defaultValue = "4", description = "Hot models (default ${DEFAULT-VALUE}).")
    int hot;

    @Option(names = "--cold", defaultValue = "40", description = "Cold-tail models (default ${DEFAULT-VALUE}).")
    int cold;

    @Option(names = "--concurrency", defaultValue = "8",
        description = "Closed loop: hot requests in flight; open loop: the most in flight (default ${DEFAULT-VALUE}).")
    int concurrency;

    @Option(names = "--hot-rate", defaultValue = "0",
        description = "Open loop: hot requests per second at constant intervals, latency from each request's intended send "
            + "time (coordinated omission corrected); 0 = closed loop at --concurrency (default).")
    double hotRate;

    @Option(names = "--cold-rate", defaultValue = "5", description = "Cold-tail requests per second in the churn phases (default ${DEFAULT-VALUE}).")
    double coldRate;

    @Option(names = "--hidden", defaultValue = "16384", description = "Dense width of every model (default ${DEFAULT-VALUE} = 0.6 MB).")
    int hidden;

    @Option(names = "--cold-room", defaultValue = "2",
        description = "Cold models the budget holds beside the hot set (default ${DEFAULT-VALUE}; --cold-room equal to --cold: "
            + "the tail loads once and is then only served, which separates its loads from its requests).")
    int coldRoom;

    @Option(names = "--phase-seconds", defaultValue = "10", description = "Length of each phase (default ${DEFAULT-VALUE}).")
    int phaseSeconds;

    @Option(names = "--pairs", defaultValue = "4", description = "Quiet/churn phase pairs, alternated (default ${DEFAULT-VALUE}).")
    int pairs;

    @Option(names = "--load-yield-ms", defaultValue = "50",
        description = "As the server's --model-load-yield-ms: loads under SCHED_IDLE until they have waited this long for a core;"
            + " 0 = loads at normal priority (default ${DEFAULT-VALUE}).")
    long loadYieldMillis;

    @Option(names = "--churn-command",
        description = "A control: in the churn phases, run this shell command (started at the phase's start, killed at its end)"
            + " instead of sending the cold tail, to see what another process's work beside the hot set does to it "
            + "(e.g. benchmarks/duty-load.c at the CPU the tail's loads take).")
    String churnCommand;

    @Option(names = "--warm-loads", defaultValue = "0",
        description = "Requests to the cold tail in turn before anything is measured, one at a time: each loads a model"
            + " and evicts another, so the JIT has compiled the load path before the phases (default ${DEFAULT-VALUE}).")
    int warmLoads;

    @Option(names = "--out", description = "Also write the summary here.")
    Path outFile;

    @Override
    public Integer call() throws Exception {
      // The hot requests go out from a thread of their own with a name: the launcher's main thread keeps the
      // OS name "java", and benchmarks/wakeup-latency.sh tells the sender's wake-ups apart by thread name.
      java.util.concurrent.FutureTask<Integer> run = new java.util.concurrent.FutureTask<>(this::measure);
      Thread sender = new Thread(run, "hot-sender");
      sender.start();
      try {
        return run.get();
      } catch (java.util.concurrent.ExecutionException e) {
        if (e.getCause() instanceof Exception cause) {
          throw cause;
        }
        throw (Error) e.getCause();
      }
    }

    private Integer measure() throws Exception {
      Path repo = Files.createTempDirectory("quiver-hotcold-");
      for (int i = 0; i < hot + cold; i++) {
        ExampleModels.writeOffsetModel(repo, "m" + i, i, hidden);
      }
      long fileBytes = Files.size(repo.resolve("m0/1/model.onnx"));
      // Room for the hot set and --cold-room cold models: the tail churns through the last places (with room for
      // all of it, the tail is loaded once and then only served).
      long budget = (long) ((hot + coldRoom) * 3 * fileBytes + 2 * fileBytes);
      List<double[]> quiet = new ArrayList<>();
      List<double[]> churn = new ArrayList<>();
      // Each measured phase's hot latencies, by kind.
      List<Histogram> quietPhases = new ArrayList<>();
      List<Histogram> churnPhases = new ArrayList<>();
      LoadScheduling loads = IdleLoads.create(loadYieldMillis);
      try (Bench bench = new Bench(repo, ModelManagerOptions.defaults().withControlMode(ControlMode.LAZY)
          .withMemoryBudgetBytes(budget).withLoadScheduling(loads))) {
        for (int i = 0; i < hot; i++) {
          bench.call("m" + i, 0, i);
        }
        for (int k = 0; k < warmLoads && cold > 0; k++) {
          int m = hot + k % cold;
          bench.call("m" + m, 1, m);
        }
        runPhase(bench, false, 2, new Histogram(TimeUnit.SECONDS.toMicros(60), 3)); // warm-up: JIT, batcher threads
        for (int p = 0; p < pairs; p++) {
          boolean churnFirst = p % 2 == 1; // alternate which phase of the pair comes first
          for (boolean churnPhase : new boolean[] {churnFirst, !churnFirst}) {
            Histogram latency = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
            (churnPhase ? churn : quiet).add(runPhase(bench, churnPhase, phaseSeconds, latency));
            (churnPhase ? churnPhases : quietPhases).add(latency);
          }
        }
        // The hot set's p99 with and without the churn over the whole run, which a rare platform stall in one
        // 10 s phase moves far less than it moves that phase's p99.
        Histogram quietPooled = pooled(quietPhases);
        Histogram churnPooled = pooled(churnPhases);
        try (PrintStream out = out(outFile)) {
          out.printf(Locale.ROOT, "hot-cold: %d hot models %s, %d cold models at %.1f req/s in churn phases; "
                  + "model file %s MiB, budget %s MiB; %d s phases, %d pairs alternated; loads %s; %d warm-up loads; load1 %.1f%n", hot,
              hotRate > 0 ? String.format(Locale.ROOT, "open loop at %.0f req/s", hotRate) : "closed loop at concurrency " + concurrency,
              cold, churnCommand == null ? coldRate : 0, mib(fileBytes), mib(budget), phaseSeconds, pairs,
              loads instanceof IdleLoads idle ? "yield up to " + idle.maxWaitMillis() + " ms (SCHED_IDLE)" : "at normal priority",
              warmLoads, load1());
          if (churnCommand != null) {
            out.printf(Locale.ROOT, "control: churn phases ran `%s` instead of the cold tail%n", churnCommand);
          }
          out.printf(Locale.ROOT, "%-6s %10s %10s %10s %10s %10s %8s %8s%n", "phase", "hot req/s", "p50 us", "p99 us",
              "p99.9 us", "cold ok", "loads", "evict");
          // The JVM's own work per phase: young and old collections (count, pause ms) and JIT time (ms).
          // Open loop also: the p99 of how late the sender sent against each request's due time (0 closed loop).
          // And the platform's own stalls as a thread of this JVM sees them (HiccupMeter): p99 and max, microseconds.
          // Last, CPU per second of the phase: this JVM's, and the --churn-command process's (0 without one).
          out.printf(Locale.ROOT, "%-6s %10s %10s %10s %10s %10s %10s %10s %10s%n", "", "GCs", "GC ms", "JIT ms", "lag p99 us",
              "hiccup p99", "hiccup max", "cpu ms/s", "ctl ms/s");
          for (int p = 0; p < pairs; p++) {
            print(out, "quiet", quiet.get(p));
            print(out, "churn", churn.get(p));
          }
          List<Double> ratios = new ArrayList<>();
          for (int p = 0; p < pairs; p++) {
            ratios.add(churn.get(p)[2] / quiet.get(p)[2]);
          }
          out.printf(Locale.ROOT, "hot p99 churn/quiet per pair: %s; median %.2f (goal < 1.20); median hot req/s quiet %.0f, churn %.0f%n",
              ratios.stream().map(r -> String.format(Locale.ROOT, "%.2f", r)).toList(), median(ratios),
              median(quiet.stream().map(x -> x[0]).toList()), median(churn.stream().map(x -> x[0]).toList()));
          out.printf(Locale.ROOT, "hot p99 over all phases of a kind: quiet %d us, churn %d us; ratio %.2f (p99.9 %d / %d us)%n",
              quietPooled.getValueAtPercentile(99), churnPooled.getValueAtPercentile(99),
              (double) churnPooled.getValueAtPercentile(99) / quietPooled.getValueAtPercentile(99),
              quietPooled.getValueAtPercentile(99.9), churnPooled.getValueAtPercentile(99.9));
          double[] interval = pooledRatioInterval(quietPhases, churnPhases);
          out.printf(Locale.ROOT, "pooled p99 ratio, 95%% bootstrap interval over the %d pairs (%d resamples): %.2f-%.2f "
                  + "(goal < 1.20: met if the interval lies below it, missed if above, undecided if it straddles)%n",
              pairs, BOOTSTRAP_RESAMPLES, interval[0], interval[1]);
        }
      } finally {
        loads.close();
        LocalModelRepository.deleteTree(repo);
      }
      return 0;
    }

    /**
     * How late a thread of this JVM that sleeps 1 ms at a time wakes up, beyond the millisecond (the idea of
     * jHiccup): stalls that any request would have met whatever Quiver did, from the platform (the host, other
     * processes, the kernel's own threads) or the JVM (safepoints), plus the waits for a core that this
     * process's own threads cause. A phase whose hot p99 sits near this p99 was set by the platform.
     */
    private static final class HiccupMeter extends Thread {
      final Histogram histogram = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      private final long end;

      HiccupMeter(long end) {
        super("hiccup-meter");
        this.end = end;
        setDaemon(true);
        start();
      }

      @Override
      public void run() {
        long period = TimeUnit.MILLISECONDS.toNanos(1);
        while (System.nanoTime() < end) {
          long before = System.nanoTime();
          java.util.concurrent.locks.LockSupport.parkNanos(period);
          long lateMicros = (System.nanoTime() - before - period) / 1000;
          record(histogram, lateMicros);
        }
      }
    }

    /** Records microseconds, kept within what the histogram tracks (negative clock differences count as 0). */
    private static void record(Histogram histogram, long micros) {
      histogram.recordValue(Math.min(histogram.getHighestTrackableValue(), Math.max(0, micros)));
    }

    /** Collections so far (count, pause milliseconds) and the JIT's compilation milliseconds. */
    private static long[] jvmWork() {
      long count = 0;
      long millis = 0;
      for (java.lang.management.GarbageCollectorMXBean gc : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) {
        count += Math.max(0, gc.getCollectionCount());
        millis += Math.max(0, gc.getCollectionTime());
      }
      java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
      long compileMillis = jit != null && jit.isCompilationTimeMonitoringSupported() ? jit.getTotalCompilationTime() : -1;
      return new long[] {count, millis, compileMillis};
    }

    private static void print(PrintStream out, String phase, double[] r) {
      out.printf(Locale.ROOT, "%-6s %10.0f %10.0f %10.0f %10.0f %10.0f %8.0f %8.0f%n", phase, r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
      out.printf(Locale.ROOT, "%-6s %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f%n", "", r[7], r[8], r[9], r[10], r[11],
          r[12], r[13], r[14]);
    }

    /** Every phase's latencies in one histogram. */
    private static Histogram pooled(List<Histogram> phases) {
      Histogram all = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      phases.forEach(all::add);
      return all;
    }

    private static final int BOOTSTRAP_RESAMPLES = 1000;

    /**
     * How far the pooled p99 ratio (churn / quiet) could move from phase-to-phase variation alone: pairs drawn
     * with replacement (a pair's quiet and churn phase stay together: they ran side by side), their latencies
     * pooled by kind, the ratio taken; the 2.5th and 97.5th percentiles of {@link #BOOTSTRAP_RESAMPLES} such
     * ratios. A fixed seed, so one run's output is reproducible from its phases.
     */
    static double[] pooledRatioInterval(List<Histogram> quietPhases, List<Histogram> churnPhases) {
      int pairs = quietPhases.size();
      double[] ratios = new double[BOOTSTRAP_RESAMPLES];
      SplittableRandom random = new SplittableRandom(17);
      Histogram quiet = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      Histogram churn = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      for (int i = 0; i < ratios.length; i++) {
        quiet.reset();
        churn.reset();
        for (int k = 0; k < pairs; k++) {
          int p = random.nextInt(pairs);
          quiet.add(quietPhases.get(p));
          churn.add(churnPhases.get(p));
        }
        ratios[i] = (double) churn.getValueAtPercentile(99) / Math.max(1, quiet.getValueAtPercentile(99));
      }
      Arrays.sort(ratios);
      return new double[] {ratios[(int) (0.025 * (ratios.length - 1))], ratios[(int) Math.ceil(0.975 * (ratios.length - 1))]};
    }

    /**
     * One phase: hot requests for {@code seconds} (closed loop, or open loop at the hot rate); with {@code churn},
     * cold-tail requests at the cold rate beside them, or the {@code --churn-command} process instead. The hot
     * requests' latencies (microseconds) are added to {@code phaseLatency}.
     */
    private double[] runPhase(Bench bench, boolean churn, int seconds, Histogram phaseLatency) throws Exception {
      Histogram latency = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      // Open loop: how late each request left the sender against its due time (the sender's own stalls).
      Histogram sendLag = new Histogram(TimeUnit.SECONDS.toMicros(60), 3);
      System.err.printf(Locale.ROOT, "phase %s starts at JVM uptime %d ms%n", churn ? "churn" : "quiet",
          java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime());
      AtomicLong hotDone = new AtomicLong();
      AtomicLong coldOk = new AtomicLong();
      List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
      long loadsBefore = bench.loads.sum();
      long[] jvmBefore = jvmWork();
      long evictionsBefore = bench.evictions.sum();
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
      HiccupMeter hiccups = new HiccupMeter(end);
      Semaphore slots = new Semaphore(concurrency);
      SplittableRandom random = new SplittableRandom(seconds * 31L + (churn ? 1 : 0));
      long cpuBefore = CpuClock.selfCpuNanos();
      Thread coldSender = null;
      Process control = null;
      if (churn && churnCommand != null) {
        control = new ProcessBuilder("bash", "-c", "exec " + churnCommand).inheritIO().start();
      } else if (churn) {
        coldSender = new Thread(() -> {
          SplittableRandom r = new SplittableRandom(99);
          long next = System.nanoTime();
          while (System.nanoTime() < end) {
            next += (long) (1e9 / coldRate);
            long wait = next - System.nanoTime();
            if (wait > 0) {
              java.util.concurrent.locks.LockSupport.parkNanos(wait);
            }
            int m = hot + r.nextInt(cold);
            float x = r.nextInt(1000);
            bench.infer("m" + m, x).whenComplete((out, e) -> {
              if (e != null) {
                failures.add(e);
              } else if (out[0] == x + m) {
                coldOk.incrementAndGet();
              } else {
                failures.add(new AssertionError("m" + m + " answered wrong"));
              }
            });
          }
        }, "cold-sender");
        coldSender.start();
      }
      long t0 = System.nanoTime();
      long intervalNanos = hotRate > 0 ? (long) (1e9 / hotRate) : 0;
      long intended = t0;
      while (System.nanoTime() < end) {
        if (intervalNanos > 0) {
          intended += intervalNanos;
          long wait = intended - System.nanoTime();
          if (wait > 0) {
            java.util.concurrent.locks.LockSupport.parkNanos(wait);
          }
        }
        slots.acquire();
        int m = random.nextInt(hot);
        float x = random.nextInt(1000);
        // Open loop: latency counts from when the request was due, so a stall delaying sends is not hidden.
        long sent = intervalNanos > 0 ? intended : System.nanoTime();
        if (intervalNanos > 0) {
          record(sendLag, (System.nanoTime() - intended) / 1000);
        }
        bench.infer("m" + m, x).whenComplete((out, e) -> {
          long micros = (System.nanoTime() - sent) / 1000;
          synchronized (latency) {
            record(latency, micros);
          }
          if (e != null) {
            failures.add(e);
          } else if (out[0] != x + m) {
            failures.add(new AssertionError("m" + m + " answered wrong"));
          }
          hotDone.incrementAndGet();
          slots.release();
        });
      }
      slots.acquire(concurrency);
      long elapsed = System.nanoTime() - t0;
      if (coldSender != null) {
        coldSender.join();
      }
      long controlCpuNanos = 0;
      if (control != null) {
        // A control that ended early (a wrong command) would leave churn phases as quiet as the others.
        boolean ranThrough = control.isAlive();
        controlCpuNanos = CpuClock.processCpuNanos(control.pid());
        control.destroyForcibly();
        control.waitFor();
        if (!ranThrough) {
          throw new IllegalStateException("the control `" + churnCommand + "` ended before its phase, exit code "
              + control.exitValue());
        }
        if (controlCpuNanos < 0) {
          throw new IllegalStateException("the control process's CPU time could not be read");
        }
      }
      long cpuNanos = CpuClock.selfCpuNanos() - cpuBefore;
      hiccups.join();
      if (!failures.isEmpty()) {
        throw new AssertionError(failures.size() + " failed requests, first: " + failures.get(0), failures.get(0));
      }
      long[] jvmAfter = jvmWork();
      phaseLatency.add(latency);
      return new double[] {hotDone.get() / (elapsed / 1e9), latency.getValueAtPercentile(50), latency.getValueAtPercentile(99),
          latency.getValueAtPercentile(99.9), coldOk.get(), bench.loads.sum() - loadsBefore, bench.evictions.sum() - evictionsBefore,
          jvmAfter[0] - jvmBefore[0], jvmAfter[1] - jvmBefore[1], jvmAfter[2] - jvmBefore[2], sendLag.getValueAtPercentile(99),
          hiccups.histogram.getValueAtPercentile(99), hiccups.histogram.getMaxValue(), cpuNanos / 1e6 / (elapsed / 1e9),
          controlCpuNanos / 1e6 / (elapsed / 1e9)};
    }
  }
}
