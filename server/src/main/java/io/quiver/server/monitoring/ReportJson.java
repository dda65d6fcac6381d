package io.quiver.server.monitoring;

import com.fasterxml.jackson.core.JsonGenerator;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.io.IOException;
import java.util.List;

/**
 * Writes a monitoring message as the REST JSON: the proto's field names, every field present (a message
 * field that is not set is null), 64-bit integers and doubles as JSON numbers (proto3's JSON mapping
 * would quote 64-bit integers; a plotting client wants numbers), NaN and infinities as null.
 * Stateless.
 */
public final class ReportJson {
  private ReportJson() {}

  public static void write(Message message, JsonGenerator gen) throws IOException {
    gen.writeStartObject();
    for (FieldDescriptor field : message.getDescriptorForType().getFields()) {
      gen.writeFieldName(field.getName());
      if (field.isRepeated()) {
        gen.writeStartArray();
        for (Object value : (List<?>) message.getField(field)) {
          value(field, value, gen);
        }
        gen.writeEndArray();
      } else if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE && !message.hasField(field)) {
        gen.writeNull();
      } else {
        value(field, message.getField(field), gen);
      }
    }
    gen.writeEndObject();
  }

  private static void value(FieldDescriptor field, Object value, JsonGenerator gen) throws IOException {
    switch (field.getJavaType()) {
      case MESSAGE -> write((Message) value, gen);
      case DOUBLE, FLOAT -> {
        double d = ((Number) value).doubleValue();
        if (Double.isNaN(d) || Double.isInfinite(d)) {
          gen.writeNull();
        } else {
          gen.writeNumber(d);
        }
      }
      case LONG -> {
        long l = (Long) value;
        boolean unsigned = field.getType() == FieldDescriptor.Type.UINT64 || field.getType() == FieldDescriptor.Type.FIXED64;
        if (unsigned && l < 0) {
          gen.writeNumber(new java.math.BigInteger(Long.toUnsignedString(l)));
        } else {
          gen.writeNumber(l);
        }
      }
      case INT -> {
        int i = (Integer) value;
        boolean unsigned = field.getType() == FieldDescriptor.Type.UINT32 || field.getType() == FieldDescriptor.Type.FIXED32;
        gen.writeNumber(unsigned ? Integer.toUnsignedLong(i) : i);
      }
      case BOOLEAN -> gen.writeBoolean((Boolean) value);
      case STRING -> gen.writeString((String) value);
      case ENUM -> gen.writeString(((com.google.protobuf.Descriptors.EnumValueDescriptor) value).getName());
      case BYTE_STRING -> gen.writeBinary(((com.google.protobuf.ByteString) value).toByteArray());
    }
  }
}
