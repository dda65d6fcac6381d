package io.quiver.core;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class DataTypeTest {

  @Test
  void everyType_roundTripsThroughItsWireNameAndConfigType() {
    for (DataType type : DataType.values()) {
      assertThat(DataType.fromWireName(type.wireName())).isSameAs(type);
      assertThat(DataType.fromConfig(type.toConfig())).isSameAs(type);
      assertThat(type.isFixedSize()).isEqualTo(type != DataType.BYTES);
    }
  }

  @Test
  void bytes_isConfigsTypeStringWithNoFixedSize() {
    assertThat(DataType.BYTES.toConfig()).isEqualTo(io.quiver.proto.inference.DataType.TYPE_STRING);
    assertThat(DataType.fromConfig(io.quiver.proto.inference.DataType.TYPE_STRING)).isSameAs(DataType.BYTES);
    assertThat(DataType.BYTES.byteSize()).isEqualTo(-1);
  }

  @Test
  void byteSizes_matchTheProtocol() {
    assertThat(DataType.BOOL.byteSize()).isEqualTo(1);
    assertThat(DataType.FP16.byteSize()).isEqualTo(2);
    assertThat(DataType.BF16.byteSize()).isEqualTo(2);
    assertThat(DataType.UINT32.byteSize()).isEqualTo(4);
    assertThat(DataType.FP64.byteSize()).isEqualTo(8);
    assertThat(DataType.INT64.byteSize()).isEqualTo(8);
  }

  @Test
  void unknownNames_mapToNull() {
    assertThat(DataType.fromWireName("FLOAT")).isNull();
    assertThat(DataType.fromWireName("fp32")).isNull();
    assertThat(DataType.fromConfig(io.quiver.proto.inference.DataType.TYPE_INVALID)).isNull();
  }
}
