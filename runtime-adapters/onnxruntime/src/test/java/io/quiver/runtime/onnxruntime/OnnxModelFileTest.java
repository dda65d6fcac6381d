package io.quiver.runtime.onnxruntime;

import static io.quiver.runtime.onnxruntime.TestRepository.floatValues;
import static io.quiver.runtime.onnxruntime.TestRepository.floats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How model files reach ONNX Runtime: Quiver reads them into memory in small pieces and creates the session from the
 * bytes (OnnxRuntime#createSession). What a path gave for free must still hold: weights kept in external data files
 * beside the model are found.
 */
class OnnxModelFileTest {
  private static final String WEIGHTS_FILE = "weights.bin";

  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    repo = new TestRepository(root);
    ExampleModels.writeMlpClassifier(root);
    moveWeightsToExternalData("mlp_classifier", "mlp_external");
  }

  /** A copy of {@code from} whose initializers live in {@value #WEIGHTS_FILE} beside model.onnx (ONNX external data). */
  private static void moveWeightsToExternalData(String from, String to) throws IOException {
    Path version = root.resolve(to).resolve(ExampleModels.VERSION);
    Files.createDirectories(version);
    Files.writeString(root.resolve(to).resolve(ExampleModels.CONFIG_FILE),
        Files.readString(root.resolve(from).resolve(ExampleModels.CONFIG_FILE)).replace(from, to));
    Files.copy(root.resolve(from).resolve(ExampleModels.MLP_LABELS_FILE),
        root.resolve(to).resolve(ExampleModels.MLP_LABELS_FILE));
    ModelProto.Builder external = ModelProto.parseFrom(Files.readAllBytes(repo.modelFile(from))).toBuilder();
    long offset = 0;
    try (OutputStream weights = Files.newOutputStream(version.resolve(WEIGHTS_FILE))) {
      for (TensorProto.Builder tensor : external.getGraphBuilder().getInitializerBuilderList()) {
        byte[] raw = tensor.getRawData().toByteArray();
        weights.write(raw);
        tensor.clearRawData()
            .setDataLocation(TensorProto.DataLocation.EXTERNAL)
            .addExternalData(entry("location", WEIGHTS_FILE))
            .addExternalData(entry("offset", Long.toString(offset)))
            .addExternalData(entry("length", Integer.toString(raw.length)));
        offset += raw.length;
      }
    }
    Files.write(version.resolve(ExampleModels.MODEL_FILE), external.build().toByteArray());
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  @Test
  void externalData_weightsInAnotherFile_areFoundAndGiveTheSameAnswers() throws IOException {
    Path weights = repo.modelFile("mlp_external").resolveSibling(WEIGHTS_FILE);
    assertThat(Files.size(weights)).as("the weights really are outside model.onnx").isGreaterThan(2000);
    assertThat(Files.size(repo.modelFile("mlp_external"))).isLessThan(Files.size(repo.modelFile("mlp_classifier")) - Files.size(weights) / 2);

    float[] features = new float[5 * 16];
    SplittableRandom random = new SplittableRandom(7);
    for (int i = 0; i < features.length; i++) {
      features[i] = (float) random.nextDouble(-1, 1);
    }
    try (ModelRunner embedded = repo.runner("mlp_classifier"); ModelRunner external = repo.runner("mlp_external")) {
      Tensor expected = embedded.run(new Tensor[] {floats("features", new long[] {5, 16}, features)}, new int[] {0})[0];
      Tensor actual = external.run(new Tensor[] {floats("features", new long[] {5, 16}, features)}, new int[] {0})[0];

      assertThat(actual.shape()).containsExactly(5, 4);
      assertThat(floatValues(actual)).containsExactly(floatValues(expected));
    }
  }

  @Test
  void externalData_missingWeightsFile_isAClearInvalidArgument() throws IOException {
    moveWeightsToExternalData("mlp_classifier", "mlp_external_lost");
    Files.delete(repo.modelFile("mlp_external_lost").resolveSibling(WEIGHTS_FILE));

    assertThatThrownBy(() -> repo.runner("mlp_external_lost"))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
        .hasMessageContaining("'mlp_external_lost'")
        .hasMessageContaining("cannot load");
  }
}
