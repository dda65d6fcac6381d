package io.quiver.runtime.tensorflow;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.stream.Stream;
import org.tensorflow.proto.SavedModel;

/**
 * Writes the TensorFlow model of the example repository, {@code tf_add_sub}: Triton's
 * {@code simple} as a SavedModel ({@code <repo>/tf_add_sub/config.pbtxt} and
 * {@code <repo>/tf_add_sub/1/model.savedmodel/}). It lives in this module's test sources because it
 * needs TensorFlow Java, which the example generator module does not carry.
 *
 * <pre>
 * ./mvnw -q -pl runtime-adapters/tensorflow test-compile exec:java -Dexec.args="examples/models"
 * </pre>
 * Relative paths are resolved against the repository root (the {@code quiver.root} property the
 * pom passes), whatever directory Maven is started from.
 */
public final class TfExampleModels {
  static final String CONFIG = """
      # Triton's `simple`, as a TensorFlow SavedModel. Written by TfExampleModels (runtime-adapters/tensorflow);
      # inputs, outputs and their types would also be read from the signature if left out.
      name: "tf_add_sub"
      platform: "tensorflow_savedmodel"
      max_batch_size: 8
      input [
        { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
        { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
      ]
      output [
        { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
        { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
      ]
      dynamic_batching { max_queue_delay_microseconds: 100 }
      """;

  private TfExampleModels() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: TfExampleModels <model-repository-dir>");
      System.exit(2);
    }
    Path repo = Paths.get(args[0]);
    String root = System.getProperty("quiver.root");
    if (!repo.isAbsolute() && root != null) {
      repo = Paths.get(root).resolve(repo);
    }
    JavaCppCache.configure();
    Path written = writeTfAddSub(repo);
    System.out.println("wrote " + written);
  }

  /** Writes {@code <repo>/tf_add_sub}, replacing an older copy; returns the model directory. */
  static Path writeTfAddSub(Path repo) throws IOException {
    Path model = repo.resolve("tf_add_sub");
    Path savedModel = model.resolve("1").resolve(TensorFlowRuntime.MODEL_FILENAME);
    deleteRecursively(savedModel);
    Files.createDirectories(savedModel.getParent());
    TfTestModels.writeAddSub(savedModel);
    rewriteDeterministically(savedModel.resolve("saved_model.pb"));
    // The graph has no variables: the exporter leaves variables/ empty, and git keeps no empty directory.
    // Remove it so that a fresh checkout and a regenerated tree are the same (TensorFlow loads either).
    Path variables = savedModel.resolve("variables");
    try (Stream<Path> entries = Files.list(variables)) {
      if (entries.findAny().isEmpty()) {
        Files.delete(variables);
      }
    }
    Files.writeString(model.resolve("config.pbtxt"), CONFIG, StandardCharsets.UTF_8);
    return model;
  }

  /**
   * TensorFlow serializes the graph's attribute maps in hash order, which changes from process to
   * process; re-serializing with protobuf-java's deterministic mode (map entries sorted by key) makes
   * regeneration byte-identical. The content is unchanged.
   */
  static void rewriteDeterministically(Path savedModelPb) throws IOException {
    SavedModel parsed = SavedModel.parseFrom(Files.readAllBytes(savedModelPb));
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(parsed.getSerializedSize());
    CodedOutputStream out = CodedOutputStream.newInstance(bytes);
    out.useDeterministicSerialization();
    parsed.writeTo(out);
    out.flush();
    Files.write(savedModelPb, bytes.toByteArray());
  }

  private static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    }
  }
}
