package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.InferTensorContents;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Each protocol datatype through an identity model over gRPC, as raw bytes and as typed contents. */
class DatatypeRoundTripTest {
  private static final int ROWS = 3;
  @TempDir static Path repository;
  static ServerFixture fixture;

  @BeforeAll
  static void startServer() throws Exception {
    ExampleModels.writeDatatypeIdentities(repository);
    ExampleModels.writeUnsupportedDatatypeIdentities(repository);
    fixture = new ServerFixture(repository);
  }

  @AfterAll
  static void stopServer() throws Exception {
    fixture.close();
  }

  static List<String> supported() {
    return ExampleModels.SUPPORTED_DATATYPES;
  }

  @ParameterizedTest
  @MethodSource("supported")
  void rawBytes_comeBackUnchanged(String wireName) {
    DataType type = DataType.fromWireName(wireName);
    ByteString data = randomData(type, ROWS * ExampleModels.DATATYPE_ROW, new SplittableRandom(wireName.hashCode()));
    ModelInferResponse response = fixture.stub().modelInfer(ModelInferRequest.newBuilder()
        .setModelName(ExampleModels.datatypeModelName(wireName))
        .addInputs(input("INPUT0", wireName, ROWS, ExampleModels.DATATYPE_ROW))
        .addRawInputContents(data)
        .build());
    assertThat(response.getOutputs(0).getDatatype()).isEqualTo(wireName);
    assertThat(response.getOutputs(0).getShapeList()).containsExactly((long) ROWS, (long) ExampleModels.DATATYPE_ROW);
    assertThat(response.getRawOutputContents(0)).isEqualTo(data);
  }

  @ParameterizedTest
  @MethodSource("supported")
  void typedContents_comeBackAsTheEquivalentRawBytes(String wireName) {
    DataType type = DataType.fromWireName(wireName);
    if (type == DataType.FP16 || type == DataType.BF16) {
      return; // no typed field exists for these: raw only (checked in InferenceServiceTest-style bad input)
    }
    int n = ROWS * ExampleModels.DATATYPE_ROW;
    InferTensorContents.Builder contents = InferTensorContents.newBuilder();
    ByteBuffer expected = ByteBuffer.allocate(n * 8 + n * 16).order(ByteOrder.LITTLE_ENDIAN);
    List<byte[]> strings = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int v = i * 7 - 20;
      switch (type) {
        case BOOL -> { contents.addBoolContents(i % 3 == 0); expected.put((byte) (i % 3 == 0 ? 1 : 0)); }
        case INT8 -> { contents.addIntContents(v); expected.put((byte) v); }
        case INT16 -> { contents.addIntContents(v * 100); expected.putShort((short) (v * 100)); }
        case INT32 -> { contents.addIntContents(v * 100_000); expected.putInt(v * 100_000); }
        case INT64 -> { contents.addInt64Contents(v * 10_000_000_000L); expected.putLong(v * 10_000_000_000L); }
        case UINT8 -> { contents.addUintContents(i * 20); expected.put((byte) (i * 20)); }
        case FP32 -> { contents.addFp32Contents(v / 3f); expected.putFloat(v / 3f); }
        case FP64 -> { contents.addFp64Contents(v / 3d); expected.putDouble(v / 3d); }
        case BYTES -> { byte[] s = ("s" + v).getBytes(); contents.addBytesContents(ByteString.copyFrom(s)); strings.add(s); }
        default -> throw new AssertionError(type);
      }
    }
    ByteString expectedBytes = type == DataType.BYTES
        ? ByteString.copyFrom(BytesElements.encode(strings))
        : ByteString.copyFrom(expected.flip());
    ModelInferResponse response = fixture.stub().modelInfer(ModelInferRequest.newBuilder()
        .setModelName(ExampleModels.datatypeModelName(wireName))
        .addInputs(input("INPUT0", wireName, ROWS, ExampleModels.DATATYPE_ROW).toBuilder().setContents(contents))
        .build());
    assertThat(response.getRawOutputContents(0)).isEqualTo(expectedBytes);
  }

  @Test
  void unsignedTypesOnnxRuntimeJavaCannotFeed_failToLoadWithAReason() {
    RepositoryIndexResponse index = fixture.stub().repositoryIndex(RepositoryIndexRequest.getDefaultInstance());
    for (String wireName : ExampleModels.UNSUPPORTED_INPUT_DATATYPES) {
      RepositoryIndexResponse.ModelIndex model = index.getModelsList().stream()
          .filter(m -> m.getName().equals(ExampleModels.datatypeModelName(wireName))).findFirst().orElseThrow();
      assertThat(model.getState()).isEqualTo("UNAVAILABLE");
      assertThat(model.getReason()).containsIgnoringCase(wireName.toLowerCase().substring(0, 4));
    }
  }

  private static ByteString randomData(DataType type, int elements, SplittableRandom random) {
    if (type == DataType.BYTES) {
      List<byte[]> values = new ArrayList<>();
      // ONNX Runtime's Java API holds strings as text, so BYTES data must be valid UTF-8 (see README).
      String alphabet = "abcXYZ019 \u00e9\u4e2d\ud83d\ude00\u0000";
      for (int i = 0; i < elements; i++) {
        StringBuilder v = new StringBuilder();
        int length = random.nextInt(0, 8);
        for (int k = 0; k < length; k++) {
          int at = random.nextInt(alphabet.length());
          if (Character.isHighSurrogate(alphabet.charAt(at))) {
            v.append(alphabet, at, at + 2);
          } else if (!Character.isLowSurrogate(alphabet.charAt(at))) {
            v.append(alphabet.charAt(at));
          }
        }
        values.add(v.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      }
      return ByteString.copyFrom(BytesElements.encode(values));
    }
    byte[] bytes = new byte[elements * type.byteSize()];
    random.nextBytes(bytes);
    if (type == DataType.BOOL) {
      for (int i = 0; i < bytes.length; i++) {
        bytes[i] = (byte) (bytes[i] & 1);
      }
    }
    if (type == DataType.FP32 || type == DataType.FP64 || type == DataType.FP16 || type == DataType.BF16) {
      // Random bit patterns can be NaNs whose payload a runtime may canonicalize: use real values.
      ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < elements; i++) {
        float f = (float) random.nextDouble(-1000, 1000);
        switch (type) {
          case FP32 -> buffer.putFloat(i * 4, f);
          case FP64 -> buffer.putDouble(i * 8, f);
          // Finite, non-NaN half and bfloat16 bit patterns: sign | normal exponent | mantissa.
          case FP16 -> buffer.putShort(i * 2,
              (short) ((random.nextInt(2) << 15) | (random.nextInt(1, 31) << 10) | random.nextInt(1 << 10)));
          default -> buffer.putShort(i * 2,
              (short) ((random.nextInt(2) << 15) | (random.nextInt(1, 255) << 7) | random.nextInt(1 << 7)));
        }
      }
    }
    return ByteString.copyFrom(bytes);
  }
}
