package io.quiver.client;

/**
 * The KServe v2 tensor datatypes, by their wire names ({@code "FP32"}, {@code "BYTES"}...), with the
 * size of one element in {@code raw_input_contents} / {@code raw_output_contents} (little-endian;
 * BOOL is one byte; BYTES elements are a 4-byte little-endian length then the bytes).
 */
public enum DataType {
  BOOL(1),
  UINT8(1),
  UINT16(2),
  UINT32(4),
  UINT64(8),
  INT8(1),
  INT16(2),
  INT32(4),
  INT64(8),
  FP16(2),
  BF16(2),
  FP32(4),
  FP64(8),
  /** Variable-length elements: {@link #byteSize()} is 0. */
  BYTES(0);

  private static final DataType[] VALUES = values();
  private final int byteSize;

  DataType(int byteSize) {
    this.byteSize = byteSize;
  }

  /** Bytes per element in the raw encoding; 0 for BYTES (each element carries its own length). */
  public int byteSize() {
    return byteSize;
  }

  /** The name on the wire, e.g. {@code "FP32"}. */
  public String wireName() {
    return name();
  }

  /** The datatype with this wire name, or null when the name is not a KServe v2 datatype. */
  public static DataType fromWireName(String wireName) {
    for (DataType type : VALUES) {
      if (type.name().equals(wireName)) {
        return type;
      }
    }
    return null;
  }
}
