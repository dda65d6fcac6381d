package io.quiver.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class TensorTest {

  @Test
  void elementCount_isTheProductOfTheDims() {
    assertThat(Tensor.elementCount(new long[0])).isEqualTo(1);
    assertThat(Tensor.elementCount(new long[] {2, 3, 4})).isEqualTo(24);
    assertThat(Tensor.elementCount(new long[] {2, 0, 4})).isZero();
  }

  @Test
  void elementCount_withANegativeDim_isMinusOne() {
    assertThat(Tensor.elementCount(new long[] {2, -1})).isEqualTo(-1);
    assertThat(Tensor.elementCount(new long[] {0, -1})).isEqualTo(-1);
  }

  @Test
  void elementCount_onOverflow_saturates() {
    assertThat(Tensor.elementCount(new long[] {1L << 32, 1L << 32})).isEqualTo(Long.MAX_VALUE);
    assertThat(Tensor.elementCount(new long[] {Long.MAX_VALUE, 2})).isEqualTo(Long.MAX_VALUE);
    assertThat(Tensor.elementCount(new long[] {Long.MAX_VALUE, 1})).isEqualTo(Long.MAX_VALUE);
    assertThat(Tensor.elementCount(new long[] {1L << 62, 1})).isEqualTo(1L << 62);
  }

  @Test
  void data_isAnIndependentLittleEndianViewOfTheReadableBytes() {
    ByteBuffer backing = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN);
    backing.putInt(0).putInt(1).putInt(2).flip().position(4);
    Tensor tensor = new Tensor("t", DataType.INT32, new long[] {2}, backing);

    ByteBuffer view = tensor.data();
    assertThat(view.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
    assertThat(view.position()).isZero();
    assertThat(view.remaining()).isEqualTo(8);
    view.position(8);
    assertThat(tensor.byteSize()).isEqualTo(8);
    assertThat(tensor.elementCount()).isEqualTo(2);
  }

  @Test
  void copyTo_copiesAtAnIndexWithoutMovingEitherBuffer() {
    ByteBuffer src = ByteBuffer.wrap(new byte[] {9, 1, 2, 3});
    src.position(1);
    Tensor tensor = new Tensor("t", DataType.UINT8, new long[] {3}, src);
    ByteBuffer dst = ByteBuffer.allocate(5);

    assertThat(tensor.copyTo(dst, 2)).isEqualTo(3);
    assertThat(dst.array()).containsExactly(0, 0, 1, 2, 3);
    assertThat(dst.position()).isZero();
    assertThat(src.position()).isEqualTo(1);
  }

  @Test
  void withName_sharesTheData() {
    Tensor tensor = new Tensor("a", DataType.UINT8, new long[] {1}, ByteBuffer.allocate(1));
    Tensor renamed = tensor.withName("b");
    assertThat(renamed.name()).isEqualTo("b");
    assertThat(renamed.shape()).isSameAs(tensor.shape());
    assertThat(renamed).hasToString("b:UINT8[1](1 bytes)");
  }
}
