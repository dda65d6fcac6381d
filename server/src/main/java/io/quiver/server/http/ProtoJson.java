package io.quiver.server.http;

import com.fasterxml.jackson.core.JsonGenerator;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.MapEntry;
import com.google.protobuf.Message;
import java.io.IOException;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Writes a protobuf message as JSON the way Triton writes model configs: proto field names, fields at
 * their default value left out (as protobuf's JSON printer does), enums by name, bytes as base64, and
 * 64-bit integers as JSON numbers ({@code "dims": [16]}, {@code "max_queue_delay_microseconds": 100}),
 * where protobuf's printer writes strings. Stateless and thread-safe.
 */
final class ProtoJson {
  private ProtoJson() {}

  static void write(JsonGenerator gen, Message message) throws IOException {
    gen.writeStartObject();
    for (Map.Entry<FieldDescriptor, Object> field : message.getAllFields().entrySet()) {
      FieldDescriptor descriptor = field.getKey();
      gen.writeFieldName(descriptor.getName());
      if (descriptor.isMapField()) {
        writeMap(gen, descriptor, (List<?>) field.getValue());
      } else if (descriptor.isRepeated()) {
        gen.writeStartArray();
        for (Object value : (List<?>) field.getValue()) {
          writeValue(gen, descriptor, value);
        }
        gen.writeEndArray();
      } else {
        writeValue(gen, descriptor, field.getValue());
      }
    }
    gen.writeEndObject();
  }

  private static void writeMap(JsonGenerator gen, FieldDescriptor descriptor, List<?> entries) throws IOException {
    FieldDescriptor valueField = descriptor.getMessageType().findFieldByName("value");
    gen.writeStartObject();
    for (Object entry : entries) {
      Message e = (Message) entry;
      Object key = e instanceof MapEntry<?, ?> m ? m.getKey()
          : e.getField(descriptor.getMessageType().findFieldByName("key"));
      Object value = e instanceof MapEntry<?, ?> m ? m.getValue() : e.getField(valueField);
      gen.writeFieldName(String.valueOf(key instanceof Long l && l < 0 ? Long.toUnsignedString(l) : key));
      writeValue(gen, valueField, value);
    }
    gen.writeEndObject();
  }

  private static void writeValue(JsonGenerator gen, FieldDescriptor field, Object value) throws IOException {
    switch (field.getJavaType()) {
      case MESSAGE -> write(gen, (Message) value);
      case ENUM -> gen.writeString(((EnumValueDescriptor) value).getName());
      case STRING -> gen.writeString((String) value);
      case BOOLEAN -> gen.writeBoolean((Boolean) value);
      case BYTE_STRING -> gen.writeString(Base64.getEncoder().encodeToString(((ByteString) value).toByteArray()));
      case FLOAT -> gen.writeNumber((Float) value);
      case DOUBLE -> gen.writeNumber((Double) value);
      case INT -> {
        int v = (Integer) value;
        boolean unsigned = field.getType() == FieldDescriptor.Type.UINT32 || field.getType() == FieldDescriptor.Type.FIXED32;
        gen.writeNumber(unsigned ? Integer.toUnsignedLong(v) : v);
      }
      case LONG -> {
        long v = (Long) value;
        boolean unsigned = field.getType() == FieldDescriptor.Type.UINT64 || field.getType() == FieldDescriptor.Type.FIXED64;
        if (unsigned && v < 0) {
          gen.writeNumber(new java.math.BigInteger(Long.toUnsignedString(v)));
        } else {
          gen.writeNumber(v);
        }
      }
    }
  }
}
