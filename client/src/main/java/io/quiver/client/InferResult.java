package io.quiver.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Status;
import io.quiver.proto.inference.InferTensorContents;
import io.quiver.proto.inference.ModelInferResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The answer to one inference request: the model and version that ran it, the request id, and the
 * output {@link Tensor}s by name, each with its datatype and shape. Outputs wrap the response's bytes
 * without copying them; a server that answers in typed {@code contents} instead of
 * {@code raw_output_contents} (allowed by KServe v2; Triton and Quiver send raw) is read too, converted
 * once. Immutable and thread-safe.
 */
public final class InferResult {
  private final ModelInferResponse proto;

  InferResult(ModelInferResponse proto) {
    this.proto = proto;
  }

  /** Wraps a response received some other way (e.g. through generated stubs). */
  public static InferResult of(ModelInferResponse response) {
    return new InferResult(response);
  }

  public String modelName() {
    return proto.getModelName();
  }

  /** The version that actually ran the request. */
  public String modelVersion() {
    return proto.getModelVersion();
  }

  /** The request's id as echoed by the server. */
  public String id() {
    return proto.getId();
  }

  /** Output names in response order. */
  public List<String> outputNames() {
    List<String> names = new ArrayList<>(proto.getOutputsCount());
    for (ModelInferResponse.InferOutputTensor output : proto.getOutputsList()) {
      names.add(output.getName());
    }
    return Collections.unmodifiableList(names);
  }

  public int outputCount() {
    return proto.getOutputsCount();
  }

  /**
   * The named output.
   *
   * @throws IllegalArgumentException when the response has no output of that name (the message lists those it has)
   * @throws QuiverException INTERNAL when the server sent bytes that do not match the output's shape
   */
  public Tensor output(String name) {
    for (int i = 0; i < proto.getOutputsCount(); i++) {
      if (proto.getOutputs(i).getName().equals(name)) {
        return output(i);
      }
    }
    throw new IllegalArgumentException("the response has no output '" + name + "'; it has " + outputNames());
  }

  /** The output at this index (response order). */
  public Tensor output(int index) {
    ModelInferResponse.InferOutputTensor output = proto.getOutputs(index);
    DataType type = DataType.fromWireName(output.getDatatype());
    if (type == null) {
      throw QuiverException.of(Status.Code.INTERNAL, "output '" + output.getName() + "' has unknown datatype '"
          + output.getDatatype() + "'");
    }
    long[] shape = new long[output.getShapeCount()];
    for (int d = 0; d < shape.length; d++) {
      shape[d] = output.getShape(d);
    }
    ByteString data;
    if (proto.getRawOutputContentsCount() > 0) {
      if (index >= proto.getRawOutputContentsCount()) {
        throw QuiverException.of(Status.Code.INTERNAL, "the response has " + proto.getOutputsCount()
            + " outputs but only " + proto.getRawOutputContentsCount() + " raw_output_contents entries");
      }
      data = proto.getRawOutputContents(index);
    } else {
      data = fromContents(output.getName(), type, output.getContents());
    }
    checkSize(output.getName(), type, shape, data);
    return new Tensor(output.getName(), type, shape, data);
  }

  /** Parsed classification answers of an output asked for with {@link InferRequest.Builder#classification}. */
  public List<Classification> classifications(String output) {
    String[] entries = output(output).toStringArray();
    List<Classification> out = new ArrayList<>(entries.length);
    for (String entry : entries) {
      out.add(Classification.parse(output, entry));
    }
    return out;
  }

  /** The response exactly as received. */
  public ModelInferResponse toProto() {
    return proto;
  }

  @Override
  public String toString() {
    return "InferResult{model=" + proto.getModelName() + ", version=" + proto.getModelVersion()
        + (proto.getId().isEmpty() ? "" : ", id=" + proto.getId()) + ", outputs=" + outputNames() + "}";
  }

  private static void checkSize(String name, DataType type, long[] shape, ByteString data) {
    long elements = Tensor.elementCount(shape);
    if (elements < 0) {
      throw QuiverException.of(Status.Code.INTERNAL, "output '" + name + "' has a negative dimension");
    }
    if (type != DataType.BYTES && elements * type.byteSize() != data.size()) {
      throw QuiverException.of(Status.Code.INTERNAL, "output '" + name + "' is " + type + java.util.Arrays.toString(shape)
          + " (" + elements * type.byteSize() + " bytes) but the server sent " + data.size() + " bytes");
    }
  }

  /** Typed contents to raw little-endian bytes (one copy), for servers that answer that way. */
  private static ByteString fromContents(String name, DataType type, InferTensorContents c) {
    ByteBuffer out;
    switch (type) {
      case BOOL -> {
        out = allocate(c.getBoolContentsCount());
        c.getBoolContentsList().forEach(v -> out.put((byte) (v ? 1 : 0)));
      }
      case INT8, UINT8 -> {
        out = allocate(c.getIntContentsCount() + c.getUintContentsCount());
        c.getIntContentsList().forEach(v -> out.put(v.byteValue()));
        c.getUintContentsList().forEach(v -> out.put(v.byteValue()));
      }
      case INT16, UINT16 -> {
        out = allocate(2 * (c.getIntContentsCount() + c.getUintContentsCount()));
        c.getIntContentsList().forEach(v -> out.putShort(v.shortValue()));
        c.getUintContentsList().forEach(v -> out.putShort(v.shortValue()));
      }
      case INT32 -> {
        out = allocate(4 * c.getIntContentsCount());
        c.getIntContentsList().forEach(out::putInt);
      }
      case UINT32 -> {
        out = allocate(4 * c.getUintContentsCount());
        c.getUintContentsList().forEach(out::putInt);
      }
      case INT64 -> {
        out = allocate(8 * c.getInt64ContentsCount());
        c.getInt64ContentsList().forEach(out::putLong);
      }
      case UINT64 -> {
        out = allocate(8 * c.getUint64ContentsCount());
        c.getUint64ContentsList().forEach(out::putLong);
      }
      case FP32 -> {
        out = allocate(4 * c.getFp32ContentsCount());
        c.getFp32ContentsList().forEach(out::putFloat);
      }
      case FP64 -> {
        out = allocate(8 * c.getFp64ContentsCount());
        c.getFp64ContentsList().forEach(out::putDouble);
      }
      case BYTES -> {
        int total = 0;
        for (ByteString element : c.getBytesContentsList()) {
          total += 4 + element.size();
        }
        out = allocate(total);
        for (ByteString element : c.getBytesContentsList()) {
          out.putInt(element.size());
          element.copyTo(out);
        }
      }
      default -> throw QuiverException.of(Status.Code.INTERNAL, "output '" + name + "' is " + type
          + " but the response has no raw_output_contents (" + type + " has no typed contents field)");
    }
    return UnsafeByteOperations.unsafeWrap(out.array());
  }

  private static ByteBuffer allocate(int bytes) {
    return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** One entry of a classification output: {@code score:index[:label]}. */
  public record Classification(float score, int index, String label) {
    static Classification parse(String output, String entry) {
      String[] parts = entry.split(":", 3);
      try {
        return new Classification(Float.parseFloat(parts[0]), Integer.parseInt(parts[1]), parts.length > 2 ? parts[2] : "");
      } catch (RuntimeException e) {
        throw new IllegalStateException("output '" + output + "' has a classification entry '" + entry
            + "' that is not score:index[:label]", e);
      }
    }
  }
}
