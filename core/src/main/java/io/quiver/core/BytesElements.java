package io.quiver.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Encoding and decoding of BYTES tensor data: each element a 4-byte little-endian length, then the
 * bytes. The one place that walks this framing: the validator, the data plane's limits and the
 * runtimes all read it through here. Stateless.
 */
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
   * The length of the first element longer than {@code maxLength}, or -1 when there is none. Stops
   * quietly at malformed framing (a partial header, or a length running past the end): reporting that
   * is {@link #count}'s job. Lengths are read unsigned, so a negative length counts as a huge one. No
   * allocation; does not move the caller's buffer.
   */
  public static long firstLengthOver(ByteBuffer data, long maxLength) {
    int pos = data.position();
    int end = data.limit();
    while (end - pos >= 4) {
      long length = Integer.toUnsignedLong((data.get(pos) & 0xff) | (data.get(pos + 1) & 0xff) << 8
          | (data.get(pos + 2) & 0xff) << 16 | (data.get(pos + 3) & 0xff) << 24);
      if (length > maxLength) {
        return length;
      }
      if (length > end - pos - 4) {
        return -1;
      }
      pos += 4 + (int) length;
    }
    return -1;
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

  /**
   * Views of the first {@code count} elements (no copy; each view shares the data's memory). The data
   * must be well formed with at least that many elements (see {@link #count}). Allocates the array and
   * one view per element.
   */
  public static ByteBuffer[] slices(ByteBuffer data, int count) {
    ByteBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer[] out = new ByteBuffer[count];
    int pos = 0;
    for (int i = 0; i < count; i++) {
      int length = view.getInt(pos);
      out[i] = view.slice(pos + 4, length);
      pos += 4 + length;
    }
    return out;
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
