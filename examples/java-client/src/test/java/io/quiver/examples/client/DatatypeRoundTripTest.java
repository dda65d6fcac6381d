package io.quiver.examples.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.client.DataType;
import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensor;
import io.quiver.client.Tensors;
import io.quiver.examples.ExampleModels;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every KServe datatype through a real Quiver and back, bit-exact: each made from a Java array, from a typed
 * buffer and from a direct ByteBuffer, sent through an identity model of that datatype, read back typed.
 * UINT16/32/64 inputs cannot be fed to ONNX Runtime Java (the server refuses those models), so their
 * encoding is checked on the wire (client module's WireFormatTest) and their decoding here, through a model
 * that casts INT64 to them.
 */
class DatatypeRoundTripTest {
  private static final int ROWS = 3;
  private static final int N = ROWS * ExampleModels.DATATYPE_ROW;
  @TempDir static Path repository;
  static LiveQuiver quiver;
  static QuiverClient client;

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeDatatypeIdentities(repository);
    ExampleModels.writeUnsignedOutputs(repository);
    quiver = LiveQuiver.start(LiveQuiver.options(repository));
    client = QuiverClient.builder().target(quiver.target()).build();
  }

  @AfterAll
  static void stop() {
    client.close();
    quiver.close();
  }

  private static InferResult echo(DataType type, Tensor input) {
    return client.infer(InferRequest.builder(ExampleModels.datatypeModelName(type.wireName()))
        .input("INPUT0", input).build());
  }

  private static void assertBitExact(DataType type, Tensor sent, InferResult result) {
    Tensor back = result.output("OUTPUT0");
    assertThat(back.datatype()).isEqualTo(type);
    assertThat(back.shape()).containsExactly(ROWS, ExampleModels.DATATYPE_ROW);
    assertThat(back.rawBytes()).isEqualTo(sent.rawBytes());
  }

  @ParameterizedTest
  @EnumSource(value = DataType.class, names = {"UINT16", "UINT32", "UINT64"}, mode = EnumSource.Mode.EXCLUDE)
  void fromArrays_roundTripBitExact_andReadBackTyped(DataType type) {
    SplittableRandom random = new SplittableRandom(type.ordinal());
    long[] shape = {ROWS, ExampleModels.DATATYPE_ROW};
    switch (type) {
      case BOOL -> {
        boolean[] v = new boolean[N];
        for (int i = 0; i < N; i++) v[i] = random.nextBoolean();
        Tensor t = Tensors.bool(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toBooleanArray()).containsExactly(v);
      }
      case UINT8, INT8 -> {
        byte[] v = new byte[N];
        random.nextBytes(v);
        Tensor t = type == DataType.UINT8 ? Tensors.uint8(v, shape) : Tensors.int8(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toByteArray()).containsExactly(v);
      }
      case INT16 -> {
        short[] v = new short[N];
        for (int i = 0; i < N; i++) v[i] = (short) random.nextInt();
        Tensor t = Tensors.int16(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toShortArray()).containsExactly(v);
      }
      case INT32 -> {
        int[] v = random.ints(N).toArray();
        Tensor t = Tensors.int32(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toIntArray()).containsExactly(v);
      }
      case INT64 -> {
        long[] v = random.longs(N).toArray();
        Tensor t = Tensors.int64(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toLongArray()).containsExactly(v);
      }
      case FP16, BF16 -> {
        // Values representable in the type come back exactly; others come back rounded, bit-exact with what was sent.
        float[] v = new float[N];
        for (int i = 0; i < N; i++) v[i] = (float) random.nextInt(-2048, 2048) / 8;
        v[0] = Float.POSITIVE_INFINITY;
        v[1] = -0.0f;
        Tensor t = type == DataType.FP16 ? Tensors.fp16(v, shape) : Tensors.bf16(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        if (type == DataType.FP16) {
          assertThat(r.output("OUTPUT0").toFloatArray()).containsExactly(v);
        } else {
          assertThat(r.output("OUTPUT0").toFloatArray()).containsExactly(t.toFloatArray());
        }
      }
      case FP32 -> {
        float[] v = new float[N];
        for (int i = 0; i < N; i++) v[i] = Float.intBitsToFloat(random.nextInt() & 0x7f7fffff); // finite
        v[0] = Float.MIN_VALUE;
        v[1] = -Float.MAX_VALUE;
        Tensor t = Tensors.fp32(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toFloatArray()).containsExactly(v);
      }
      case FP64 -> {
        double[] v = random.doubles(N, -1e300, 1e300).toArray();
        v[0] = Double.MIN_VALUE;
        Tensor t = Tensors.fp64(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toDoubleArray()).containsExactly(v);
      }
      case BYTES -> {
        List<String> v = new ArrayList<>();
        for (int i = 0; i < N; i++) v.add(i % 3 == 0 ? "" : "é中😀-" + random.nextInt(1000));
        Tensor t = Tensors.strings(v, shape);
        InferResult r = echo(type, t);
        assertBitExact(type, t, r);
        assertThat(r.output("OUTPUT0").toStringArray()).containsExactlyElementsOf(v);
        assertThat(r.output("OUTPUT0").toByteArrays()).hasSize(N);
      }
      default -> throw new AssertionError(type);
    }
  }

  @ParameterizedTest
  @EnumSource(value = DataType.class, names = {"UINT16", "UINT32", "UINT64"}, mode = EnumSource.Mode.EXCLUDE)
  void fromDirectByteBuffers_roundTripBitExact(DataType type) {
    SplittableRandom random = new SplittableRandom(31L * type.ordinal());
    ByteBuffer direct;
    if (type == DataType.BYTES) {
      ByteBuffer framed = ByteBuffer.allocate(N * 8).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < N; i++) {
        byte[] s = ("v" + i).getBytes(StandardCharsets.UTF_8);
        framed.putInt(s.length).put(s);
      }
      framed.flip();
      direct = ByteBuffer.allocateDirect(framed.remaining()).order(ByteOrder.LITTLE_ENDIAN).put(framed).flip();
    } else {
      direct = ByteBuffer.allocateDirect(N * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < N; i++) {
        switch (type) {
          case BOOL -> direct.put((byte) random.nextInt(2));
          case UINT8, INT8 -> direct.put((byte) random.nextInt());
          case INT16 -> direct.putShort((short) random.nextInt());
          case INT32 -> direct.putInt(random.nextInt());
          case INT64 -> direct.putLong(random.nextLong());
          case FP16 -> direct.putShort((short) ((random.nextInt(2) << 15) | (random.nextInt(1, 31) << 10) | random.nextInt(1 << 10)));
          case BF16 -> direct.putShort((short) ((random.nextInt(2) << 15) | (random.nextInt(1, 255) << 7) | random.nextInt(1 << 7)));
          case FP32 -> direct.putFloat((float) random.nextDouble(-1e6, 1e6));
          case FP64 -> direct.putDouble(random.nextDouble(-1e6, 1e6));
          default -> throw new AssertionError(type);
        }
      }
      direct.flip();
    }
    Tensor t = Tensors.of(type, direct, ROWS, ExampleModels.DATATYPE_ROW);
    InferResult r = echo(type, t);
    assertBitExact(type, t, r);
    assertThat(r.output("OUTPUT0").asByteBuffer()).isEqualTo(direct.duplicate().rewind());
  }

  @Test
  void fromTypedBuffers_roundTripBitExact() {
    long[] shape = {ROWS, ExampleModels.DATATYPE_ROW};
    FloatBuffer floats = FloatBuffer.allocate(N + 2).position(2);
    for (int i = 0; i < N; i++) floats.put(2 + i, i * 1.25f);
    assertThat(echo(DataType.FP32, Tensors.fp32(floats, shape)).output("OUTPUT0").toFloatArray())
        .containsExactly(0f, 1.25f, 2.5f, 3.75f, 5f, 6.25f, 7.5f, 8.75f, 10f, 11.25f, 12.5f, 13.75f);
    assertThat(floats.position()).isEqualTo(2); // the caller's buffer is left as it was

    IntBuffer ints = IntBuffer.allocate(N);
    for (int i = 0; i < N; i++) ints.put(i, -i);
    assertThat(echo(DataType.INT32, Tensors.int32(ints, shape)).output("OUTPUT0").asIntBuffer()).isEqualTo(ints);
    LongBuffer longs = LongBuffer.allocate(N);
    for (int i = 0; i < N; i++) longs.put(i, Long.MIN_VALUE + i);
    assertThat(echo(DataType.INT64, Tensors.int64(longs, shape)).output("OUTPUT0").toLongArray()).isEqualTo(longs.array());
    ShortBuffer shorts = ShortBuffer.allocate(N);
    for (int i = 0; i < N; i++) shorts.put(i, (short) (i * 1000));
    assertThat(echo(DataType.INT16, Tensors.int16(shorts, shape)).output("OUTPUT0").toShortArray()).isEqualTo(shorts.array());
  }

  @Test
  void unsignedOutputs_readBackAsTheirBitPatterns() {
    long[] values = {0, 1, 65535, 65536, 4294967295L, 4294967296L, Long.MAX_VALUE, -1, 7, 8, 9, 10};
    InferResult r = client.infer(InferRequest.builder("unsigned_outputs")
        .input("INPUT0", Tensors.int64(values, ROWS, ExampleModels.DATATYPE_ROW)).build());
    short[] u16 = r.output("OUTPUT_UINT16").toShortArray();
    int[] u32 = r.output("OUTPUT_UINT32").toIntArray();
    long[] u64 = r.output("OUTPUT_UINT64").toLongArray();
    assertThat(r.output("OUTPUT_UINT16").datatype()).isEqualTo(DataType.UINT16);
    assertThat(r.output("OUTPUT_UINT32").datatype()).isEqualTo(DataType.UINT32);
    assertThat(r.output("OUTPUT_UINT64").datatype()).isEqualTo(DataType.UINT64);
    for (int i = 0; i < values.length; i++) {
      assertThat(Short.toUnsignedInt(u16[i])).as("uint16[%d]", i).isEqualTo((int) (values[i] & 0xffff));
      assertThat(Integer.toUnsignedLong(u32[i])).as("uint32[%d]", i).isEqualTo(values[i] & 0xffffffffL);
      assertThat(u64[i]).as("uint64[%d]", i).isEqualTo(values[i]);
    }
  }

  @Test
  void readingAnotherDatatype_failsNamingBoth() {
    InferResult r = echo(DataType.INT32, Tensors.int32(new int[N], ROWS, ExampleModels.DATATYPE_ROW));
    assertThatThrownBy(() -> r.output("OUTPUT0").toFloatArray()).isInstanceOf(IllegalStateException.class)
        .hasMessage("output 'OUTPUT0' is INT32; toFloatArray() reads FP32, FP16 or BF16");
    assertThatThrownBy(() -> r.output("NOPE")).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("no output 'NOPE'").hasMessageContaining("[OUTPUT0]");
  }
}
