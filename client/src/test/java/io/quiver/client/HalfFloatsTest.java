package io.quiver.client;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** FP16/BF16 conversions: every half bit pattern round-trips; rounding is to nearest, ties to even. */
class HalfFloatsTest {
  @Test
  void everyHalf_roundTripsThroughFloat() {
    for (int bits = 0; bits < 0x10000; bits++) {
      float f = HalfFloats.halfToFloat((short) bits);
      short back = HalfFloats.floatToHalf(f);
      if (Float.isNaN(f)) {
        assertThat(Float.isNaN(HalfFloats.halfToFloat(back))).as("NaN %04x", bits).isTrue();
      } else {
        assertThat(back & 0xffff).as("half %04x", bits).isEqualTo(bits);
      }
    }
  }

  @Test
  void everyBfloat16_roundTripsThroughFloat() {
    for (int bits = 0; bits < 0x10000; bits++) {
      float f = HalfFloats.bfloat16ToFloat((short) bits);
      short back = HalfFloats.floatToBfloat16(f);
      if (Float.isNaN(f)) {
        assertThat(Float.isNaN(HalfFloats.bfloat16ToFloat(back))).isTrue();
      } else {
        assertThat(back & 0xffff).as("bf16 %04x", bits).isEqualTo(bits);
      }
    }
  }

  @Test
  void halfRounding_nearestTiesToEven_overflowToInfinity_underflowToZero() {
    assertThat(HalfFloats.floatToHalf(1f + 0x1p-11f) & 0xffff).isEqualTo(0x3c00); // tie: stays even
    assertThat(HalfFloats.floatToHalf(1f + 3 * 0x1p-11f) & 0xffff).isEqualTo(0x3c02); // tie: rounds up to even
    assertThat(HalfFloats.floatToHalf(1f + 0x1p-11f + 0x1p-20f) & 0xffff).isEqualTo(0x3c01); // above the tie
    assertThat(HalfFloats.floatToHalf(65520f) & 0xffff).isEqualTo(0x7c00); // rounds past the max: infinity
    assertThat(HalfFloats.floatToHalf(0x1p-25f) & 0xffff).isEqualTo(0x0000); // half the smallest subnormal: tie to 0
    assertThat(HalfFloats.floatToHalf(0x1.8p-25f) & 0xffff).isEqualTo(0x0001);
    assertThat(HalfFloats.floatToHalf(-0f) & 0xffff).isEqualTo(0x8000);
    assertThat(HalfFloats.floatToBfloat16(1f + 0x1p-8f) & 0xffff).isEqualTo(0x3f80); // tie to even
    assertThat(HalfFloats.floatToBfloat16(Float.intBitsToFloat(0x7f800001)) & 0x7fff).isGreaterThan(0x7f80); // NaN stays NaN
  }
}
