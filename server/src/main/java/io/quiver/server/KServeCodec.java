package io.quiver.server;

import com.google.protobuf.ByteString;
import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.InferTensorContents;
import io.quiver.proto.inference.ModelInferRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Translates the protocol's ModelInfer requests into Quiver's tensors (answers are written by
 * {@link InferResponseStream}). Stateless and thread-safe. Raw inputs are wrapped, not copied; typed
 * {@code contents} are converted once into little-endian bytes.
 */
final class KServeCodec {
  /** Request parameters with a meaning for the protocol. */
  static final String PARAM_PRIORITY = "priority";
  static final String PARAM_TIMEOUT = "timeout";
  static final String PARAM_SEQUENCE_ID = "sequence_id";

  private KServeCodec() {}

  /** Decodes the request's inputs (not yet checked against a model: see RequestValidator). */
  static List<Tensor> decodeInputs(ModelInferRequest request) {
    int count = request.getInputsCount();
    int rawCount = request.getRawInputContentsCount();
    boolean raw = rawCount > 0;
    if (raw && rawCount != count) {
      throw InferenceException.invalidField("raw_input_contents",
          "raw_input_contents has %d entries but the request has %d inputs; they must match one to one",
          rawCount, count);
    }
    List<Tensor> tensors = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      ModelInferRequest.InferInputTensor input = request.getInputs(i);
      String name = input.getName();
      DataType type = DataType.fromWireName(input.getDatatype());
      if (type == null) {
        throw InferenceException.invalidField("inputs[" + name + "].datatype",
            "input '%s' has unknown datatype '%s'", name, input.getDatatype());
      }
      long[] shape = toShape(input.getShapeList());
      ByteBuffer data;
      if (raw) {
        if (input.hasContents() && hasAnyContents(input.getContents())) {
          throw InferenceException.invalidField("inputs[" + name + "].contents",
              "input '%s' has typed contents while the request uses raw_input_contents; use one or the other", name);
        }
        data = request.getRawInputContents(i).asReadOnlyByteBuffer();
      } else {
        data = fromContents(name, type, shape, input.getContents());
      }
      tensors.add(new Tensor(name, type, shape, data));
    }
    return tensors;
  }

  /** Names of the requested outputs, in request order (empty = all). */
  static List<String> requestedOutputs(ModelInferRequest request) {
    int n = request.getOutputsCount();
    if (n == 0) {
      return List.of();
    }
    List<String> names = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      ModelInferRequest.InferRequestedOutputTensor output = request.getOutputs(i);
      if (output.getParametersMap().containsKey("classification")) {
        throw InferenceException.invalidField("outputs[" + output.getName() + "].parameters",
            "output '%s' asks for classification, which Quiver does not support", output.getName());
      }
      names.add(output.getName());
    }
    return names;
  }

  /** The `priority` parameter: 0 (model default) when absent. */
  static int priority(ModelInferRequest request) {
    InferParameter p = request.getParametersMap().get(PARAM_PRIORITY);
    if (p == null) {
      return 0;
    }
    long value = integerParam(PARAM_PRIORITY, p);
    if (value < 0 || value > Integer.MAX_VALUE) {
      throw InferenceException.invalidField("parameters[priority]", "priority must be >= 0; was %d", value);
    }
    return (int) value;
  }

  /** The `timeout` parameter in microseconds: 0 when absent. */
  static long timeoutMicros(ModelInferRequest request) {
    InferParameter p = request.getParametersMap().get(PARAM_TIMEOUT);
    if (p == null) {
      return 0;
    }
    long value = integerParam(PARAM_TIMEOUT, p);
    if (value < 0) {
      throw InferenceException.invalidField("parameters[timeout]", "timeout must be >= 0 microseconds; was %d", value);
    }
    return value;
  }

  /**
   * Rejects parameters that ask for features Quiver does not have, rather than ignoring them, and unknown
   * reserved keys ({@link io.quiver.core.RequestParameters}: custom keys are accepted, as Triton does).
   */
  static void checkUnsupportedParameters(ModelInferRequest request) {
    Map<String, InferParameter> params = request.getParametersMap();
    if (!params.isEmpty()) {
      io.quiver.core.RequestParameters.checkKeys(params.keySet(), "parameters");
    }
    InferParameter sequence = params.get(PARAM_SEQUENCE_ID);
    if (sequence != null && (sequence.getInt64Param() != 0 || sequence.getUint64Param() != 0
        || !sequence.getStringParam().isEmpty())) {
      throw InferenceException.invalidField("parameters[sequence_id]",
          "sequence batching is not supported: sequence_id must be absent or 0");
    }
  }

  static long[] toShape(List<Long> dims) {
    long[] shape = new long[dims.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = dims.get(i);
    }
    return shape;
  }

  private static long integerParam(String name, InferParameter p) {
    return switch (p.getParameterChoiceCase()) {
      case INT64_PARAM -> p.getInt64Param();
      case UINT64_PARAM -> p.getUint64Param();
      default -> throw InferenceException.invalidField("parameters[" + name + "]",
          "parameter '%s' must be an integer (int64_param or uint64_param); was %s", name, p.getParameterChoiceCase());
    };
  }

  private static boolean hasAnyContents(InferTensorContents c) {
    return c.getBoolContentsCount() + c.getIntContentsCount() + c.getInt64ContentsCount() + c.getUintContentsCount()
        + c.getUint64ContentsCount() + c.getFp32ContentsCount() + c.getFp64ContentsCount()
        + c.getBytesContentsCount() > 0;
  }

  /** Converts typed contents into little-endian bytes, checking the count against the shape first. */
  private static ByteBuffer fromContents(String name, DataType type, long[] shape, InferTensorContents c) {
    int given = switch (type) {
      case BOOL -> c.getBoolContentsCount();
      case INT8, INT16, INT32 -> c.getIntContentsCount();
      case INT64 -> c.getInt64ContentsCount();
      case UINT8, UINT16, UINT32 -> c.getUintContentsCount();
      case UINT64 -> c.getUint64ContentsCount();
      case FP32 -> c.getFp32ContentsCount();
      case FP64 -> c.getFp64ContentsCount();
      case BYTES -> c.getBytesContentsCount();
      case FP16, BF16 -> throw InferenceException.invalidField("inputs[" + name + "].contents",
          "input '%s' is %s, which has no typed contents field: send it in raw_input_contents", name, type.wireName());
    };
    if (hasAnyContents(c) && given == 0) {
      throw InferenceException.invalidField("inputs[" + name + "].contents",
          "input '%s' is %s but its contents are in a field for another datatype", name, type.wireName());
    }
    long expected = Tensor.elementCount(shape);
    if (expected != given) {
      throw InferenceException.invalidField("inputs[" + name + "].contents",
          "input '%s' has %d values in contents, but shape %s needs %s", name, given, Arrays.toString(shape),
          expected < 0 ? "a non-negative shape" : String.valueOf(expected));
    }
    if (type == DataType.BYTES) {
      List<byte[]> elements = new ArrayList<>(given);
      for (ByteString element : c.getBytesContentsList()) {
        elements.add(element.toByteArray());
      }
      return io.quiver.core.BytesElements.encode(elements);
    }
    ByteBuffer out = ByteBuffer.allocate(given * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < given; i++) {
      switch (type) {
        case BOOL -> out.put((byte) (c.getBoolContents(i) ? 1 : 0));
        case INT8 -> out.put((byte) checkRange(name, c.getIntContents(i), Byte.MIN_VALUE, Byte.MAX_VALUE));
        case INT16 -> out.putShort((short) checkRange(name, c.getIntContents(i), Short.MIN_VALUE, Short.MAX_VALUE));
        case INT32 -> out.putInt(c.getIntContents(i));
        case INT64 -> out.putLong(c.getInt64Contents(i));
        case UINT8 -> out.put((byte) checkRange(name, Integer.toUnsignedLong(c.getUintContents(i)), 0, 0xFF));
        case UINT16 -> out.putShort((short) checkRange(name, Integer.toUnsignedLong(c.getUintContents(i)), 0, 0xFFFF));
        case UINT32 -> out.putInt(c.getUintContents(i));
        case UINT64 -> out.putLong(c.getUint64Contents(i));
        case FP32 -> out.putFloat(c.getFp32Contents(i));
        case FP64 -> out.putDouble(c.getFp64Contents(i));
        default -> throw new AssertionError(type);
      }
    }
    return out.flip();
  }

  private static long checkRange(String name, long value, long min, long max) {
    if (value < min || value > max) {
      throw InferenceException.invalidField("inputs[" + name + "].contents",
          "input '%s' has value %d, outside the datatype's range [%d, %d]", name, value, min, max);
    }
    return value;
  }
}
