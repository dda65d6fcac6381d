package io.quiver.server.http;

/** IEEE half and bfloat16 conversions (JSON carries them as numbers). Round to nearest even. */
public final class Fp16 {
  private Fp16() {}

  static short floatToHalf(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int val = bits & 0x7fffffff;
    if (val >= 0x7f800000) { // infinity or NaN (keep NaN a NaN)
      return (short) (sign | 0x7c00 | (val > 0x7f800000 ? 0x200 | ((val >>> 13) & 0x3ff) : 0));
    }
    if (val >= 0x47800000) { // >= 65536: too large for half
      return (short) (sign | 0x7c00);
    }
    if (val < 0x38800000) { // below the smallest normal half (2^-14): subnormal or zero
      if (val < 0x33000000) {
        return (short) sign;
      }
      int exp = val >>> 23;
      int mant = (val & 0x7fffff) | 0x800000;
      int shift = 126 - exp;
      int m = mant >>> shift;
      int rem = mant & ((1 << shift) - 1);
      int half = 1 << (shift - 1);
      if (rem > half || (rem == half && (m & 1) != 0)) {
        m++;
      }
      return (short) (sign | m);
    }
    int h = (val - 0x38000000) >>> 13; // rebias the exponent from 127 to 15
    int rem = val & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) {
      h++; // a carry into the exponent is correct, up to infinity
    }
    return (short) (sign | h);
  }

  public static float halfToFloat(short h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0) {
      float v = mant * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    if (exp == 31) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7fffffff) > 0x7f800000) {
      return (short) ((bits >>> 16) | 0x40);
    }
    return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
  }

  public static float bf16ToFloat(short b) {
    return Float.intBitsToFloat((b & 0xffff) << 16);
  }
}
