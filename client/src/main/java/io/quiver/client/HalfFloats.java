package io.quiver.client;

/**
 * IEEE 754 half precision (FP16) and bfloat16 (BF16) conversions to and from {@code float}, rounding to
 * nearest, ties to even; NaN stays NaN (made quiet), infinities and signed zeros are kept. JDK 17 has no
 * {@code Float.floatToFloat16}, hence this class. Stateless.
 */
final class HalfFloats {
  private HalfFloats() {}

  static short floatToHalf(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int exponent = (bits >>> 23) & 0xff;
    int mantissa = bits & 0x7f_ffff;
    if (exponent == 0xff) { // infinity, or NaN with its top payload bits and the quiet bit set
      return (short) (sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
    }
    int halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f) {
      return (short) (sign | 0x7c00); // too large: infinity
    }
    if (halfExponent <= 0) {
      if (halfExponent < -10) {
        return (short) sign; // below half the smallest subnormal: zero
      }
      // Subnormal: the value is (1.mantissa) × 2^(exponent-127) = m × 2^-24, so m = full >> (14 - halfExponent).
      int full = mantissa | 0x80_0000;
      int shift = 14 - halfExponent;
      int half = full >>> shift;
      int rest = full & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (rest > halfway || (rest == halfway && (half & 1) != 0)) {
        half++; // may become the smallest normal (0x400): still the right bits
      }
      return (short) (sign | half);
    }
    int half = (halfExponent << 10) | (mantissa >>> 13);
    int rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) {
      half++; // a carry into the exponent is correct rounding, up to infinity (0x7c00)
    }
    return (short) (sign | half);
  }

  static float halfToFloat(short half) {
    int bits = half & 0xffff;
    int sign = (bits & 0x8000) << 16;
    int exponent = (bits >>> 10) & 0x1f;
    int mantissa = bits & 0x3ff;
    if (exponent == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f80_0000 | (mantissa << 13));
    }
    if (exponent == 0) {
      float magnitude = mantissa * 0x1p-24f; // subnormal (or zero): exact in float
      return sign != 0 ? -magnitude : magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
  }

  static short floatToBfloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7f80_0000) == 0x7f80_0000 && (bits & 0x7f_ffff) != 0) {
      return (short) ((bits >>> 16) | 0x40); // NaN: keep it NaN even if the payload was only in the low bits
    }
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }

  static float bfloat16ToFloat(short value) {
    return Float.intBitsToFloat((value & 0xffff) << 16);
  }
}
