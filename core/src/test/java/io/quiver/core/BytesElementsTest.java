package io.quiver.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class BytesElementsTest {

  private static ByteBuffer raw(int... ints) {
    ByteBuffer b = ByteBuffer.allocate(ints.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i : ints) {
      b.putInt(i);
    }
    return b.flip();
  }

  @Test
  void encode_thenDecode_roundTripsIncludingEmptyElements() {
    List<byte[]> elements = List.of("ab".getBytes(StandardCharsets.UTF_8), new byte[0], new byte[] {0, -1, 7});
    ByteBuffer data = BytesElements.encode(elements);

    assertThat(data.remaining()).isEqualTo(4 + 2 + 4 + 4 + 3);
    assertThat(data.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
    assertThat(data.getInt(0)).isEqualTo(2);
    assertThat(BytesElements.count(data)).isEqualTo(3);
    assertThat(BytesElements.decode(data)).containsExactly(elements.toArray(new byte[0][]));
    assertThat(data.position()).isZero(); // the caller's buffer does not move
  }

  @Test
  void encodeStrings_isUtf8() {
    ByteBuffer data = BytesElements.encodeStrings(List.of("é", ""));
    assertThat(BytesElements.decode(data)).containsExactly("é".getBytes(StandardCharsets.UTF_8), new byte[0]);
  }

  @Test
  void count_ofEmptyData_isZero() {
    assertThat(BytesElements.count(ByteBuffer.allocate(0))).isZero();
  }

  @Test
  void count_ofMalformedData_isMinusOne() {
    assertThat(BytesElements.count(ByteBuffer.allocate(3))).as("partial header").isEqualTo(-1);
    assertThat(BytesElements.count(raw(5))).as("length past the end").isEqualTo(-1);
    assertThat(BytesElements.count(raw(-1))).as("negative length").isEqualTo(-1);
    assertThat(BytesElements.count(raw(0, 4))).as("second element runs past the end").isEqualTo(-1);
    assertThat(BytesElements.count(raw(Integer.MAX_VALUE))).as("huge length").isEqualTo(-1);
  }

  @Test
  void count_readsFromThePositionOfTheBuffer() {
    ByteBuffer data = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
    data.putInt(99).putInt(0).putInt(0).position(4);
    assertThat(BytesElements.count(data)).isEqualTo(2);
    assertThat(data.position()).isEqualTo(4);
  }

  @Test
  void offsetOf_givesEachElementsStartAndTheEnd() {
    ByteBuffer data = BytesElements.encode(List.of(new byte[2], new byte[0], new byte[5]));
    assertThat(BytesElements.offsetOf(data, 0)).isZero();
    assertThat(BytesElements.offsetOf(data, 1)).isEqualTo(6);
    assertThat(BytesElements.offsetOf(data, 2)).isEqualTo(10);
    assertThat(BytesElements.offsetOf(data, 3)).isEqualTo(data.remaining());
  }
}
