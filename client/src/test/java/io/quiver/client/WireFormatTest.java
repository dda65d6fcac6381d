package io.quiver.client;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.WireFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The wire check: requests the client builds, serialized, then read back field by field with a bare
 * protobuf reader that knows only Triton's field numbers and wire types for {@code inference.ModelInferRequest}
 * (model_name 1, model_version 2, id 3, parameters 4 (map: key 1, value 2 = InferParameter: bool 1, int64 2,
 * string 3, double 4, uint64 5), inputs 5 (name 1, datatype 2, shape 3 packed int64, parameters 4, contents 5),
 * outputs 6 (name 1, parameters 2), raw_input_contents 7), not our generated classes. Expected tensor bytes
 * are computed here independently (bit shifts, not ByteBuffers).
 */
class WireFormatTest {
  /** One decoded ModelInferRequest: every field seen, by number. */
  record Decoded(Map<Integer, List<Object>> fields) {
    List<Object> get(int field) {
      return fields.getOrDefault(field, List.of());
    }
  }

  static Decoded decode(byte[] bytes, Map<Integer, Integer> expectedWireTypes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    Map<Integer, List<Object>> fields = new LinkedHashMap<>();
    while (!in.isAtEnd()) {
      int tag = in.readTag();
      int field = WireFormat.getTagFieldNumber(tag);
      int wireType = WireFormat.getTagWireType(tag);
      assertThat(expectedWireTypes).as("field %d is one Triton's proto defines here", field).containsKey(field);
      assertThat(wireType).as("wire type of field %d", field).isEqualTo(expectedWireTypes.get(field));
      Object value = switch (wireType) {
        case WireFormat.WIRETYPE_VARINT -> in.readRawVarint64();
        case WireFormat.WIRETYPE_FIXED64 -> in.readRawLittleEndian64();
        case WireFormat.WIRETYPE_LENGTH_DELIMITED -> in.readByteArray();
        default -> throw new AssertionError("unexpected wire type " + wireType);
      };
      fields.computeIfAbsent(field, k -> new ArrayList<>()).add(value);
    }
    return new Decoded(fields);
  }

  static final Map<Integer, Integer> REQUEST = Map.of(1, 2, 2, 2, 3, 2, 4, 2, 5, 2, 6, 2, 7, 2);
  static final Map<Integer, Integer> INPUT = Map.of(1, 2, 2, 2, 3, 2, 4, 2, 5, 2);
  static final Map<Integer, Integer> OUTPUT = Map.of(1, 2, 2, 2);
  static final Map<Integer, Integer> MAP_ENTRY = Map.of(1, 2, 2, 2);
  static final Map<Integer, Integer> PARAMETER = Map.of(1, 0, 2, 0, 3, 2, 4, 1, 5, 0);

  static String text(Object bytes) {
    return new String((byte[]) bytes, StandardCharsets.UTF_8);
  }

  static byte[] le(long bits, int size) {
    byte[] out = new byte[size];
    for (int i = 0; i < size; i++) {
      out[i] = (byte) (bits >>> (8 * i));
    }
    return out;
  }

  static List<Long> packedVarints(byte[] bytes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    List<Long> values = new ArrayList<>();
    while (!in.isAtEnd()) {
      values.add(in.readRawVarint64());
    }
    return values;
  }

