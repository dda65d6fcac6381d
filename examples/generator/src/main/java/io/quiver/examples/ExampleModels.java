package io.quiver.examples;

import static io.quiver.examples.OnnxGraphBuilder.intAttribute;
import static io.quiver.examples.OnnxGraphBuilder.intsAttribute;

import ai.onnx.proto.OnnxMl.TensorProto;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Writes the example, test-fixture and benchmark models in Triton's repository layout:
 * {@code <repo>/<model>/config.pbtxt} and {@code <repo>/<model>/1/model.onnx}. Each method writes one
 * model (or one family) and returns its directory; every weight comes from a fixed seed, so two runs
 * write byte-identical files.
 *
 * <p>Stateless and thread-safe; each call does file I/O on the caller's thread.
 */
public final class ExampleModels {
  /** Seed of every generated weight tensor. */
  public static final long WEIGHT_SEED = 20240611L;
  /** Version directory every model is written to. */
  public static final String VERSION = "1";
  public static final String MODEL_FILE = "model.onnx";
  public static final String CONFIG_FILE = "config.pbtxt";

  /** Model written without config.pbtxt: its config is completed from the model file. */
  public static final String NO_CONFIG_MODEL = "identity_int64_noconfig";

  /** Protocol datatypes whose identity models ONNX Runtime Java can feed and read (see {@link #writeDatatypeIdentities}). */
  public static final List<String> SUPPORTED_DATATYPES = List.of(
      "BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "BF16", "FP32", "FP64", "BYTES");
  /**
   * Protocol datatypes that ONNX Runtime Java 1.23 cannot create input tensors of (its OnnxJavaType
   * has no unsigned 16/32/64-bit types); their identity models must fail to load with a clear error.
   */
  public static final List<String> UNSUPPORTED_INPUT_DATATYPES = List.of("UINT16", "UINT32", "UINT64");

  /** Element count per batch row of the datatype identity models. */
  public static final int DATATYPE_ROW = 4;

  private ExampleModels() {}

  // ---------------------------------------------------------------------------------------------
  // The example repository (examples/models)

  /** Writes every model of examples/models into {@code repo}; returns their names. */
  public static List<String> writeExampleRepository(Path repo) throws IOException {
    List<String> names = new ArrayList<>();
    names.add(name(writeIdentityFp32(repo)));
    names.add(name(writeSimple(repo)));
    names.add(name(writeIdentityBytes(repo)));
    names.add(name(writeMlpClassifier(repo)));
    names.add(name(writeIdentityInt64NoConfig(repo)));
    names.add(name(writeAccumulator(repo)));
    names.addAll(writeEnsembleExamples(repo));
    return names;
  }

  /**
   * The ensemble examples (docs/ensembles.md) and the models their steps call: {@code preprocess_scale}
   * and {@code linear_score} (with {@code mlp_classifier}, written by {@link #writeMlpClassifier}), the
   * pipeline {@code mlp_pipeline} and the fan-out {@code classify_and_score}. Returns the names written.
   */
  public static List<String> writeEnsembleExamples(Path repo) throws IOException {
    writeMlpClassifier(repo);
    return List.of(name(writePreprocessScale(repo)), name(writeLinearScore(repo)), name(writeMlpPipeline(repo)),
        name(writeClassifyAndScore(repo)));
  }

  /**
   * {@code preprocess_scale}: raw UINT8 [-1,16] (say, pixel values) → Cast to FP32 → (x / 255 − 0.5) × 4 →
   * features FP32 [-1,16], in [-2, 2]: the preprocessing step in front of {@code mlp_classifier}.
   */
  public static Path writePreprocessScale(Path repo) throws IOException {
    String name = "preprocess_scale";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("raw", TensorProto.DataType.UINT8, -1, 16)
        .output("features", TensorProto.DataType.FLOAT, -1, 16)
        .floatInitializer("inv255", new long[] {1}, new float[] {1f / 255f})
        .floatInitializer("half", new long[] {1}, new float[] {0.5f})
        .floatInitializer("four", new long[] {1}, new float[] {4f})
        .node("Cast", "raw", "rawf", intAttribute("to", TensorProto.DataType.FLOAT.getNumber()))
        .node("Mul", new String[] {"rawf", "inv255"}, new String[] {"unit"})
        .node("Sub", new String[] {"unit", "half"}, new String[] {"centered"})
        .node("Mul", new String[] {"centered", "four"}, new String[] {"features"});
    Config config = new Config(name, 64)
        .input("raw", "TYPE_UINT8", 16)
        .output("features", "TYPE_FP32", 16)
        .dynamicBatching(100);
    return write(repo, name, graph, config);
  }

  /** {@code linear_score}: features FP32 [-1,16] → Gemm 16×1 → score FP32 [-1,1]; a second head beside {@code mlp_classifier}. */
  public static Path writeLinearScore(Path repo) throws IOException {
    String name = "linear_score";
    SplittableRandom random = new SplittableRandom(WEIGHT_SEED + 3);
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("features", TensorProto.DataType.FLOAT, -1, 16)
        .output("score", TensorProto.DataType.FLOAT, -1, 1);
    dense(graph, random, "features", "score", "head", 16, 1, false);
    Config config = new Config(name, 64)
        .input("features", "TYPE_FP32", 16)
        .output("score", "TYPE_FP32", 1)
        .dynamicBatching(100);
    return write(repo, name, graph, config);
  }

  /** {@code mlp_pipeline}: an ensemble of two steps, raw → {@code preprocess_scale} → features → {@code mlp_classifier} → probabilities. */
  public static Path writeMlpPipeline(Path repo) throws IOException {
    return writeEnsemble(repo, "mlp_pipeline", 64,
        List.of(tensor("raw", "TYPE_UINT8", 16)),
        List.of(tensor("probabilities", "TYPE_FP32", 4)),
        List.of(step("preprocess_scale", "raw", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities")));
  }

  /**
   * {@code classify_and_score}: an ensemble that fans out: raw → {@code preprocess_scale} → features, then
   * {@code mlp_classifier} (probabilities) and {@code linear_score} (score) on the same features, at the same time.
   */
  public static Path writeClassifyAndScore(Path repo) throws IOException {
    return writeEnsemble(repo, "classify_and_score", 64,
        List.of(tensor("raw", "TYPE_UINT8", 16)),
        List.of(tensor("probabilities", "TYPE_FP32", 4), tensor("score", "TYPE_FP32", 1)),
        List.of(step("preprocess_scale", "raw", "raw", "features", "features"),
            step("mlp_classifier", "features", "features", "probabilities", "probabilities"),
            step("linear_score", "features", "features", "score", "score")));
  }

  /**
   * One step of an ensemble config, in protobuf text: the model (version -1, the routed one) and one
   * {@code model input ← ensemble tensor} and one {@code model output → ensemble tensor} mapping.
   */
  public static String step(String model, String modelInput, String fromTensor, String modelOutput, String toTensor) {
    return "    {\n      model_name: \"" + model + "\"\n      model_version: -1\n"
        + "      input_map { key: \"" + modelInput + "\" value: \"" + fromTensor + "\" }\n"
        + "      output_map { key: \"" + modelOutput + "\" value: \"" + toTensor + "\" }\n    }";
  }

  /** One input or output of a config, in protobuf text. */
  public static String tensor(String name, String type, long... dims) {
    return Config.tensor(name, type, dims);
  }

  /**
   * Writes an ensemble ({@code platform: "ensemble"}): config.pbtxt with its inputs, outputs and steps,
   * and an empty version directory {@code 1/} (holding only {@code .keep}, so that git keeps it).
   */
  public static Path writeEnsemble(Path repo, String name, int maxBatchSize, List<String> inputs, List<String> outputs,
      List<String> steps) throws IOException {
    Path dir = repo.resolve(name);
    Files.createDirectories(dir.resolve(VERSION));
    Files.write(dir.resolve(VERSION).resolve(".keep"), new byte[0]);
    String text = "name: \"" + name + "\"\n"
        + "platform: \"ensemble\"\n"
        + "max_batch_size: " + maxBatchSize + "\n"
        + "input [\n" + String.join(",\n", inputs) + "\n]\n"
        + "output [\n" + String.join(",\n", outputs) + "\n]\n"
        + "ensemble_scheduling {\n  step [\n" + String.join(",\n", steps) + "\n  ]\n}\n";
    Files.writeString(dir.resolve(CONFIG_FILE), text);
    return dir;
  }

  /**
   * {@code identity_fp32}: INPUT0 FP32 [-1,16] copied to OUTPUT0; max_batch_size 256, dynamic batching.
   * Tiny rows batch up to the load generator's highest concurrency (256): a smaller cap would make the
   * batch size, not the server, the limit on requests per second (docs/benchmarks/PROFILE.md).
   */
  public static Path writeIdentityFp32(Path repo) throws IOException {
    String name = "identity_fp32";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.FLOAT, -1, 16)
        .output("OUTPUT0", TensorProto.DataType.FLOAT, -1, 16)
        .node("Identity", "INPUT0", "OUTPUT0");
    Config config = new Config(name, 256)
        .input("INPUT0", "TYPE_FP32", 16)
        .output("OUTPUT0", "TYPE_FP32", 16)
        .dynamicBatching(100);
    return write(repo, name, graph, config);
  }

  /** {@code simple}, as Triton's: INPUT0, INPUT1 INT32 [-1,16]; OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1. */
  public static Path writeSimple(Path repo) throws IOException {
    String name = "simple";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.INT32, -1, 16)
        .input("INPUT1", TensorProto.DataType.INT32, -1, 16)
        .output("OUTPUT0", TensorProto.DataType.INT32, -1, 16)
        .output("OUTPUT1", TensorProto.DataType.INT32, -1, 16)
        .node("Add", new String[] {"INPUT0", "INPUT1"}, new String[] {"OUTPUT0"})
        .node("Sub", new String[] {"INPUT0", "INPUT1"}, new String[] {"OUTPUT1"});
    Config config = new Config(name, 8)
        .input("INPUT0", "TYPE_INT32", 16)
        .input("INPUT1", "TYPE_INT32", 16)
        .output("OUTPUT0", "TYPE_INT32", 16)
        .output("OUTPUT1", "TYPE_INT32", 16);
    return write(repo, name, graph, config);
  }

  /** {@code identity_bytes}: INPUT0 BYTES (ONNX string) [-1,-1] copied to OUTPUT0; max_batch_size 8, dims [-1]. */
  public static Path writeIdentityBytes(Path repo) throws IOException {
    String name = "identity_bytes";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.STRING, -1, -1)
        .output("OUTPUT0", TensorProto.DataType.STRING, -1, -1)
        .node("Identity", "INPUT0", "OUTPUT0");
    Config config = new Config(name, 8)
        .input("INPUT0", "TYPE_STRING", -1)
        .output("OUTPUT0", "TYPE_STRING", -1);
    return write(repo, name, graph, config);
  }

  /**
   * {@code mlp_classifier}: features FP32 [-1,16] → Gemm 16×32 → Relu → Gemm 32×4 → Softmax →
   * probabilities FP32 [-1,4]; max_batch_size 64 (small rows batch up to the benchmarks' concurrency),
   * dynamic batching; class names in labels.txt ({@code label_filename}, for the classification extension).
   */
  public static Path writeMlpClassifier(Path repo) throws IOException {
    String name = "mlp_classifier";
    SplittableRandom random = new SplittableRandom(WEIGHT_SEED);
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("features", TensorProto.DataType.FLOAT, -1, 16)
        .output("probabilities", TensorProto.DataType.FLOAT, -1, 4);
    dense(graph, random, "features", "hidden", "fc1", 16, 32, true);
    dense(graph, random, "hidden", "logits", "fc2", 32, 4, false);
    graph.node("Softmax", "logits", "probabilities", intAttribute("axis", -1));
    Config config = new Config(name, 64)
        .input("features", "TYPE_FP32", 16)
        .labelledOutput("probabilities", "TYPE_FP32", MLP_LABELS_FILE, 4)
        .dynamicBatching(100);
    Path dir = write(repo, name, graph, config);
    Files.writeString(dir.resolve(MLP_LABELS_FILE), String.join("\n", MLP_LABELS) + "\n");
    return dir;
  }

  /** The class names of {@code mlp_classifier}'s four outputs, one per line of its labels file. */
  public static final List<String> MLP_LABELS = List.of("cat", "dog", "bird", "fish");
  /** {@code mlp_classifier}'s label_filename (Triton's classification extension reads it). */
  public static final String MLP_LABELS_FILE = "labels.txt";

  /** {@code identity_int64_noconfig}: INPUT0 INT64 [-1,8] copied to OUTPUT0, with no config.pbtxt. */
  public static Path writeIdentityInt64NoConfig(Path repo) throws IOException {
    OnnxGraphBuilder graph = new OnnxGraphBuilder(NO_CONFIG_MODEL)
        .input("INPUT0", TensorProto.DataType.INT64, -1, 8)
        .output("OUTPUT0", TensorProto.DataType.INT64, -1, 8)
        .node("Identity", "INPUT0", "OUTPUT0");
    return write(repo, NO_CONFIG_MODEL, graph, null);
  }

  /**
   * {@code accumulator}: a stateful model for Triton's sequence batcher. Per sequence (a client's
   * {@code sequence_id}), OUTPUT is the running sum of INPUT: OUTPUT = STATE_IN × (1 − START) + INPUT × READY,
   * STATE_OUT = OUTPUT. START and READY are control inputs the server sets; STATE_IN/STATE_OUT is implicit
   * state the server carries between a sequence's requests. max_batch_size 8, direct strategy (a sequence
   * keeps its batch row), sequences idle for 5 s are released.
   */
  public static Path writeAccumulator(Path repo) throws IOException {
    String name = "accumulator";
    OnnxGraphBuilder graph = accumulatorGraph(name, false);
    String config = "name: \"" + name + "\"\n"
        + "platform: \"onnxruntime_onnx\"\n"
        + "max_batch_size: 8\n"
        + "input [ { name: \"INPUT\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
        + "output [ { name: \"OUTPUT\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
        + "sequence_batching {\n"
        + "  max_sequence_idle_microseconds: 5000000\n"
        + "  direct { }\n"
        + "  control_input [\n"
        + "    { name: \"START\" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },\n"
        + "    { name: \"READY\" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] }\n"
        + "  ]\n"
        + "  state [ {\n"
        + "    input_name: \"STATE_IN\" output_name: \"STATE_OUT\" data_type: TYPE_INT32 dims: [ 1 ]\n"
        + "    initial_state: { name: \"zero\" data_type: TYPE_INT32 dims: [ 1 ] zero_data: true }\n"
        + "  } ]\n"
        + "}\n";
    return writeWithConfigText(repo, name, graph, config);
  }

  /**
   * {@code sequence_echo} (test fixture): the accumulator, plus END and CORRID (INT64) control inputs and
   * an output CONTROLS INT64 [-1,4] = (START, END, READY, CORRID) of each row, so tests see what the
   * sequence batcher set. {@code configBody} is the config after name and platform (tests choose the
   * strategy); {@link #sequenceEchoConfig} gives Triton's usual one.
   */
  public static Path writeSequenceEcho(Path repo, String name, String configBody) throws IOException {
    OnnxGraphBuilder graph = accumulatorGraph(name, true);
    return writeWithConfigText(repo, name, graph,
        "name: \"" + name + "\"\nplatform: \"onnxruntime_onnx\"\n" + configBody);
  }

  /** A sequence_echo config body: max_batch_size, then {@code strategy} (e.g. "direct { }") inside sequence_batching. */
  public static String sequenceEchoConfig(int maxBatchSize, String strategy, long idleMicros) {
    return "max_batch_size: " + maxBatchSize + "\n"
        + "input [ { name: \"INPUT\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
        + "output [ { name: \"OUTPUT\" data_type: TYPE_INT32 dims: [ 1 ] },"
        + " { name: \"CONTROLS\" data_type: TYPE_INT64 dims: [ 4 ] } ]\n"
        + "sequence_batching {\n"
        + "  max_sequence_idle_microseconds: " + idleMicros + "\n"
        + "  " + strategy + "\n"
        + "  control_input [\n"
        + "    { name: \"START\" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },\n"
        + "    { name: \"END\" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] },\n"
        + "    { name: \"READY\" control [ { kind: CONTROL_SEQUENCE_READY int32_false_true: [ 0, 1 ] } ] },\n"
        + "    { name: \"CORRID\" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_INT64 } ] }\n"
        + "  ]\n"
        + "  state [ { input_name: \"STATE_IN\" output_name: \"STATE_OUT\" data_type: TYPE_INT32 dims: [ 1 ] } ]\n"
        + "}\n";
  }

  /** OUTPUT = STATE_IN × (1 − START) + INPUT × READY; STATE_OUT = OUTPUT; with echo, CONTROLS too. */
  private static OnnxGraphBuilder accumulatorGraph(String name, boolean echo) {
    TensorProto.DataType i32 = TensorProto.DataType.INT32;
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT", i32, -1, 1)
        .input("START", i32, -1, 1)
        .input("READY", i32, -1, 1)
        .input("STATE_IN", i32, -1, 1)
        .output("OUTPUT", i32, -1, 1)
        .output("STATE_OUT", i32, -1, 1)
        .int32Initializer("one", new long[] {1}, new int[] {1})
        .node("Sub", new String[] {"one", "START"}, new String[] {"keep"})
        .node("Mul", new String[] {"STATE_IN", "keep"}, new String[] {"kept"})
        .node("Mul", new String[] {"INPUT", "READY"}, new String[] {"added"})
        .node("Add", new String[] {"kept", "added"}, new String[] {"OUTPUT"})
        .node("Identity", "OUTPUT", "STATE_OUT");
    if (echo) {
      int int64 = TensorProto.DataType.INT64.getNumber();
      graph.input("END", i32, -1, 1)
          .input("CORRID", TensorProto.DataType.INT64, -1, 1)
          .output("CONTROLS", TensorProto.DataType.INT64, -1, 4)
          .node("Cast", "START", "start64", intAttribute("to", int64))
          .node("Cast", "END", "end64", intAttribute("to", int64))
          .node("Cast", "READY", "ready64", intAttribute("to", int64))
          .node("Concat", new String[] {"start64", "end64", "ready64", "CORRID"}, new String[] {"CONTROLS"},
              intAttribute("axis", 1));
    }
    return graph;
  }

  // ---------------------------------------------------------------------------------------------
  // Test fixtures

  /** Name of the identity model of one protocol datatype, e.g. {@code datatype_fp16} for "FP16". */
  public static String datatypeModelName(String wireName) {
    return "datatype_" + wireName.toLowerCase(Locale.ROOT);
  }

  /**
   * Writes one identity model per datatype of {@link #SUPPORTED_DATATYPES}: INPUT0 [-1,4] copied to
   * OUTPUT0, config max_batch_size 8 and dims [4]. Returns the model names.
   */
  public static List<String> writeDatatypeIdentities(Path repo) throws IOException {
    List<String> names = new ArrayList<>();
    for (String wireName : SUPPORTED_DATATYPES) {
      names.add(name(writeDatatypeIdentity(repo, wireName)));
    }
    return names;
  }

  /** Writes the identity models of {@link #UNSUPPORTED_INPUT_DATATYPES} (they must fail to load). */
  public static List<String> writeUnsupportedDatatypeIdentities(Path repo) throws IOException {
    List<String> names = new ArrayList<>();
    for (String wireName : UNSUPPORTED_INPUT_DATATYPES) {
      names.add(name(writeDatatypeIdentity(repo, wireName)));
    }
    return names;
  }

  /** Writes the identity model of one protocol datatype ("FP32", "BYTES"...). */
  public static Path writeDatatypeIdentity(Path repo, String wireName) throws IOException {
    String name = datatypeModelName(wireName);
    TensorProto.DataType onnxType = onnxType(wireName);
    String configType = wireName.equals("BYTES") ? "TYPE_STRING" : "TYPE_" + wireName;
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", onnxType, -1, DATATYPE_ROW)
        .output("OUTPUT0", onnxType, -1, DATATYPE_ROW)
        .node("Identity", "INPUT0", "OUTPUT0");
    Config config = new Config(name, 8)
        .input("INPUT0", configType, DATATYPE_ROW)
        .output("OUTPUT0", configType, DATATYPE_ROW);
    return write(repo, name, graph, config);
  }

  /**
   * {@code unsigned_outputs}: INPUT0 INT64 [-1,4] cast to OUTPUT_UINT16, OUTPUT_UINT32 and
   * OUTPUT_UINT64, to show that unsigned outputs can be read even though unsigned inputs cannot be fed.
   * No config.pbtxt.
   */
  public static Path writeUnsignedOutputs(Path repo) throws IOException {
    String name = "unsigned_outputs";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.INT64, -1, DATATYPE_ROW)
        .output("OUTPUT_UINT16", TensorProto.DataType.UINT16, -1, DATATYPE_ROW)
        .output("OUTPUT_UINT32", TensorProto.DataType.UINT32, -1, DATATYPE_ROW)
        .output("OUTPUT_UINT64", TensorProto.DataType.UINT64, -1, DATATYPE_ROW)
        .node("Cast", "INPUT0", "OUTPUT_UINT16", intAttribute("to", TensorProto.DataType.UINT16.getNumber()))
        .node("Cast", "INPUT0", "OUTPUT_UINT32", intAttribute("to", TensorProto.DataType.UINT32.getNumber()))
        .node("Cast", "INPUT0", "OUTPUT_UINT64", intAttribute("to", TensorProto.DataType.UINT64.getNumber()));
    return write(repo, name, graph, null);
  }

