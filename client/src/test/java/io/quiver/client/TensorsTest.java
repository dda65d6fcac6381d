package io.quiver.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Tensor construction checks, the no-copy path, typed reads and their errors. */
class TensorsTest {
  @Test
  void shapeMustMatchTheElementCount() {
    assertThatThrownBy(() -> Tensors.fp32(new float[15], 1, 16)).isInstanceOf(IllegalArgumentException.class)
        .hasMessage("shape [1, 16] needs 16 FP32 elements but 15 were given");
    assertThatThrownBy(() -> Tensors.int32(new int[1], 1, -1)).hasMessageContaining("negative dimension");
    assertThat(Tensors.fp32(new float[5]).shape()).containsExactly(5);
    assertThat(Tensors.strings(new String[] {"a", "b"}, 2, 1).elementCount()).isEqualTo(2);
  }

  @Test
  void directByteBuffer_isSentWithoutACopy() {
    ByteBuffer direct = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    direct.putFloat(0, 1f).putFloat(4, 2f).putFloat(8, 3f).putFloat(12, 4f);
    Tensor tensor = Tensors.of(DataType.FP32, direct, 2, 2);
    direct.putFloat(12, 99f); // the tensor shares the caller's memory: the change shows
    assertThat(tensor.toFloatArray()).containsExactly(1f, 2f, 3f, 99f);
    assertThat(InferRequest.builder("m").input("x", tensor).build().toProto().getRawInputContents(0).size()).isEqualTo(16);
  }

  @Test
  void bigEndianBuffers_areRefused_forMultiByteTypes() {
    assertThatThrownBy(() -> Tensors.of(DataType.FP32, ByteBuffer.allocate(8), 2))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("BIG_ENDIAN");
    assertThat(Tensors.of(DataType.UINT8, ByteBuffer.allocate(3), 3).elementCount()).isEqualTo(3);
    assertThatThrownBy(() -> Tensors.of(DataType.INT32, ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN)))
        .hasMessageContaining("not a whole number");
  }

  @Test
  void framedBytes_areCounted_andMalformedFramingRefused() {
    ByteBuffer framed = ByteBuffer.allocate(11).order(ByteOrder.LITTLE_ENDIAN).putInt(3).put(new byte[] {'a', 'b', 'c'})
        .putInt(0).flip();
    assertThat(Tensors.of(DataType.BYTES, framed).toStringArray()).containsExactly("abc", "");
    ByteBuffer broken = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN).putInt(9).put(new byte[2]).flip();
    assertThatThrownBy(() -> Tensors.of(DataType.BYTES, broken)).hasMessageContaining("claims 9 bytes");
  }

  @Test
  void typedBufferInput_leavesTheCallersPositionAlone() {
    FloatBuffer values = FloatBuffer.wrap(new float[] {9f, 1f, 2f}).position(1);
    assertThat(Tensors.fp32(values).toFloatArray()).containsExactly(1f, 2f);
    assertThat(values.position()).isEqualTo(1);
  }

  @Test
  void readsCheckTheDatatype() {
    Tensor ints = Tensors.int64(new long[] {1, 2});
    assertThatThrownBy(ints::toIntArray).isInstanceOf(IllegalStateException.class)
        .hasMessage("the tensor is INT64; asIntBuffer()/toIntArray() reads INT32 or UINT32");
    assertThatThrownBy(ints::toStringArray).hasMessageContaining("reads BYTES");
    assertThat(Tensors.bytes(List.of(new byte[] {1, 2}, new byte[0])).toByteArrays()).hasSize(2);
    assertThat(Tensors.bool(new boolean[] {true, false}).toBooleanArray()).containsExactly(true, false);
  }

  @Test
  void builderRefusesDuplicatesAndReservedParameters() {
    InferRequest.Builder builder = InferRequest.builder("m").input("x", Tensors.fp32(new float[1]));
    assertThatThrownBy(() -> builder.input("x", Tensors.fp32(new float[1]))).hasMessageContaining("added twice");
    assertThatThrownBy(() -> builder.parameter("priority", 1L)).hasMessageContaining("reserved");
    assertThatThrownBy(() -> builder.priority(-1)).hasMessageContaining(">= 0");
    assertThatThrownBy(() -> InferRequest.builder("")).hasMessageContaining("model name");
  }
}