  /** A tensor of 6 elements [2,3] of the datatype, and the bytes Triton expects for it. */
  static Object[] sample(DataType type) {
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    Tensor tensor;
    switch (type) {
      case BOOL -> {
        boolean[] v = {true, false, true, true, false, false};
        for (boolean b : v) expected.write(b ? 1 : 0);
        tensor = Tensors.bool(v, 2, 3);
      }
      case UINT8, INT8 -> {
        byte[] v = {0, 1, -1, 127, -128, 42};
        expected.writeBytes(v);
        tensor = type == DataType.UINT8 ? Tensors.uint8(v, 2, 3) : Tensors.int8(v, 2, 3);
      }
      case UINT16, INT16 -> {
        short[] v = {0, 1, -1, Short.MAX_VALUE, Short.MIN_VALUE, 4242};
        for (short s : v) expected.writeBytes(le(s, 2));
        tensor = type == DataType.UINT16 ? Tensors.uint16(v, 2, 3) : Tensors.int16(v, 2, 3);
      }
      case UINT32, INT32 -> {
        int[] v = {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 424242};
        for (int s : v) expected.writeBytes(le(s, 4));
        tensor = type == DataType.UINT32 ? Tensors.uint32(v, 2, 3) : Tensors.int32(v, 2, 3);
      }
      case UINT64, INT64 -> {
        long[] v = {0, 1, -1, Long.MAX_VALUE, Long.MIN_VALUE, 42424242424242L};
        for (long s : v) expected.writeBytes(le(s, 8));
        tensor = type == DataType.UINT64 ? Tensors.uint64(v, 2, 3) : Tensors.int64(v, 2, 3);
      }
      case FP16 -> {
        // 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), +inf: IEEE half bit patterns
        int[] bits = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00};
        for (int b : bits) expected.writeBytes(le(b, 2));
        tensor = Tensors.fp16(new float[] {1f, -2f, 0.5f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY}, 2, 3);
      }
      case BF16 -> {
        float[] v = {1f, -2f, 0.5f, 3.0e38f, 1.0e-38f, Float.NEGATIVE_INFINITY};
        tensor = Tensors.bf16(v, 2, 3);
        for (float f : v) { // round to nearest even on the top 16 bits
          int bits = Float.floatToIntBits(f);
          int rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
          expected.writeBytes(le(rounded, 2));
        }
      }
      case FP32 -> {
        float[] v = {0f, -0f, 1.5f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NaN};
        for (float f : v) expected.writeBytes(le(Float.floatToRawIntBits(f), 4));
        tensor = Tensors.fp32(v, 2, 3);
      }
      case FP64 -> {
        double[] v = {0d, -0d, 1.5d, Double.MIN_VALUE, Double.MAX_VALUE, Math.PI};
        for (double d : v) expected.writeBytes(le(Double.doubleToRawLongBits(d), 8));
        tensor = Tensors.fp64(v, 2, 3);
      }
      case BYTES -> {
        String[] v = {"", "a", "é", "中文", "\u0000x", "😀"};
        for (String s : v) {
          byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
          expected.writeBytes(le(utf8.length, 4));
          expected.writeBytes(utf8);
        }
        tensor = Tensors.strings(v, 2, 3);
      }
      default -> throw new AssertionError(type);
    }
    return new Object[] {tensor, expected.toByteArray()};
  }

  @ParameterizedTest
  @EnumSource(DataType.class)
  void requestOfEachDatatype_isFieldByFieldWhatTritonsProtoExpects(DataType type) throws IOException {
    Object[] sample = sample(type);
    Tensor tensor = (Tensor) sample[0];
    byte[] expectedBytes = (byte[]) sample[1];
    InferRequest request = InferRequest.builder("m_" + type)
        .input("IN", tensor)
        .input("SECOND", Tensors.int32(new int[] {7}, 1))
        .output("OUT")
        .classification("CLASSES", 3)
        .version(4)
        .id("req-" + type)
        .priority(2)
        .timeout(Duration.ofMillis(5))
        .parameter("custom", "x")
        .build();

    Decoded wire = decode(request.toProto().toByteArray(), REQUEST);
    assertThat(text(wire.get(1).get(0))).isEqualTo("m_" + type);
    assertThat(text(wire.get(2).get(0))).isEqualTo("4");
    assertThat(text(wire.get(3).get(0))).isEqualTo("req-" + type);

    // inputs: name, datatype, shape (packed), no parameters, never typed contents
    assertThat(wire.get(5)).hasSize(2);
    Decoded input = decode((byte[]) wire.get(5).get(0), INPUT);
    assertThat(text(input.get(1).get(0))).isEqualTo("IN");
    assertThat(text(input.get(2).get(0))).isEqualTo(type.name());
    assertThat(packedVarints((byte[]) input.get(3).get(0))).containsExactly(2L, 3L);
    assertThat(input.fields()).doesNotContainKeys(4, 5);
    Decoded second = decode((byte[]) wire.get(5).get(1), INPUT);
    assertThat(text(second.get(2).get(0))).isEqualTo("INT32");

    // raw_input_contents: one per input, in inputs' order, little-endian
    assertThat(wire.get(7)).hasSize(2);
    assertThat((byte[]) wire.get(7).get(0)).containsExactly(expectedBytes);
    assertThat((byte[]) wire.get(7).get(1)).containsExactly(7, 0, 0, 0);

    // outputs: OUT plain; CLASSES with classification = int64 3
    assertThat(wire.get(6)).hasSize(2);
    Decoded out = decode((byte[]) wire.get(6).get(0), OUTPUT);
    assertThat(text(out.get(1).get(0))).isEqualTo("OUT");
    assertThat(out.fields()).doesNotContainKey(2);
    Decoded classes = decode((byte[]) wire.get(6).get(1), OUTPUT);
    assertThat(text(classes.get(1).get(0))).isEqualTo("CLASSES");
    Decoded entry = decode((byte[]) classes.get(2).get(0), MAP_ENTRY);
    assertThat(text(entry.get(1).get(0))).isEqualTo("classification");
    assertThat(decode((byte[]) entry.get(2).get(0), PARAMETER).get(2)).containsExactly(3L);

    // request parameters: priority as uint64 (5), timeout as int64 (2) in µs, a custom string (3)
    Map<String, Decoded> parameters = new LinkedHashMap<>();
    for (Object e : wire.get(4)) {
      Decoded mapEntry = decode((byte[]) e, MAP_ENTRY);
      parameters.put(text(mapEntry.get(1).get(0)), decode((byte[]) mapEntry.get(2).get(0), PARAMETER));
    }
    assertThat(parameters).containsOnlyKeys("priority", "timeout", "custom");
    assertThat(parameters.get("priority").fields()).containsOnlyKeys(5);
    assertThat(parameters.get("priority").get(5)).containsExactly(2L);
    assertThat(parameters.get("timeout").fields()).containsOnlyKeys(2);
    assertThat(parameters.get("timeout").get(2)).containsExactly(5000L);
    assertThat(text(parameters.get("custom").get(3).get(0))).isEqualTo("x");
  }

  @Test
  void minimalRequest_carriesOnlyModelInputsAndRawContents() throws IOException {
    Decoded wire = decode(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[] {1f}, 1, 1))
        .build().toProto().toByteArray(), REQUEST);
    assertThat(wire.fields()).containsOnlyKeys(1, 5, 7);
  }
}
