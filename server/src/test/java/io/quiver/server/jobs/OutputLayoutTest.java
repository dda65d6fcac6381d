package io.quiver.server.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * How a job holds a record's outputs until its chunk commits: packed bytes under a shared layout, in
 * one block per chunk where the records' outputs share a layout.
 */
class OutputLayoutTest {

  @Test
  void packedOutputsComeBackAsTheSameTensors() {
    Tensor probabilities = floats("probabilities", new long[] {1, 4}, 0.1f, 0.2f, 0.3f, 0.4f);
    Tensor label = bytesTensor("label", "cat");
    Tensor[] outputs = {probabilities, null, label};

    Chunk.OutputLayout layout = Chunk.OutputLayout.of(null, "mlp", outputs);
    byte[] packed = layout.pack(outputs);
    Tensor[] back = layout.tensors(packed, 0);

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

    assertThat(layout.tensors(packed, 0)[0].shape()).containsExactly(1, 2);
  }

  @Test
  void recordsWithTheChunksLayoutShareItsBlockAndOneAnswer() {
    Chunk chunk = new Chunk(0, 3);
    Tensor[] first = {floats("p", new long[] {1, 2}, 1f, 2f)};
    Tensor[] second = {floats("p", new long[] {1, 2}, 3f, 4f)};
    Tensor[] third = {floats("p", new long[] {1, 2}, 5f, 6f)};
    Chunk.OutputLayout layout = Chunk.OutputLayout.of(null, "m", first);
    Chunk.OutputLayout equalButNotShared = Chunk.OutputLayout.of(null, "m", second);

    // Completed out of order, as runner threads do.
    assertThat(chunk.succeed(2, "c", "1", layout, third)).isFalse();
    assertThat(chunk.succeed(0, "a", "1", equalButNotShared, first)).isFalse();
    assertThat(chunk.succeed(1, "b", "1", layout, second)).as("the last slot completes the chunk").isTrue();

    assertThat(chunk.results).allSatisfy(r -> assertThat(r).isInstanceOf(Chunk.Packed.class));
    assertThat(chunk.results[0]).isSameAs(chunk.results[1]).isSameAs(chunk.results[2]);
    assertThat(chunk.ids).containsExactly("a", "b", "c");
    assertSame(answer(chunk, 0)[0], first[0]);
    assertSame(answer(chunk, 1)[0], second[0]);
    assertSame(answer(chunk, 2)[0], third[0]);
  }

  @Test
  void aRecordWithAnotherLayoutOrVersionKeepsItsOwnAnswer() {
    Chunk chunk = new Chunk(0, 3);
    Tensor[] pair = {floats("p", new long[] {1, 2}, 1f, 2f)};
    Tensor[] triple = {floats("p", new long[] {1, 3}, 7f, 8f, 9f)};
    Tensor[] other = {floats("p", new long[] {1, 2}, 3f, 4f)};

    chunk.succeed(0, "a", "1", Chunk.OutputLayout.of(null, "m", pair), pair);
    chunk.succeed(1, "b", "1", Chunk.OutputLayout.of(null, "m", triple), triple);
    chunk.succeed(2, "c", "2", Chunk.OutputLayout.of(null, "m", other), other);

    assertThat(chunk.results[0]).isInstanceOf(Chunk.Packed.class);
    assertThat(chunk.results[1]).as("another shape").isInstanceOf(Chunk.Success.class);
    assertThat(chunk.results[2]).as("another version, same block").isInstanceOf(Chunk.Packed.class);
    assertThat(((Chunk.Answer) chunk.results[2]).version()).isEqualTo("2");
    assertThat(((Chunk.Answer) chunk.results[0]).version()).isEqualTo("1");
    assertSame(answer(chunk, 0)[0], pair[0]);
    assertSame(answer(chunk, 1)[0], triple[0]);
    assertSame(answer(chunk, 2)[0], other[0]);
  }

  @Test
  void outputsTooLargeForOneBlockPerChunkAreHeldPerRecord() {
    int floats = Chunk.MAX_BLOCK_BYTES / 4 / 2 + 1; // two records' worth exceed the bound
    Chunk chunk = new Chunk(0, 2);
    Tensor big = floats("p", new long[] {1, floats}, new float[floats]);
    Tensor[] outputs = {big};

    chunk.succeed(0, "a", "1", Chunk.OutputLayout.of(null, "m", outputs), outputs);

    assertThat(chunk.results[0]).isInstanceOf(Chunk.Success.class);
    assertThat(answer(chunk, 0)[0].byteSize()).isEqualTo(big.byteSize());
  }

  private static Tensor[] answer(Chunk chunk, int slot) {
    return ((Chunk.Answer) chunk.results[slot]).outputs(chunk, slot);
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
