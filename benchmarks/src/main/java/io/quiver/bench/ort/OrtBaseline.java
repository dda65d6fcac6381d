package io.quiver.bench.ort;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import ai.onnxruntime.TensorInfo;
import io.quiver.bench.perf.CpuClock;
import io.quiver.bench.perf.Rates;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Runs an ONNX model in this JVM, with no server, over a range of batch sizes, and reports
 * inferences per second and per CPU-second of this process: the compute ceiling Quiver's
 * per-CPU-second throughput is compared against (R_b).
 *
 * <p>The session is built as Quiver's OnnxRuntime runtime builds it for a config without
 * {@code parameters} (see OnnxSessionOptions): all graph optimizations, sequential execution,
 * intra-op threads ONNX Runtime's default unless set, thread spinning off. Each call does what
 * Quiver's runner does per batch: wrap a direct buffer as the input tensor (no copy), run, and copy
 * the output out once. FP32 inputs only (the benchmark models). Single-threaded caller.
 */
@Command(name = "ort-baseline", mixinStandardHelpOptions = true,
    description = "In-process ONNX Runtime throughput over batch sizes (the compute baseline).")
public final class OrtBaseline implements Callable<Integer> {
  @Option(names = "--model", required = true, paramLabel = "FILE|DIR",
      description = "model.onnx, or a Quiver model directory (uses <dir>/1/model.onnx).")
  Path model;

  @Option(names = "--batch-sizes", defaultValue = "1,2,4,8,16,32,64", split = ",")
  List<Integer> batchSizes;

  @Option(names = "--seconds", defaultValue = "3", description = "Measured time per batch size (default ${DEFAULT-VALUE}).")
  double seconds;

  @Option(names = "--warmup-ms", defaultValue = "1000")
  long warmupMs;

  @Option(names = "--repeats", defaultValue = "1", description = "Passes over the batch sizes; the best pass per size is kept.")
  int repeats;

  @Option(names = "--intra-op-threads", defaultValue = "0", description = "0 = ONNX Runtime's default (Quiver's default too).")
  int intraOpThreads;

  @Option(names = "--allow-spinning", description = "Let ONNX Runtime's pool threads spin (Quiver's default is off).")
  boolean allowSpinning;

  @Option(names = "--cuda", paramLabel = "DEVICE", defaultValue = "-1",
      description = "Run on this CUDA device (needs the onnxruntime_gpu artifact on the class path instead of onnxruntime).")
  int cudaDevice;

  @Option(names = "--json", paramLabel = "FILE")
  Path json;

  public static void main(String[] args) {
    System.exit(new CommandLine(new OrtBaseline()).execute(args));
  }

  /** One batch size's outcome. */
  public record Point(int batch, long inferences, long wallNanos, long cpuNanos) {
    public double inferencesPerSecond() {
      return Rates.perSecond(inferences, wallNanos);
    }

    public double inferencesPerCpuSecond() {
      return Rates.perCpuSecond(inferences, cpuNanos);
    }
  }

  /** The session options Quiver uses for a config with no ONNX Runtime parameters. */
  public static SessionOptions quiverSessionOptions(int intraOpThreads, boolean allowSpinning) throws OrtException {
    SessionOptions options = new SessionOptions();
    options.setOptimizationLevel(OptLevel.ALL_OPT);
    options.setExecutionMode(ExecutionMode.SEQUENTIAL);
    if (intraOpThreads > 0) {
      options.setIntraOpNumThreads(intraOpThreads);
    }
    String spin = allowSpinning ? "1" : "0";
    options.addConfigEntry("session.intra_op.allow_spinning", spin);
    options.addConfigEntry("session.inter_op.allow_spinning", spin);
    return options;
  }

