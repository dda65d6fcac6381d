package io.quiver.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Encoding and decoding of BYTES tensor data: each element a 4-byte little-endian length, then the bytes. */
public final class BytesElements {
  private BytesElements() {}

  /**
   * Counts the elements in serialized BYTES data, checking that every length fits; returns -1 when
   * the data is malformed (a length running past the end, a negative length or a partial header).
   * Reads through an independent view; does not move the caller's buffer.
   */
  public static long count(ByteBuffer data) {
    ByteBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    long count = 0;
    int pos = 0;
    int limit = view.limit();
    while (pos < limit) {
      if (limit - pos < 4) {
        return -1;
      }
      int length = view.getInt(pos);
      pos += 4;
      if (length < 0 || length > limit - pos) {
        return -1;
      }
      pos += length;
      count++;
    }
    return count;
  }

  /**
   * Returns the byte offset at which element {@code index} begins (or the end when index equals the
   * element count). The data must be well formed (see {@link #count}).
   */
  public static int offsetOf(ByteBuffer data, long index) {
    ByteBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    int pos = 0;
    for (long i = 0; i < index; i++) {
      pos += 4 + view.getInt(pos);
    }
    return pos;
  }

  /** Serializes elements into a new little-endian heap buffer. */
  public static ByteBuffer encode(List<byte[]> elements) {
    int size = 0;
    for (byte[] element : elements) {
      size += 4 + element.length;
    }
    ByteBuffer out = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    for (byte[] element : elements) {
      out.putInt(element.length).put(element);
    }
    return out.flip();
  }

  /** Serializes UTF-8 strings. */
  public static ByteBuffer encodeStrings(List<String> elements) {
    List<byte[]> bytes = new ArrayList<>(elements.size());
    for (String element : elements) {
      bytes.add(element.getBytes(StandardCharsets.UTF_8));
    }
    return encode(bytes);
  }

  /** Splits well-formed serialized data into its elements (allocates one array per element). */
  public static List<byte[]> decode(ByteBuffer data) {
    ByteBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    List<byte[]> elements = new ArrayList<>();
    while (view.hasRemaining()) {
      byte[] element = new byte[view.getInt()];
      view.get(element);
      elements.add(element);
    }
    return elements;
  }
}
