package io.quiver.server.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.core.JsonParser;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The REST request decoder reads an input's {@code data} straight into the tensor's bytes when the
 * input names its datatype first, and as a tree otherwise: both ways must give the same tensor, and
 * the same error (code, field and message) for the same mistake.
 */
class RestInferCodecTest {
  private static final ByteBuffer NO_BINARY = ByteBuffer.allocate(0);

  /** One input with its fields in the order clients write them: datatype before data (streamed). */
  private static String streamed(String type, String shape, String data) {
    return "{\"inputs\":[{\"name\":\"x\",\"shape\":" + shape + ",\"datatype\":\"" + type + "\",\"data\":" + data + "}]}";
  }

  /** The same input with data before datatype (read as a tree, converted afterwards). */
  private static String tree(String type, String shape, String data) {
    return "{\"inputs\":[{\"data\":" + data + ",\"name\":\"x\",\"shape\":" + shape + ",\"datatype\":\"" + type + "\"}]}";
  }

  private static RestInferCodec.Decoded decode(String json) {
    try (JsonParser parser = RestInferCodec.JSON.createParser(json)) {
      RestInferCodec.Parsed request = RestInferCodec.parse(parser);
      assertThat(request).as("a JSON object").isNotNull();
      return RestInferCodec.decode(request, NO_BINARY);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] bytes(Tensor t) {
    ByteBuffer d = t.data();
    byte[] out = new byte[d.remaining()];
    d.get(out);
    return out;
  }

  @ParameterizedTest(name = "{0} {2}")
  @CsvSource(delimiter = '|', value = {
      "BOOL   | [4]   | [true, false, false, true]",
      "INT8   | [3]   | [-128, 0, 127]",
      "UINT8  | [3]   | [0, 1, 255]",
      "INT16  | [2]   | [-32768, 32767]",
      "UINT16 | [1]   | [65535]",
      "INT32  | [2]   | [-2147483648, 2147483647]",
      "UINT32 | [2]   | [0, 4294967295]",
      "INT64  | [2]   | [-9223372036854775808, 9223372036854775807]",
      "UINT64 | [3]   | [0, 9223372036854775807, 18446744073709551615]",
      "FP16   | [3]   | [0.5, -2, 65504]",
      "BF16   | [2]   | [1.5, -3]",
      "FP32   | [2,2] | [[0.1, -2.5], [3, 1e-3]]",
      "FP32   | [3]   | [\"NaN\", \"inf\", \"-Infinity\"]",
      "FP64   | [2]   | [0.1, 1e300]",
      "BYTES  | [2]   | [\"\", \"héllo\"]",
      "FP32   | [1]   | 7",
      "FP32   | [2]   | [[1], [[2]]]",
  })
  void dataReadWhileParsing_isTheTensorTheTreeDecoderMakes(String type, String shape, String data) {
    Tensor fast = decode(streamed(type, shape, data)).inputs().get(0);
    Tensor slow = decode(tree(type, shape, data)).inputs().get(0);
    assertThat(fast.dataType()).isEqualTo(slow.dataType());
    assertThat(fast.shape()).isEqualTo(slow.shape());
    assertThat(bytes(fast)).isEqualTo(bytes(slow));
    assertThat(fast.data().remaining()).isEqualTo(fast.data().capacity()); // exactly as long as the values
  }

  @Test
  void fp32Values_areTheNearestFloats() {
    Tensor t = decode(streamed("FP32", "[1,3]", "[0.1, -2.5, 16777217]")).inputs().get(0);
    ByteBuffer d = t.data().order(ByteOrder.LITTLE_ENDIAN);
    assertThat(d.getFloat()).isEqualTo(0.1f);
    assertThat(d.getFloat()).isEqualTo(-2.5f);
    assertThat(d.getFloat()).isEqualTo(16777216f);
  }

  @ParameterizedTest(name = "{0} {2}")
  @CsvSource(delimiter = '|', value = {
      "FP32   | [2]   | [1, \"a\"]",
      "FP32   | [2]   | [1, {\"a\": 1}]",
      "FP32   | [2]   | [1, null]",
      "FP32   | [1]   | true",
      "INT32  | [2]   | [1, 2.5]",
      "INT32  | [1]   | [2147483648]",
      "UINT8  | [2]   | [255, 256]",
      "UINT8  | [1]   | [-1]",
      "INT64  | [1]   | [9223372036854775808]",
      "UINT64 | [1]   | [-1]",
      "UINT64 | [1]   | [18446744073709551616]",
      "BOOL   | [1]   | [1]",
      "BYTES  | [2]   | [\"a\", 2]",
      "FP32   | [3]   | [1, 2]",
      "FP32   | [1]   | [1, \"a\", 3]",
      "FP32   | [-1]  | []",
  })
  void mistakesInData_areTheSameErrorEitherWay(String type, String shape, String data) {
    InferenceException fast = catchThrowableOfType(() -> decode(streamed(type, shape, data)), InferenceException.class);
    InferenceException slow = catchThrowableOfType(() -> decode(tree(type, shape, data)), InferenceException.class);
    assertThat(fast).as("refused when streamed").isNotNull();
    assertThat(slow).as("refused when read as a tree").isNotNull();
    assertThat(fast.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
    assertThat(fast.field()).isEqualTo(slow.field()).startsWith("inputs[x]");
    assertThat(fast.getMessage()).isEqualTo(slow.getMessage()).contains("'x'");
  }

  @Test
  void aValueCountThatDisagreesWithTheShape_isReportedBeforeAWrongValue() {
    assertThatThrownBy(() -> decode(streamed("FP32", "[1]", "[\"a\", 2]")))
        .hasMessageContaining("has 2 values in data, but shape [1] needs 1");
  }

  @Test
  void aShapeThatClaimsMillionsOfValues_isACountMismatchNotAnAllocation() {
    // The shape is only a first guess of the size: data of two values is two values' worth of bytes.
    assertThatThrownBy(() -> decode(streamed("FP64", "[1, 1000000000000]", "[1, 2]")))
        .hasMessageContaining("has 2 values in data, but shape [1, 1000000000000] needs 1000000000000");
  }

  @ParameterizedTest
  @CsvSource({"FP64, 9223372036854775807", "FP32, 4611686018427387904", "BYTES, 9223372036854775807",
      "INT8, 9223372036854775807"})
  void shapesNearTheLongLimit_areACountMismatch(String type, String size) {
    // The element count times the element size overflows a long: no allocation may be sized by it.
    InferenceException e = catchThrowableOfType(() -> decode(streamed(type, "[" + size + "]", "[1]")),
        InferenceException.class);
    assertThat(e.field()).isEqualTo("inputs[x].data");
    assertThat(e.getMessage()).contains("has 1 values in data");
  }

  @Test
  void nestingBeyondTheParsersLimit_isMalformedJson() {
    String deep = "[".repeat(5000) + "]".repeat(5000);
    for (String json : new String[] {"{\"id\":" + deep + "}", streamed("FP32", "[1]", deep),
        "{\"inputs\":[{\"name\":\"x\",\"parameters\":" + deep + "}]}"}) {
      assertThatThrownBy(() -> decode(json)).as(json.substring(0, 30))
          .isInstanceOf(UncheckedIOException.class).hasMessageContaining("nesting depth");
    }
  }

  @Test
  void aDatatypeGivenTwiceDifferently_isRefusedNamingTheField() {
    String json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],\"datatype\":\"INT8\"}]}";
    InferenceException e = catchThrowableOfType(() -> decode(json), InferenceException.class);
    assertThat(e.field()).isEqualTo("inputs[x].datatype");
    assertThat(e.getMessage()).contains("FP32, then INT8");
  }

  @Test
  void aLaterDataField_replacesAnEarlierOne() {
    String json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[1],\"data\":[2]}]}";
    assertThat(bytes(decode(json).inputs().get(0))).containsExactly(2);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "\"shape\":[1, \"2\"]            | has a shape entry that is not an integer: \"2\"",
      "\"shape\":[1, 2.5]              | has a shape entry that is not an integer: 2.5",
      "\"shape\":[99999999999999999999] | has a shape entry that is not an integer: 99999999999999999999",
      "\"shape\":3                     | needs a 'shape' array",
  })
  void badShapes_areRefusedWithTheEntryThatIsWrong(String shape, String message) {
    String json = "{\"inputs\":[{\"name\":\"x\"," + shape + ",\"datatype\":\"FP32\",\"data\":[1]}]}";
    InferenceException e = catchThrowableOfType(() -> decode(json), InferenceException.class);
    assertThat(e.field()).isEqualTo("inputs[x].shape");
    assertThat(e.getMessage()).contains(message);
  }

