package io.quiver.examples;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnx.proto.OnnxMl.ModelProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Structure and determinism of the generated files (ONNX Runtime itself runs them in the runtime adapter's tests). */
class ExampleModelsTest {
  @TempDir Path first;
  @TempDir Path second;

  @Test
  void exampleRepository_isByteIdenticalAcrossRuns_andSmall() throws IOException {
    ExampleModels.writeExampleRepository(first);
    ExampleModels.writeExampleRepository(second);

    long total = 0;
    try (Stream<Path> files = Files.walk(first)) {
      for (Path file : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
        assertThat(Files.readAllBytes(second.resolve(first.relativize(file)))).as(file.toString())
            .isEqualTo(Files.readAllBytes(file));
        total += Files.size(file);
      }
    }
    assertThat(total).isLessThan(100_000);
    assertThat(first.resolve(ExampleModels.NO_CONFIG_MODEL).resolve(ExampleModels.CONFIG_FILE)).doesNotExist();
  }

  @Test
  void models_useIrVersion8Opset17AndASymbolicBatchDim() throws IOException {
    Path dir = ExampleModels.writeMlpClassifier(first);
    ModelProto model = ModelProto.parseFrom(Files.readAllBytes(dir.resolve("1/model.onnx")));

    assertThat(model.getIrVersion()).isEqualTo(8);
    assertThat(model.getOpsetImport(0).getVersion()).isEqualTo(17);
    assertThat(model.getGraph().getInput(0).getType().getTensorType().getShape().getDim(0).getDimParam()).isEqualTo("batch");
    assertThat(model.getGraph().getOutput(0).getName()).isEqualTo("probabilities");
    assertThat(model.getGraph().getInitializerList()).allSatisfy(t -> assertThat(t.getRawData().isEmpty()).isFalse());
  }

  @Test
  void corruptModel_isNotAParsableModel() throws IOException {
    Path dir = ExampleModels.writeCorruptModel(first, "broken");
    assertThat(dir.resolve("config.pbtxt")).content().contains("onnxruntime_onnx");
    assertThat(Files.size(dir.resolve("1/model.onnx"))).isPositive();
  }
}
