package io.quiver.server;

import com.google.protobuf.ByteString;
import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.SequenceControl;
import io.quiver.server.shm.SharedMemoryRegistry;
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
  static final String PARAM_SEQUENCE_START = "sequence_start";
  static final String PARAM_SEQUENCE_END = "sequence_end";
  static final String PARAM_CLASSIFICATION = "classification";
  static final String PARAM_SHM_REGION = "shared_memory_region";
  static final String PARAM_SHM_OFFSET = "shared_memory_offset";
  static final String PARAM_SHM_BYTE_SIZE = "shared_memory_byte_size";

  private KServeCodec() {}

  /** Decodes the request's inputs without shared memory (tests, benchmarks). */
  static List<Tensor> decodeInputs(ModelInferRequest request) {
    return decodeInputs(request, null, null, OutputPlan.forOutputs(0));
  }

  /**
   * Decodes the request's inputs (not yet checked against a model: see RequestValidator). Inputs with a
   * {@code shared_memory_region} are views of the registered region (no copy); their leases go into
   * {@code plan}, which the caller releases. {@code raw_input_contents} holds one entry per input that is
   * not in shared memory, in input order (Triton's rule).
   */
  static List<Tensor> decodeInputs(ModelInferRequest request, SharedMemoryRegistry shm, String owner, OutputPlan plan) {
    int count = request.getInputsCount();
    int rawCount = request.getRawInputContentsCount();
    boolean raw = rawCount > 0;
    int inShm = 0;
    for (int i = 0; i < count; i++) {
      if (request.getInputs(i).getParametersMap().containsKey(PARAM_SHM_REGION)) {
        inShm++;
      }
    }
    if (raw && rawCount != count - inShm) {
      throw InferenceException.invalidField("raw_input_contents",
          "raw_input_contents has %d entries but the request has %d inputs%s; they must match one to one",
          rawCount, count - inShm, inShm > 0 ? " not in shared memory" : "");
    }
    List<Tensor> tensors = new ArrayList<>(count);
    int rawIndex = 0;
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
      SharedMemoryRef region = sharedMemory("input", name, input.getParametersMap());
      if (region != null) {
        if (input.hasContents() && hasAnyContents(input.getContents())) {
          throw InferenceException.invalidField("inputs[" + name + "].contents", "unexpected 'content' provided when"
              + " using shared memory for input tensor '%s' for model '%s'", name, request.getModelName());
        }
        SharedMemoryRegistry.Lease lease = lease(shm, owner, region, name);
        plan.holdInput(lease);
        data = lease.buffer();
      } else if (raw) {
        if (input.hasContents() && hasAnyContents(input.getContents())) {
          throw InferenceException.invalidField("inputs[" + name + "].contents",
              "input '%s' has typed contents while the request uses raw_input_contents; use one or the other", name);
        }
        data = request.getRawInputContents(rawIndex++).asReadOnlyByteBuffer();
      } else {
        data = fromContents(name, type, shape, input.getContents());
      }
      tensors.add(new Tensor(name, type, shape, data));
    }
    return tensors;
  }

  /** Names of the requested outputs, in request order (empty = all); no extension may be asked (tests). */
  static List<String> requestedOutputs(ModelInferRequest request) {
    return requestedOutputs(request, null, null, OutputPlan.forOutputs(request.getOutputsCount()));
  }

  /**
   * Names of the requested outputs, in request order (empty = all), noting in {@code plan} those asked as
   * classification ({@code classification}: an int64 k > 0) or into shared memory.
   */
  static List<String> requestedOutputs(ModelInferRequest request, SharedMemoryRegistry shm, String owner,
      OutputPlan plan) {
    int n = request.getOutputsCount();
    if (n == 0) {
      return List.of();
    }
    List<String> names = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      ModelInferRequest.InferRequestedOutputTensor output = request.getOutputs(i);
      String name = output.getName();
      Map<String, InferParameter> params = output.getParametersMap();
      InferParameter classes = params.get(PARAM_CLASSIFICATION);
      SharedMemoryRef region = sharedMemory("output", name, params);
      if (classes != null && region != null) {
        throw InferenceException.invalidField("outputs[" + name + "].parameters",
            "output can't set both 'shared_memory_region' and 'classification'");
      }
      if (classes != null) {
        if (classes.getParameterChoiceCase() != InferParameter.ParameterChoiceCase.INT64_PARAM) {
          throw InferenceException.invalidField("outputs[" + name + "].parameters[classification]",
              "invalid value type for 'classification' parameter, expected int64_param");
        }
        long k = classes.getInt64Param();
        if (k <= 0 || k > Integer.MAX_VALUE) {
          throw InferenceException.invalidField("outputs[" + name + "].parameters[classification]",
              "invalid value for 'classification' parameter, expected > 0; was %d", k);
        }
        plan.classify(i, (int) k);
      }
      if (region != null) {
        plan.writeTo(i, lease(shm, owner, region, name));
      }
      names.add(name);
    }
    return names;
  }

  /** A tensor's shared-memory parameters: region, offset, byte size. */
  record SharedMemoryRef(String region, long offset, long byteSize) {}

  /** Triton's rules: a string region, int64 offset and byte size, the byte size required with the region. */
  private static SharedMemoryRef sharedMemory(String kind, String tensor, Map<String, InferParameter> params) {
    InferParameter region = params.get(PARAM_SHM_REGION);
    InferParameter offset = params.get(PARAM_SHM_OFFSET);
    InferParameter size = params.get(PARAM_SHM_BYTE_SIZE);
    String field = kind + "s[" + tensor + "].parameters";
    if (region == null) {
      if (offset != null || size != null) {
        throw InferenceException.invalidField(field, "'%s' can not be specified without 'shared_memory_region'"
            + " parameter for tensor '%s'", offset != null ? PARAM_SHM_OFFSET : PARAM_SHM_BYTE_SIZE, tensor);
      }
      return null;
    }
    if (region.getParameterChoiceCase() != InferParameter.ParameterChoiceCase.STRING_PARAM) {
      throw InferenceException.invalidField(field, "invalid value type for 'shared_memory_region' parameter for tensor"
          + " '%s', expected string_param.", tensor);
    }
    if (size == null) {
      throw InferenceException.invalidField(field, "'shared_memory_byte_size' must be specified along with"
          + " 'shared_memory_region' parameter for tensor '%s'", tensor);
    }
    return new SharedMemoryRef(region.getStringParam(), offset == null ? 0 : int64(PARAM_SHM_OFFSET, tensor, field, offset),
        int64(PARAM_SHM_BYTE_SIZE, tensor, field, size));
  }

  private static long int64(String param, String tensor, String field, InferParameter p) {
    if (p.getParameterChoiceCase() != InferParameter.ParameterChoiceCase.INT64_PARAM) {
      throw InferenceException.invalidField(field, "invalid value type for '%s' parameter for tensor '%s', expected"
          + " int64_param.", param, tensor);
    }
    return p.getInt64Param();
  }

  /** A lease on a request's part of a region; UNIMPLEMENTED-like refusal when shared memory is off. */
  static SharedMemoryRegistry.Lease lease(SharedMemoryRegistry shm, String owner, SharedMemoryRef ref, String tensor) {
    if (shm == null) {
      throw InferenceException.invalidField("parameters[shared_memory_region]", "tensor '%s' names shared memory region"
          + " '%s', but system shared memory is not available on this server (no %s)", tensor, ref.region(),
          SharedMemoryRegistry.DEFAULT_ROOT);
    }
    return shm.lease(ref.region(), ref.offset(), ref.byteSize(), owner, tensor);
  }

  /**
   * The request's sequence (Triton's {@code sequence_id} as int64, uint64 or string, with the bool
   * {@code sequence_start} and {@code sequence_end}), or null when it names none (absent, 0 or "").
   */
  static SequenceControl sequence(ModelInferRequest request) {
    Map<String, InferParameter> params = request.getParametersMap();
    InferParameter id = params.get(PARAM_SEQUENCE_ID);
    boolean start = flag(params, PARAM_SEQUENCE_START);
    boolean end = flag(params, PARAM_SEQUENCE_END);
    if (id == null) {
      return null;
    }
    return switch (id.getParameterChoiceCase()) {
      case INT64_PARAM -> id.getInt64Param() == 0 ? null : SequenceControl.numeric(id.getInt64Param(), start, end);
      case UINT64_PARAM -> id.getUint64Param() == 0 ? null : SequenceControl.numeric(id.getUint64Param(), start, end);
      case STRING_PARAM -> id.getStringParam().isEmpty() ? null : SequenceControl.string(id.getStringParam(), start, end);
      default -> throw InferenceException.invalidField("parameters[sequence_id]",
          "sequence_id must be an integer (int64_param or uint64_param) or a string (string_param); was %s",
          id.getParameterChoiceCase());
    };
  }

  private static boolean flag(Map<String, InferParameter> params, String name) {
    InferParameter p = params.get(name);
    if (p == null) {
      return false;
    }
    if (p.getParameterChoiceCase() != InferParameter.ParameterChoiceCase.BOOL_PARAM) {
      throw InferenceException.invalidField("parameters[" + name + "]", "parameter '%s' must be a bool (bool_param);"
          + " was %s", name, p.getParameterChoiceCase());
    }
    return p.getBoolParam();
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
   * Rejects unknown reserved parameter keys ({@link io.quiver.core.RequestParameters}: custom keys are
   * accepted, as Triton does).
   */
  static void checkUnsupportedParameters(ModelInferRequest request) {
    Map<String, InferParameter> params = request.getParametersMap();
    if (!params.isEmpty()) {
      io.quiver.core.RequestParameters.checkKeys(params.keySet(), "parameters");
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
