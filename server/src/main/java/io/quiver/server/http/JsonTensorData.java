package io.quiver.server.http;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One input's JSON {@code data} read straight from the parser into the tensor's little-endian bytes,
 * without a tree node per value (a request's data is mostly numbers: a node each was most of a batch
 * job's allocation per record). Nested arrays are flattened in row-major order, as the tree decoder
 * does.
 *
 * <p>The first value that does not fit the datatype is kept, as a node for the error message, and the
 * values after it are only counted: the codec reports a value count that disagrees with the shape
 * before a wrong value, whichever way the data was read. Made and read on one thread.
 */
final class JsonTensorData {
  /** Bytes allocated before the first value at most, whatever the shape claims (it is not checked yet). */
  private static final int MAX_INITIAL_BYTES = 4096;

  final DataType type;
  private long count;
  private ByteBuffer bytes; // fixed-size types
  private List<byte[]> elements; // BYTES
  private JsonNode badValue;
  private String expected; // what badValue should have been; null when it was a number out of range

  private JsonTensorData(DataType type, long expectedCount) {
    this.type = type;
    if (type == DataType.BYTES) {
      elements = new ArrayList<>((int) Math.min(Math.max(expectedCount, 1), 64));
    } else {
      // The shape sizes the buffer up to a few KB only: it may claim up to Long.MAX_VALUE elements that
      // never come, and the buffer grows with the values that do.
      int initial = expectedCount > 0
          ? (int) Math.min(expectedCount, MAX_INITIAL_BYTES / type.byteSize()) * type.byteSize() : 64;
      bytes = ByteBuffer.allocate(initial).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  /**
   * Reads the value at the parser's current token (an array, possibly nested, or a single value) and
   * leaves the parser on its last token.
   *
   * @param expectedCount the element count the input's shape gives, when it came before the data (a
   *     first guess of the size only), or -1
   */
  static JsonTensorData read(JsonParser p, DataType type, long expectedCount) throws IOException {
    JsonTensorData data = new JsonTensorData(type, expectedCount);
    int depth = 0;
    JsonToken token = p.currentToken();
    while (true) {
      if (token == JsonToken.START_ARRAY) {
        depth++;
      } else if (token == JsonToken.END_ARRAY) {
        depth--;
      } else {
        data.add(p, token);
      }
      if (depth == 0) {
        return data;
      }
      token = p.nextToken();
    }
  }

  /** The number of values, nested arrays flattened. */
  long count() {
    return count;
  }

  /** The first value that did not fit the datatype, or null when all of them did. */
  JsonNode badValue() {
    return badValue;
  }

  /** What {@link #badValue} should have been ("a number"...), or null when it was an integer out of range. */
  String expected() {
    return expected;
  }

  /** The tensor's bytes, exactly as long as the values; only when {@link #badValue} is null. */
  ByteBuffer bytes() {
    if (type == DataType.BYTES) {
      return BytesElements.encode(elements);
    }
    ByteBuffer b = bytes;
    if (b.position() == b.capacity()) {
      return b.flip();
    }
    ByteBuffer exact = ByteBuffer.allocate(b.position()).order(ByteOrder.LITTLE_ENDIAN);
    return exact.put(b.flip()).flip();
  }

  private void add(JsonParser p, JsonToken token) throws IOException {
    count++;
    if (badValue != null) {
      if (token == JsonToken.START_OBJECT) {
        p.skipChildren();
      }
      return;
    }
    switch (type) {
      case BYTES -> {
        if (token != JsonToken.VALUE_STRING) {
          bad(p, "a string");
          return;
        }
        elements.add(p.getText().getBytes(StandardCharsets.UTF_8));
      }
      case BOOL -> {
        if (token != JsonToken.VALUE_TRUE && token != JsonToken.VALUE_FALSE) {
          bad(p, "true or false");
          return;
        }
        room(1).put((byte) (token == JsonToken.VALUE_TRUE ? 1 : 0));
      }
      case INT8 -> integer(p, token, Byte.MIN_VALUE, Byte.MAX_VALUE);
      case INT16 -> integer(p, token, Short.MIN_VALUE, Short.MAX_VALUE);
      case INT32 -> integer(p, token, Integer.MIN_VALUE, Integer.MAX_VALUE);
      case INT64 -> integer(p, token, Long.MIN_VALUE, Long.MAX_VALUE);
      case UINT8 -> integer(p, token, 0, 0xFF);
      case UINT16 -> integer(p, token, 0, 0xFFFF);
      case UINT32 -> integer(p, token, 0, 0xFFFF_FFFFL);
      case UINT64 -> unsigned64(p, token);
      case FP16 -> {
        if (number(p, token)) {
          room(2).putShort(Fp16.floatToHalf((float) value));
        }
      }
      case BF16 -> {
        if (number(p, token)) {
          room(2).putShort(Fp16.floatToBf16((float) value));
        }
      }
      case FP32 -> {
        if (number(p, token)) {
          room(4).putFloat((float) value);
        }
      }
      case FP64 -> {
        if (number(p, token)) {
          room(8).putDouble(value);
        }
      }
      default -> throw new AssertionError(type);
    }
  }

  private double value; // the last number read by number()

  /** Reads a floating-point value (numbers, or NaN and the infinities spelled out, which JSON lacks). */
  private boolean number(JsonParser p, JsonToken token) throws IOException {
    if (token == JsonToken.VALUE_NUMBER_FLOAT || token == JsonToken.VALUE_NUMBER_INT) {
      value = p.getDoubleValue();
      return true;
    }
    if (token == JsonToken.VALUE_STRING) {
      switch (p.getText()) {
        case "NaN", "nan" -> { value = Double.NaN; return true; }
        case "Infinity", "inf" -> { value = Double.POSITIVE_INFINITY; return true; }
        case "-Infinity", "-inf" -> { value = Double.NEGATIVE_INFINITY; return true; }
        default -> { }
      }
    }
    bad(p, "a number");
    return false;
  }

  private void integer(JsonParser p, JsonToken token, long min, long max) throws IOException {
    if (token != JsonToken.VALUE_NUMBER_INT) {
      bad(p, "an integer");
      return;
    }
    if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
      bad(p, null); // beyond a long
      return;
    }
    long v = p.getLongValue();
    if (v < min || v > max) {
      bad(p, null);
      return;
    }
    switch (type.byteSize()) {
      case 1 -> room(1).put((byte) v);
      case 2 -> room(2).putShort((short) v);
      case 4 -> room(4).putInt((int) v);
      default -> room(8).putLong(v);
    }
  }

  private void unsigned64(JsonParser p, JsonToken token) throws IOException {
    if (token != JsonToken.VALUE_NUMBER_INT) {
      bad(p, "an integer");
      return;
    }
    if (p.getNumberType() != JsonParser.NumberType.BIG_INTEGER) {
      long v = p.getLongValue();
      if (v < 0) {
        bad(p, null);
        return;
      }
      room(8).putLong(v);
      return;
    }
    BigInteger b = p.getBigIntegerValue();
    if (b.signum() < 0 || b.compareTo(RestInferCodec.UINT64_MAX) > 0) {
      bad(p, null);
      return;
    }
    room(8).putLong(b.longValue());
  }

  /** Keeps the current value (read as a node, objects included) as the first one that does not fit. */
  private void bad(JsonParser p, String expectedValue) throws IOException {
    badValue = RestInferCodec.readNode(p);
    expected = expectedValue;
  }

  private ByteBuffer room(int size) {
    if (bytes.remaining() < size) {
      int capacity = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(2L * bytes.capacity(), bytes.capacity() + size));
      ByteBuffer grown = ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
      bytes = grown.put(bytes.flip());
    }
    return bytes;
  }
}
