package io.quiver.bench.perf;

import com.google.protobuf.ByteString;
import com.google.protobuf.ListValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.quiver.core.DataType;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelMetadataResponse.TensorMetadata;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Builds the requests a run sends: random data of the right datatype and shape from a model's
 * metadata, or the data of a JSON file. Every tensor travels in {@code raw_input_contents}
 * (little-endian; BYTES elements as a 4-byte little-endian length then the bytes), which is what
 * tritonclient sends too. Requests are built once, before the run; the hot loop reuses them.
 *
 * <p>JSON file format (perf_analyzer's): {@code {"data": [ {"INPUT0": [1, 2, ...]}, ... ]}} or, per
 * input, {@code {"content": [...], "shape": [...]}}. Nested arrays are flattened; BYTES elements are
 * strings. A shape given in the file is used as is; otherwise the shape comes from the metadata with
 * the batch dimension set to the batch size. Each entry of {@code data} becomes one request; a run
 * sends them in turn.
 */
public final class InputData {
  /** Refuse to build a single input bigger than this: a shape typo should not exhaust memory. */
  public static final long MAX_INPUT_BYTES = 1L << 30;

  private InputData() {}

  /**
   * The shape to send for one input: a leading -1 of the metadata is the batch dimension and becomes
   * {@code batch}; any other -1 must be given in {@code shapeOverrides} (dimensions without the batch).
   */
  public static long[] requestShape(TensorMetadata input, int batch, Map<String, long[]> shapeOverrides) {
    List<Long> meta = input.getShapeList();
    boolean batched = !meta.isEmpty() && meta.get(0) == -1;
    long[] override = shapeOverrides.get(input.getName());
    long[] rest;
    if (override != null) {
      rest = override;
    } else {
      rest = new long[batched ? meta.size() - 1 : meta.size()];
      for (int i = 0; i < rest.length; i++) {
        rest[i] = meta.get(batched ? i + 1 : i);
        if (rest[i] < 0) {
          throw new IllegalArgumentException("input '" + input.getName() + "' has variable shape " + meta
              + "; give its dimensions (without the batch) with --shape " + input.getName() + ":D1,D2,...");
        }
      }
    }
    if (!batched) {
      return rest;
    }
    long[] shape = new long[rest.length + 1];
    shape[0] = batch;
    System.arraycopy(rest, 0, shape, 1, rest.length);
    return shape;
  }

  /** One request of random data for every input of the model (seeded: same seed, same bytes). */
  public static ModelInferRequest random(ModelMetadataResponse metadata, String modelName, String modelVersion,
      int batch, Map<String, long[]> shapeOverrides, long seed, int stringLength) {
    SplittableRandom random = new SplittableRandom(seed);
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(modelName).setModelVersion(modelVersion);
    for (TensorMetadata input : metadata.getInputsList()) {
      long[] shape = requestShape(input, batch, shapeOverrides);
      DataType type = dataType(input.getDatatype(), input.getName());
      long elements = elements(shape, input.getName());
      ByteBuffer bytes = type.isFixedSize()
          ? randomFixed(type, checkedSize(elements * type.byteSize(), input.getName()), random)
          : randomStrings(elements, stringLength, random, input.getName());
      addInput(request, input.getName(), type, shape, bytes);
    }
    return request.build();
  }

  /** The requests of a JSON data file, one per entry of its {@code data} array. */
  public static List<ModelInferRequest> fromJson(Path file, ModelMetadataResponse metadata, String modelName,
      String modelVersion, int batch, Map<String, long[]> shapeOverrides) throws IOException {
    Struct.Builder root = Struct.newBuilder();
    JsonFormat.parser().merge(Files.readString(file, StandardCharsets.UTF_8), root);
    Value data = root.getFieldsMap().get("data");
    if (data == null || !data.hasListValue() || data.getListValue().getValuesCount() == 0) {
      throw new IllegalArgumentException(file + ": expected {\"data\": [ {input: values, ...}, ... ]}");
    }
    List<ModelInferRequest> requests = new ArrayList<>();
    for (Value entry : data.getListValue().getValuesList()) {
      if (!entry.hasStructValue()) {
        throw new IllegalArgumentException(file + ": each entry of data must be an object of inputs");
      }
      ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(modelName).setModelVersion(modelVersion);
      for (TensorMetadata input : metadata.getInputsList()) {
        Value value = entry.getStructValue().getFieldsMap().get(input.getName());
        if (value == null) {
          throw new IllegalArgumentException(file + ": an entry has no data for input '" + input.getName() + "'");
        }
        DataType type = dataType(input.getDatatype(), input.getName());
        List<Value> flat = new ArrayList<>();
        long[] shape;
        if (value.hasStructValue()) {
          Map<String, Value> fields = value.getStructValue().getFieldsMap();
          flatten(fields.getOrDefault("content", Value.getDefaultInstance()), flat);
          Value shapeValue = fields.get("shape");
          if (shapeValue != null) {
            List<Value> dims = shapeValue.getListValue().getValuesList();
            shape = new long[dims.size()];
            for (int i = 0; i < shape.length; i++) {
              shape[i] = (long) dims.get(i).getNumberValue();
            }
          } else {
            shape = requestShape(input, batch, shapeOverrides);
          }
        } else {
          flatten(value, flat);
          shape = requestShape(input, batch, shapeOverrides);
        }
        long elements = elements(shape, input.getName());
        if (elements != flat.size()) {
          throw new IllegalArgumentException(file + ": input '" + input.getName() + "' has " + flat.size()
              + " values but shape " + Arrays.toString(shape) + " needs " + elements);
        }
        addInput(request, input.getName(), type, shape, encode(type, flat, input.getName()));
      }
      requests.add(request.build());
    }
    return requests;
  }

  private static void addInput(ModelInferRequest.Builder request, String name, DataType type, long[] shape,
      ByteBuffer bytes) {
    ModelInferRequest.InferInputTensor.Builder tensor = request.addInputsBuilder()
        .setName(name).setDatatype(type.wireName());
    for (long dim : shape) {
      tensor.addShape(dim);
    }
    request.addRawInputContents(ByteString.copyFrom(bytes));
  }

  private static DataType dataType(String wireName, String input) {
    DataType type = DataType.fromWireName(wireName);
    if (type == null) {
      throw new IllegalArgumentException("input '" + input + "' has unknown datatype '" + wireName + "'");
    }
    return type;
  }

  private static long elements(long[] shape, String input) {
    long n = io.quiver.core.Tensor.elementCount(shape);
    if (n < 0 || n == Long.MAX_VALUE) {
      throw new IllegalArgumentException("input '" + input + "' has an unusable shape " + Arrays.toString(shape));
    }
    return n;
  }

  private static int checkedSize(long bytes, String input) {
    if (bytes > MAX_INPUT_BYTES) {
      throw new IllegalArgumentException("input '" + input + "' would be " + bytes + " bytes, over " + MAX_INPUT_BYTES);
    }
    return (int) bytes;
  }

  private static ByteBuffer randomFixed(DataType type, int size, SplittableRandom random) {
    ByteBuffer buffer = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    while (buffer.hasRemaining()) {
      switch (type) {
        case BOOL -> buffer.put((byte) random.nextInt(2));
        case UINT8, INT8 -> buffer.put((byte) random.nextInt(100));
        case UINT16, INT16 -> buffer.putShort((short) random.nextInt(100));
        case UINT32, INT32 -> buffer.putInt(random.nextInt(100));
        case UINT64, INT64 -> buffer.putLong(random.nextInt(100));
        case FP32 -> buffer.putFloat((float) random.nextDouble());
        case FP64 -> buffer.putDouble(random.nextDouble());
        // Half precision: a value in [0.5, 1) (exponent of 0.5, random mantissa bits).
        case FP16 -> buffer.putShort((short) (0x3800 | random.nextInt(0x400)));
        case BF16 -> buffer.putShort((short) (0x3F00 | random.nextInt(0x80)));
        default -> throw new IllegalStateException("not fixed-size: " + type);
      }
    }
    return buffer.flip();
  }

  private static ByteBuffer randomStrings(long elements, int length, SplittableRandom random, String input) {
    ByteBuffer buffer = ByteBuffer.allocate(checkedSize(elements * (4L + length), input)).order(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < elements; i++) {
      buffer.putInt(length);
      for (int c = 0; c < length; c++) {
        buffer.put((byte) ('a' + random.nextInt(26)));
      }
    }
    return buffer.flip();
  }

  private static void flatten(Value value, List<Value> out) {
    if (value.hasListValue()) {
      ListValue list = value.getListValue();
      for (Value v : list.getValuesList()) {
        flatten(v, out);
      }
    } else {
      out.add(value);
    }
  }

  private static ByteBuffer encode(DataType type, List<Value> values, String input) {
    if (!type.isFixedSize()) {
      List<byte[]> strings = new ArrayList<>(values.size());
      long total = 0;
      for (Value v : values) {
        byte[] s = (v.hasStringValue() ? v.getStringValue() : stringOf(v)).getBytes(StandardCharsets.UTF_8);
        strings.add(s);
        total += 4 + s.length;
      }
      ByteBuffer buffer = ByteBuffer.allocate(checkedSize(total, input)).order(ByteOrder.LITTLE_ENDIAN);
      for (byte[] s : strings) {
        buffer.putInt(s.length).put(s);
      }
      return buffer.flip();
    }
    ByteBuffer buffer = ByteBuffer.allocate(checkedSize((long) values.size() * type.byteSize(), input))
        .order(ByteOrder.LITTLE_ENDIAN);
    for (Value v : values) {
      double d = v.hasBoolValue() ? (v.getBoolValue() ? 1 : 0) : v.getNumberValue();
      switch (type) {
        case BOOL -> buffer.put((byte) (d != 0 ? 1 : 0));
        case UINT8, INT8 -> buffer.put((byte) d);
        case UINT16, INT16 -> buffer.putShort((short) d);
        case UINT32, INT32 -> buffer.putInt((int) (long) d);
        case UINT64, INT64 -> buffer.putLong((long) d);
        case FP32 -> buffer.putFloat((float) d);
        case FP64 -> buffer.putDouble(d);
        case FP16 -> buffer.putShort(Half.fp16((float) d));
        case BF16 -> buffer.putShort((short) (Float.floatToIntBits((float) d) >>> 16));
        default -> throw new IllegalStateException("not fixed-size: " + type);
      }
    }
    return buffer.flip();
  }

  private static String stringOf(Value v) {
    if (v.hasNumberValue()) {
      double d = v.getNumberValue();
      return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }
    return v.hasBoolValue() ? Boolean.toString(v.getBoolValue()) : "";
  }

  /** Float to IEEE half conversion (round toward zero; enough for benchmark data). */
  static final class Half {
    private Half() {}

    static short fp16(float f) {
      int bits = Float.floatToIntBits(f);
      int sign = (bits >>> 16) & 0x8000;
      int exponent = ((bits >>> 23) & 0xFF) - 127 + 15;
      int mantissa = (bits >>> 13) & 0x3FF;
      if (exponent <= 0) {
        return (short) sign;
      }
      if (exponent >= 31) {
        return (short) (sign | 0x7C00);
      }
      return (short) (sign | (exponent << 10) | mantissa);
    }
  }
}
