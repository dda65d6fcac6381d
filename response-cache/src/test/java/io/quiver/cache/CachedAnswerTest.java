package io.quiver.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class CachedAnswerTest {
  static Tensor tensor(String name, DataType type, long[] shape, byte[] bytes) {
    return new Tensor(name, type, shape, ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.LITTLE_ENDIAN).put(bytes).flip());
  }

  @Test
  void copy_isIndependentOfTheOutputsItCameFrom_andRoundTripsThroughRedisForm() {
    byte[] a = new byte[16];
    Arrays.fill(a, (byte) 7);
    Tensor out0 = tensor("OUTPUT0", DataType.FP32, new long[] {1, 4}, a);
    Tensor out1 = tensor("names", DataType.BYTES, new long[] {1}, new byte[] {2, 0, 0, 0, 'h', 'i'});
    CachedAnswer answer = CachedAnswer.copyOf(new Tensor[] {out0, out1}, 1 << 20);
    out0.data().put(0, (byte) 99); // the runner reuses its buffer
    assertThat(answer.outputs()[0].data().get(0)).isEqualTo((byte) 7);
    assertThat(answer.dataBytes()).isEqualTo(22);

    CachedAnswer back = CachedAnswer.decode(answer.encode());
    assertThat(back.outputs()).hasSize(2);
    for (int i = 0; i < 2; i++) {
      assertThat(back.outputs()[i].name()).isEqualTo(answer.outputs()[i].name());
      assertThat(back.outputs()[i].dataType()).isEqualTo(answer.outputs()[i].dataType());
      assertThat(back.outputs()[i].shape()).isEqualTo(answer.outputs()[i].shape());
      assertThat(back.outputs()[i].data()).isEqualTo(answer.outputs()[i].data());
    }
  }

  @Test
  void tooLarge_isNotKept() {
    assertThat(CachedAnswer.copyOf(new Tensor[] {tensor("x", DataType.UINT8, new long[] {100}, new byte[100])}, 99)).isNull();
  }

  @Test
  void foreignOrDamagedValues_areRefused() {
    byte[] good = CachedAnswer.copyOf(new Tensor[] {tensor("x", DataType.FP32, new long[] {2}, new byte[8])}, 100).encode();
    assertThatThrownBy(() -> CachedAnswer.decode("hello".getBytes())).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CachedAnswer.decode(Arrays.copyOf(good, good.length - 1))).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CachedAnswer.decode(Arrays.copyOf(good, good.length + 1))).isInstanceOf(IllegalArgumentException.class);
    byte[] wrongShape = good.clone();
    wrongShape[5 + 1 + 4 + 2 + 1 + 1] = 3; // shape [3] for 8 bytes of FP32
    assertThatThrownBy(() -> CachedAnswer.decode(wrongShape)).isInstanceOf(IllegalArgumentException.class);
  }
}
