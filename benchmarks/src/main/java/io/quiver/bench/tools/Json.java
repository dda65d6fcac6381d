package io.quiver.bench.tools;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Small reading helpers over protobuf's JSON tree (Struct/Value), for result files. */
final class Json {
  private Json() {}

  /** Any JSON document (object or array), as a Value. */
  static Value read(Path file) throws IOException {
    Struct.Builder wrapper = Struct.newBuilder();
    JsonFormat.parser().merge("{\"v\": " + Files.readString(file) + "}", wrapper);
    return wrapper.getFieldsOrThrow("v");
  }

  static Value get(Value object, String... path) {
    Value v = object;
    for (String key : path) {
      if (v == null || !v.hasStructValue()) {
        return null;
      }
      v = v.getStructValue().getFieldsMap().get(key);
    }
    return v;
  }

  static double number(Value object, String... path) {
    Value v = get(object, path);
    return v != null && v.hasNumberValue() ? v.getNumberValue() : Double.NaN;
  }

  /** A boolean field; false when missing (result files written before the field existed). */
  static boolean bool(Value object, String... path) {
    Value v = get(object, path);
    return v != null && v.hasBoolValue() && v.getBoolValue();
  }

  static String string(Value object, String... path) {
    Value v = get(object, path);
    return v != null && v.hasStringValue() ? v.getStringValue() : "";
  }

  static List<Value> list(Value object, String... path) {
    Value v = path.length == 0 ? object : get(object, path);
    return v != null && v.hasListValue() ? v.getListValue().getValuesList() : new ArrayList<>();
  }
}
