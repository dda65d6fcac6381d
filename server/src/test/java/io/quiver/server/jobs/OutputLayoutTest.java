package io.quiver.server.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** How a job holds a record's outputs until its chunk commits: packed bytes under a shared layout. */
class OutputLayoutTest {

  @Test
  void packedOutputsComeBackAsTheSameTensors() {
    Tensor probabilities = floats("probabilities", new long[] {1, 4}, 0.1f, 0.2f, 0.3f, 0.4f);
    Tensor label = bytesTensor("label", "cat");
    Tensor[] outputs = {probabilities, null, label};

    Chunk.OutputLayout layout = Chunk.OutputLayout.of(null, "mlp", outputs);
    byte[] packed = layout.pack(outputs);
    Tensor[] back = new Chunk.Success("1", "r-1", layout, packed).outputs();

    assertThat(packed).hasSize(probabilities.byteSize() + label.byteSize());
    assertThat(back).hasSize(3);
    assertThat(back[1]).isNull();
    assertSame(back[0], probabilities);
    assertSame(back[2], label);
  }

  @Test
  void aLayoutIsSharedOnlyWhileTheOutputsMatchIt() {
    Tensor[] first = {floats("p", new long[] {1, 2}, 1f, 2f)};
    Chunk.OutputLayout layout = Chunk.OutputLayout.of(null, "m", first);

    assertThat(Chunk.OutputLayout.of(layout, "m", new Tensor[] {floats("p", new long[] {1, 2}, 3f, 4f)}))
        .isSameAs(layout);
    assertThat(Chunk.OutputLayout.of(layout, "m", new Tensor[] {floats("p", new long[] {2, 1}, 3f, 4f)}))
        .as("another shape").isNotSameAs(layout);
    assertThat(Chunk.OutputLayout.of(layout, "m", new Tensor[] {floats("q", new long[] {1, 2}, 3f, 4f)}))
        .as("another name").isNotSameAs(layout);
    assertThat(Chunk.OutputLayout.of(layout, "other", first)).as("another model").isNotSameAs(layout);
    assertThat(Chunk.OutputLayout.of(layout, "m", new Tensor[] {null})).as("an output missing").isNotSameAs(layout);
    assertThat(Chunk.OutputLayout.of(layout, "m", new Tensor[] {bytesTensor("p", "ab")}))
        .as("another datatype").isNotSameAs(layout);
  }

  @Test
  void theLayoutKeepsItsOwnShapeWhenTheRunnerReusesItsArrays() {
    long[] shape = {1, 2};
    Tensor[] outputs = {floats("p", shape, 1f, 2f)};
    Chunk.OutputLayout layout = Chunk.OutputLayout.of(null, "m", outputs);
    byte[] packed = layout.pack(outputs);
    shape[1] = 7; // a runner's buffers are lent for the completion call only

    assertThat(layout.tensors(packed)[0].shape()).containsExactly(1, 2);
  }

  private static void assertSame(Tensor actual, Tensor expected) {
    assertThat(actual.name()).isEqualTo(expected.name());
    assertThat(actual.dataType()).isEqualTo(expected.dataType());
    assertThat(actual.shape()).containsExactly(expected.shape());
    assertThat(bytes(actual.data())).containsExactly(bytes(expected.data()));
  }

  private static byte[] bytes(ByteBuffer buffer) {
    byte[] out = new byte[buffer.remaining()];
    buffer.duplicate().get(out);
    return out;
  }

  private static Tensor floats(String name, long[] shape, float... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      data.putFloat(v);
    }
    return new Tensor(name, DataType.FP32, shape, data.flip());
  }

  /** One BYTES element, framed as the KServe binary extension frames it (4-byte little-endian length). */
  private static Tensor bytesTensor(String name, String value) {
    byte[] utf8 = value.getBytes(StandardCharsets.UTF_8);
    ByteBuffer data = ByteBuffer.allocate(4 + utf8.length).order(ByteOrder.LITTLE_ENDIAN);
    data.putInt(utf8.length).put(utf8);
    return new Tensor(name, DataType.BYTES, new long[] {1}, data.flip());
  }
}