  @Test
  void theRequestFields_areReadWhateverTheirOrder() {
    String json = "{\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}],\"unknown\":{\"a\":[1,{}]},"
        + "\"inputs\":[{\"name\":\"x\",\"datatype\":\"INT32\",\"shape\":[2],\"data\":[5,6]}],"
        + "\"parameters\":{\"priority\":2},\"id\":\"r1\"}";
    RestInferCodec.Decoded d = decode(json);
    assertThat(d.id()).isEqualTo("r1");
    assertThat(d.priority()).isEqualTo(2);
    assertThat(d.outputs()).containsExactly("y");
    assertThat(d.binary("y")).isTrue();
    ByteBuffer data = d.inputs().get(0).data().order(ByteOrder.LITTLE_ENDIAN);
    assertThat(data.getInt()).isEqualTo(5);
    assertThat(data.getInt()).isEqualTo(6);
  }

  @Test
  void requestsThatAreNotObjects_parseToNothing() throws IOException {
    for (String json : new String[] {"[1]", "3", "\"x\"", "", " "}) {
      try (JsonParser parser = RestInferCodec.JSON.createParser(json)) {
        assertThat(RestInferCodec.parse(parser)).as(json).isNull();
      }
    }
  }

  @Test
  void inputsThatAreNotObjects_areRefused() {
    assertThatThrownBy(() -> decode("{\"inputs\":[3]}")).hasMessageContaining("each entry of 'inputs' must be an object");
    assertThatThrownBy(() -> decode("{\"inputs\":{}}")).hasMessageContaining("needs an 'inputs' array");
    assertThatThrownBy(() -> decode("{\"inputs\":[{\"name\":1}]}")).hasMessageContaining("'name' must be a string");
    assertThatThrownBy(() -> decode("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"F32\",\"shape\":[1],\"data\":[1]}]}"))
        .hasMessageContaining("unknown datatype 'F32'");
  }
}
