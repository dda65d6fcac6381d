package io.quiver.core;

import java.util.HashMap;
import java.util.Map;

/**
 * Tensor element types of the KServe v2 protocol, with their wire names ("FP32"), their
 * config.pbtxt counterparts (TYPE_FP32) and their size in bytes. BYTES elements have no fixed size:
 * on the wire each is a 4-byte little-endian length followed by that many bytes.
 */
public enum DataType {
  BOOL("BOOL", 1, io.quiver.proto.inference.DataType.TYPE_BOOL),
  UINT8("UINT8", 1, io.quiver.proto.inference.DataType.TYPE_UINT8),
  UINT16("UINT16", 2, io.quiver.proto.inference.DataType.TYPE_UINT16),
  UINT32("UINT32", 4, io.quiver.proto.inference.DataType.TYPE_UINT32),
  UINT64("UINT64", 8, io.quiver.proto.inference.DataType.TYPE_UINT64),
  INT8("INT8", 1, io.quiver.proto.inference.DataType.TYPE_INT8),
  INT16("INT16", 2, io.quiver.proto.inference.DataType.TYPE_INT16),
  INT32("INT32", 4, io.quiver.proto.inference.DataType.TYPE_INT32),
  INT64("INT64", 8, io.quiver.proto.inference.DataType.TYPE_INT64),
  FP16("FP16", 2, io.quiver.proto.inference.DataType.TYPE_FP16),
  FP32("FP32", 4, io.quiver.proto.inference.DataType.TYPE_FP32),
  FP64("FP64", 8, io.quiver.proto.inference.DataType.TYPE_FP64),
  BF16("BF16", 2, io.quiver.proto.inference.DataType.TYPE_BF16),
  /** Variable-length byte strings; config.pbtxt calls this TYPE_STRING. */
  BYTES("BYTES", -1, io.quiver.proto.inference.DataType.TYPE_STRING);

  private static final Map<String, DataType> BY_WIRE_NAME = new HashMap<>();
  private static final Map<io.quiver.proto.inference.DataType, DataType> BY_CONFIG = new HashMap<>();

  static {
    for (DataType type : values()) {
      BY_WIRE_NAME.put(type.wireName, type);
      BY_CONFIG.put(type.configType, type);
    }
  }

  private final String wireName;
  private final int byteSize;
  private final io.quiver.proto.inference.DataType configType;

  DataType(String wireName, int byteSize, io.quiver.proto.inference.DataType configType) {
    this.wireName = wireName;
    this.byteSize = byteSize;
    this.configType = configType;
  }

  /** The protocol's name, e.g. "FP32". */
  public String wireName() {
    return wireName;
  }

  /** Bytes per element, or -1 for BYTES. */
  public int byteSize() {
    return byteSize;
  }

  public boolean isFixedSize() {
    return byteSize > 0;
  }

  /** The config.pbtxt enum value, e.g. TYPE_FP32. */
  public io.quiver.proto.inference.DataType toConfig() {
    return configType;
  }

  /** Looks up a wire name; returns null when it is not a protocol datatype. */
  public static DataType fromWireName(String name) {
    return BY_WIRE_NAME.get(name);
  }

  /** Maps a config.pbtxt type; returns null for TYPE_INVALID and unrecognised values. */
  public static DataType fromConfig(io.quiver.proto.inference.DataType type) {
    return BY_CONFIG.get(type);
  }
}