  @Override
  public Integer call() throws Exception {
    Path file = Files.isDirectory(model) ? model.resolve("1").resolve("model.onnx") : model;
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    List<Point> best = new ArrayList<>(Collections.nCopies(batchSizes.size(), (Point) null));
    SessionOptions options = quiverSessionOptions(intraOpThreads, allowSpinning);
    if (cudaDevice >= 0) {
      try {
        options.addCUDA(cudaDevice);
      } catch (OrtException e) {
        System.err.println("ort-baseline: CUDA is not available (" + e.getMessage() + "); put the onnxruntime_gpu "
            + "jar on the class path instead of onnxruntime, on a machine with an NVIDIA GPU and CUDA/cuDNN");
        return 3;
      }
    }
    try (options; OrtSession session = env.createSession(file.toString(), options)) {
      String inputName = session.getInputNames().iterator().next();
      long[] rowShape = ((TensorInfo) ((NodeInfo) session.getInputInfo().get(inputName)).getInfo()).getShape();
      System.out.printf(Locale.ROOT, "ort-baseline: %s input %s %s, intra-op threads %s, spinning %s%n", file,
          inputName, java.util.Arrays.toString(rowShape), intraOpThreads == 0 ? "default" : intraOpThreads,
          allowSpinning ? "on" : "off");
      System.out.printf(Locale.ROOT, "%6s %12s %14s%n", "batch", "infer/s", "infer/cpu-s");
      for (int pass = 0; pass < repeats; pass++) {
        for (int i = 0; i < batchSizes.size(); i++) {
          Point p = measure(env, session, inputName, rowShape, batchSizes.get(i));
          System.out.printf(Locale.ROOT, "%6d %12.1f %14.1f%n", p.batch(), p.inferencesPerSecond(), p.inferencesPerCpuSecond());
          if (best.get(i) == null || p.inferencesPerCpuSecond() > best.get(i).inferencesPerCpuSecond()) {
            best.set(i, p);
          }
        }
      }
    }
    if (json != null) {
      writeJson(json, best);
    }
    return 0;
  }

  private Point measure(OrtEnvironment env, OrtSession session, String inputName, long[] rowShape, int batch)
      throws OrtException {
    long[] shape = rowShape.clone();
    shape[0] = batch;
    long elements = 1;
    for (long d : shape) {
      elements *= d;
    }
    ByteBuffer data = ByteBuffer.allocateDirect((int) (elements * 4)).order(ByteOrder.nativeOrder());
    SplittableRandom random = new SplittableRandom(batch);
    while (data.hasRemaining()) {
      data.putFloat((float) random.nextDouble());
    }
    data.flip();
    Set<String> outputs = session.getOutputNames();
    long warmupEnd = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(warmupMs);
    while (System.nanoTime() < warmupEnd) {
      runOnce(env, session, inputName, data, shape, outputs);
    }
    long budget = (long) (seconds * 1e9);
    long cpu0 = CpuClock.selfCpuNanos();
    long t0 = System.nanoTime();
    long calls = 0;
    long now;
    do {
      runOnce(env, session, inputName, data, shape, outputs);
      calls++;
      now = System.nanoTime();
    } while (now - t0 < budget);
    long cpu = CpuClock.selfCpuNanos() - cpu0;
    return new Point(batch, calls * batch, now - t0, cpu);
  }

  private static long sink;

  private static void runOnce(OrtEnvironment env, OrtSession session, String inputName, ByteBuffer data, long[] shape,
      Set<String> outputs) throws OrtException {
    try (OnnxTensor input = OnnxTensor.createTensor(env, data.duplicate().order(ByteOrder.nativeOrder()).asFloatBuffer(), shape);
        OrtSession.Result result = session.run(Map.of(inputName, input), outputs)) {
      for (Map.Entry<String, OnnxValue> output : result) {
        // The one output copy Quiver's runner makes too.
        sink += ((OnnxTensor) output.getValue()).getByteBuffer().remaining();
      }
    }
  }

  private void writeJson(Path file, List<Point> points) throws java.io.IOException {
    StringBuilder out = new StringBuilder("{\n  \"run\": {\"tool\": \"ort-baseline\", \"model\": \"")
        .append(model.toString().replace("\\", "/")).append("\", \"intra_op_threads\": ").append(intraOpThreads)
        .append(", \"allow_spinning\": ").append(allowSpinning).append(", \"java\": \"")
        .append(System.getProperty("java.version")).append("\"},\n  \"results\": [");
    for (int i = 0; i < points.size(); i++) {
      Point p = points.get(i);
      out.append(i == 0 ? "\n    " : ",\n    ").append(String.format(Locale.ROOT,
          "{\"batch_size\": %d, \"inferences\": %d, \"wall_s\": %.4f, \"cpu_s\": %.4f, \"inferences_per_s\": %.2f, "
              + "\"inferences_per_cpu_s\": %.2f}",
          p.batch(), p.inferences(), p.wallNanos() / 1e9, p.cpuNanos() / 1e9, p.inferencesPerSecond(),
          p.inferencesPerCpuSecond()));
    }
    out.append("\n  ]\n}\n");
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.writeString(file, out.toString());
  }
}