  /**
   * {@code fixed_shape}: INPUT0 FP32 [2,3] copied to OUTPUT0 [2,3]; no batch dimension, no config.
   * Auto-completion must leave max_batch_size 0 and dims [2,3].
   */
  public static Path writeFixedShape(Path repo) throws IOException {
    String name = "fixed_shape";
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.FLOAT, 2, 3)
        .output("OUTPUT0", TensorProto.DataType.FLOAT, 2, 3)
        .node("Identity", "INPUT0", "OUTPUT0");
    return write(repo, name, graph, null);
  }

  /**
   * An offset model for tests and benchmarks with many models: INPUT0 FP32 [-1,4] → OUTPUT0 = INPUT0 +
   * {@code offset} (so every answer says which model computed it); with {@code hiddenWidth} > 0 also
   * OUTPUT1 [-1,4] = Gemm 4×H → Relu → Gemm H×4, whose weights (36·H bytes) make the model as large as
   * a test needs. max_batch_size 8, dynamic batching.
   */
  public static Path writeOffsetModel(Path repo, String name, float offset, int hiddenWidth) throws IOException {
    SplittableRandom random = new SplittableRandom(WEIGHT_SEED + 3);
    float[] constant = new float[4];
    java.util.Arrays.fill(constant, offset);
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.FLOAT, -1, 4)
        .output("OUTPUT0", TensorProto.DataType.FLOAT, -1, 4)
        .floatInitializer("offset", new long[] {4}, constant)
        .node("Add", new String[] {"INPUT0", "offset"}, new String[] {"OUTPUT0"});
    Config config = new Config(name, 8)
        .input("INPUT0", "TYPE_FP32", 4)
        .output("OUTPUT0", "TYPE_FP32", 4)
        .dynamicBatching(100);
    if (hiddenWidth > 0) {
      graph.output("OUTPUT1", TensorProto.DataType.FLOAT, -1, 4);
      dense(graph, random, "INPUT0", "hidden", "fc1", 4, hiddenWidth, true);
      dense(graph, random, "hidden", "OUTPUT1", "fc2", hiddenWidth, 4, false);
      config.output("OUTPUT1", "TYPE_FP32", 4);
    }
    return write(repo, name, graph, config);
  }

  /**
   * Writes a model directory whose model.onnx is not an ONNX model (deterministic garbage bytes),
   * with a minimal config.pbtxt naming the onnxruntime platform. Loading it must fail cleanly.
   */
  public static Path writeCorruptModel(Path repo, String name) throws IOException {
    Path dir = repo.resolve(name);
    Files.createDirectories(dir.resolve(VERSION));
    byte[] garbage = new byte[256];
    new SplittableRandom(WEIGHT_SEED).nextBytes(garbage);
    byte[] prefix = "this is not an ONNX model\n".getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(prefix, 0, garbage, 0, prefix.length);
    Files.write(dir.resolve(VERSION).resolve(MODEL_FILE), garbage);
    Files.writeString(dir.resolve(CONFIG_FILE), "name: \"" + name + "\"\nplatform: \"onnxruntime_onnx\"\n");
    return dir;
  }

  // ---------------------------------------------------------------------------------------------
  // Benchmark models (written on demand, never committed)

  /** Writes the benchmark models; returns their names. */
  public static List<String> writeBenchmarkModels(Path repo) throws IOException {
    return List.of(name(writeMlp784(repo)), name(writeCnnSmall(repo)));
  }

  /**
   * {@code mlp_784}: INPUT0 FP32 [-1,784] → 1024 Relu → 1024 Relu → 10 → OUTPUT0 FP32 [-1,10]
   * (≈3.7 MFLOP per sample, ≈7.5 MB of weights); max_batch_size 64, dynamic batching.
   */
  public static Path writeMlp784(Path repo) throws IOException {
    String name = "mlp_784";
    SplittableRandom random = new SplittableRandom(WEIGHT_SEED + 1);
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.FLOAT, -1, 784)
        .output("OUTPUT0", TensorProto.DataType.FLOAT, -1, 10);
    dense(graph, random, "INPUT0", "h1", "fc1", 784, 1024, true);
    dense(graph, random, "h1", "h2", "fc2", 1024, 1024, true);
    dense(graph, random, "h2", "OUTPUT0", "fc3", 1024, 10, false);
    Config config = new Config(name, 64)
        .input("INPUT0", "TYPE_FP32", 784)
        .output("OUTPUT0", "TYPE_FP32", 10)
        .dynamicBatching(100);
    return write(repo, name, graph, config);
  }

  /**
   * {@code cnn_small}: INPUT0 FP32 [-1,3,64,64] → Conv 3→16 (3×3, pad 1) → Relu → MaxPool 2 →
   * Conv 16→32 (3×3, pad 1) → Relu → MaxPool 2 → Flatten → Gemm 8192→10 → OUTPUT0 FP32 [-1,10].
   * About 13 MFLOP per sample (3.5 + 9.4 in the convolutions); max_batch_size 64, dynamic batching.
   */
  public static Path writeCnnSmall(Path repo) throws IOException {
    return writeCnn(repo, "cnn_small", WEIGHT_SEED + 2, 64, new ConvLayer(16, true), new ConvLayer(32, true));
  }

  /**
   * {@code cnn_16px}: INPUT0 FP32 [-1,3,16,16] (3 KiB a row) → Conv 3→96 → Relu → Conv 96→96 → Relu →
   * Conv 96→96 → Relu → MaxPool 2 → Conv 96→128 → Relu → MaxPool 2 → Flatten → Gemm 2048→10 → OUTPUT0
   * FP32 [-1,10] (convolutions 3×3, pad 1). About 100 MFLOP per sample for a request of 3 KiB: a model
   * slow per byte sent, so that one client core can offer three times what one server core computes (the
   * overload benchmark); max_batch_size 64, dynamic batching.
   */
  public static Path writeCnn16px(Path repo) throws IOException {
    return writeCnn(repo, "cnn_16px", WEIGHT_SEED + 3, 16, new ConvLayer(96, false), new ConvLayer(96, false),
        new ConvLayer(96, true), new ConvLayer(128, true));
  }

  /** One layer of {@link #writeCnn}: a 3×3 convolution to {@code channels}, Relu, and a 2×2 max-pool if {@code pool}. */
  private record ConvLayer(int channels, boolean pool) {}

  /**
   * A CNN classifier: INPUT0 FP32 [-1,3,side,side] → the layers → Flatten → Gemm → OUTPUT0 FP32 [-1,10];
   * max_batch_size 64, dynamic batching. Layer i's output is {@code pool<i>} or {@code act<i>} (from 1),
   * and the Gemm's width follows from the last layer's channels and the pools.
   */
  private static Path writeCnn(Path repo, String name, long seed, int side, ConvLayer... layers) throws IOException {
    SplittableRandom random = new SplittableRandom(seed);
    OnnxGraphBuilder graph = new OnnxGraphBuilder(name)
        .input("INPUT0", TensorProto.DataType.FLOAT, -1, 3, side, side)
        .output("OUTPUT0", TensorProto.DataType.FLOAT, -1, 10);
    String input = "INPUT0";
    int channels = 3;
    int size = side;
    for (int i = 0; i < layers.length; i++) {
      ConvLayer layer = layers[i];
      String output = (layer.pool() ? "pool" : "act") + (i + 1);
      conv(graph, random, input, output, "conv" + (i + 1), channels, layer.channels(), layer.pool());
      input = output;
      channels = layer.channels();
      size = layer.pool() ? size / 2 : size;
    }
    graph.node("Flatten", input, "flat", intAttribute("axis", 1));
    dense(graph, random, "flat", "OUTPUT0", "fc", channels * size * size, 10, false);
    Config config = new Config(name, 64)
        .input("INPUT0", "TYPE_FP32", 3, side, side)
        .output("OUTPUT0", "TYPE_FP32", 10)
        .dynamicBatching(100);
    return write(repo, name, graph, config);
  }

  // ---------------------------------------------------------------------------------------------

  /** Gemm (+ Relu) with Glorot-uniform weights [in,out] and small biases. */
  private static void dense(OnnxGraphBuilder graph, SplittableRandom random, String input, String output,
      String prefix, int in, int out, boolean relu) {
    graph.floatInitializer(prefix + ".weight", new long[] {in, out}, uniform(random, in * out, Math.sqrt(6.0 / (in + out))));
    graph.floatInitializer(prefix + ".bias", new long[] {out}, uniform(random, out, 0.1));
    String gemmOut = relu ? prefix + ".linear" : output;
    graph.node("Gemm", new String[] {input, prefix + ".weight", prefix + ".bias"}, new String[] {gemmOut});
    if (relu) {
      graph.node("Relu", gemmOut, output);
    }
  }

  /** Conv 3×3 pad 1 → Relu (→ MaxPool 2×2 stride 2 when {@code pool}). */
  private static void conv(OnnxGraphBuilder graph, SplittableRandom random, String input, String output,
      String prefix, int inChannels, int outChannels, boolean pool) {
    int fanIn = inChannels * 9;
    graph.floatInitializer(prefix + ".weight", new long[] {outChannels, inChannels, 3, 3},
        uniform(random, outChannels * fanIn, Math.sqrt(6.0 / (fanIn + outChannels * 9))));
    graph.floatInitializer(prefix + ".bias", new long[] {outChannels}, uniform(random, outChannels, 0.1));
    graph.node("Conv", new String[] {input, prefix + ".weight", prefix + ".bias"}, new String[] {prefix + ".out"},
        intsAttribute("kernel_shape", 3, 3), intsAttribute("pads", 1, 1, 1, 1), intsAttribute("strides", 1, 1));
    if (!pool) {
      graph.node("Relu", prefix + ".out", output);
      return;
    }
    graph.node("Relu", prefix + ".out", prefix + ".relu");
    graph.node("MaxPool", prefix + ".relu", output, intsAttribute("kernel_shape", 2, 2), intsAttribute("strides", 2, 2));
  }

  private static float[] uniform(SplittableRandom random, int count, double limit) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) ((random.nextDouble() * 2 - 1) * limit);
    }
    return values;
  }

  private static TensorProto.DataType onnxType(String wireName) {
    switch (wireName) {
      case "BOOL": return TensorProto.DataType.BOOL;
      case "UINT8": return TensorProto.DataType.UINT8;
      case "UINT16": return TensorProto.DataType.UINT16;
      case "UINT32": return TensorProto.DataType.UINT32;
      case "UINT64": return TensorProto.DataType.UINT64;
      case "INT8": return TensorProto.DataType.INT8;
      case "INT16": return TensorProto.DataType.INT16;
      case "INT32": return TensorProto.DataType.INT32;
      case "INT64": return TensorProto.DataType.INT64;
      case "FP16": return TensorProto.DataType.FLOAT16;
      case "BF16": return TensorProto.DataType.BFLOAT16;
      case "FP32": return TensorProto.DataType.FLOAT;
      case "FP64": return TensorProto.DataType.DOUBLE;
      case "BYTES": return TensorProto.DataType.STRING;
      default: throw new IllegalArgumentException("not a protocol datatype: " + wireName);
    }
  }

  private static Path write(Path repo, String name, OnnxGraphBuilder graph, Config config) throws IOException {
    Path dir = repo.resolve(name);
    graph.write(dir.resolve(VERSION).resolve(MODEL_FILE));
    Path configFile = dir.resolve(CONFIG_FILE);
    if (config != null) {
      Files.writeString(configFile, config.toText());
    } else {
      Files.deleteIfExists(configFile);
    }
    return dir;
  }

  private static Path writeWithConfigText(Path repo, String name, OnnxGraphBuilder graph, String config)
      throws IOException {
    Path dir = repo.resolve(name);
    graph.write(dir.resolve(VERSION).resolve(MODEL_FILE));
    Files.writeString(dir.resolve(CONFIG_FILE), config);
    return dir;
  }

  private static String name(Path modelDir) {
    return modelDir.getFileName().toString();
  }

  /** A config.pbtxt in protobuf text format (written by hand: the generator depends on no Quiver module). */
  private static final class Config {
    private final String name;
    private final int maxBatchSize;
    private final List<String> inputs = new ArrayList<>();
    private final List<String> outputs = new ArrayList<>();
    private long maxQueueDelayMicros = -1;

    Config(String name, int maxBatchSize) {
      this.name = name;
      this.maxBatchSize = maxBatchSize;
    }

    Config input(String tensor, String type, long... dims) {
      inputs.add(tensor(tensor, type, dims));
      return this;
    }

    Config output(String tensor, String type, long... dims) {
      outputs.add(tensor(tensor, type, dims));
      return this;
    }

    Config labelledOutput(String tensor, String type, String labelFile, long... dims) {
      String text = tensor(tensor, type, dims);
      outputs.add(text.substring(0, text.length() - 4) + "\n    label_filename: \"" + labelFile + "\"\n  }");
      return this;
    }

    Config dynamicBatching(long maxQueueDelayMicroseconds) {
      this.maxQueueDelayMicros = maxQueueDelayMicroseconds;
      return this;
    }

    String toText() {
      StringBuilder text = new StringBuilder()
          .append("name: \"").append(name).append("\"\n")
          .append("platform: \"onnxruntime_onnx\"\n")
          .append("max_batch_size: ").append(maxBatchSize).append('\n');
      text.append("input [\n").append(String.join(",\n", inputs)).append("\n]\n");
      text.append("output [\n").append(String.join(",\n", outputs)).append("\n]\n");
      if (maxQueueDelayMicros >= 0) {
        text.append("dynamic_batching {\n  max_queue_delay_microseconds: ").append(maxQueueDelayMicros).append("\n}\n");
      }
      return text.toString();
    }

    static String tensor(String tensor, String type, long[] dims) {
      List<String> dimText = new ArrayList<>(dims.length);
      for (long dim : dims) {
        dimText.add(Long.toString(dim));
      }
      return "  {\n    name: \"" + tensor + "\"\n    data_type: " + type + "\n    dims: [ "
          + String.join(", ", dimText) + " ]\n  }";
    }
  }
}
