package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelMetadataResponse.TensorMetadata;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InputDataTest {
  private static final ModelMetadataResponse METADATA = ModelMetadataResponse.newBuilder()
      .setName("m")
      .addInputs(TensorMetadata.newBuilder().setName("INPUT0").setDatatype("FP32").addShape(-1).addShape(16))
      .addInputs(TensorMetadata.newBuilder().setName("TEXT").setDatatype("BYTES").addShape(-1).addShape(2))
      .build();

  @Test
  void random_hasTheRightShapesAndByteSizes() {
    ModelInferRequest r = InputData.random(METADATA, "m", "", 4, Map.of(), 1, 5);
    assertThat(r.getInputs(0).getShapeList()).containsExactly(4L, 16L);
    assertThat(r.getRawInputContents(0).size()).isEqualTo(4 * 16 * 4);
    assertThat(r.getInputs(1).getShapeList()).containsExactly(4L, 2L);
    assertThat(r.getRawInputContents(1).size()).isEqualTo(8 * (4 + 5));
    assertThat(InputData.random(METADATA, "m", "", 4, Map.of(), 1, 5)).isEqualTo(r); // seeded
  }

  @Test
  void variableDimension_needsAShape() {
    TensorMetadata variable = TensorMetadata.newBuilder().setName("X").setDatatype("INT32").addShape(-1).addShape(-1).build();
    assertThatThrownBy(() -> InputData.requestShape(variable, 1, Map.of())).hasMessageContaining("--shape X");
    assertThat(InputData.requestShape(variable, 3, Map.of("X", new long[] {7}))).containsExactly(3, 7);
  }

  @Test
  void jsonFile_isEncodedLittleEndian(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("data.json");
    Files.writeString(file, "{\"data\": [{\"INPUT0\": {\"content\": [[1, 2], [3, 4]], \"shape\": [2, 2]},"
        + " \"TEXT\": {\"content\": [\"ab\", \"c\"], \"shape\": [1, 2]}}]}");
    List<ModelInferRequest> requests = InputData.fromJson(file, METADATA, "m", "1", 1, Map.of());
    assertThat(requests).hasSize(1);
    ByteBuffer floats = requests.get(0).getRawInputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    assertThat(floats.getFloat(0)).isEqualTo(1f);
    assertThat(floats.getFloat(12)).isEqualTo(4f);
    ByteBuffer text = requests.get(0).getRawInputContents(1).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    assertThat(text.getInt(0)).isEqualTo(2);
    assertThat(text.remaining()).isEqualTo(4 + 2 + 4 + 1);
  }

  @Test
  void jsonFile_countMismatch_namesTheInput(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("data.json");
    Files.writeString(file, "{\"data\": [{\"INPUT0\": [1, 2, 3], \"TEXT\": [\"a\", \"b\"]}]}");
    assertThatThrownBy(() -> InputData.fromJson(file, METADATA, "m", "", 1, Map.of()))
        .hasMessageContaining("INPUT0").hasMessageContaining("needs 16");
  }
}
