package io.quiver.server.http;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.SequenceControl;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.server.OutputPlan;
import io.quiver.server.shm.SharedMemoryRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Translates KServe v2 REST inference requests and responses (JSON, with Triton's binary tensor
 * extension) to and from Quiver's tensors. Stateless and thread-safe.
 *
 * <p>JSON {@code data} may be flat or nested (row-major); BYTES elements are strings (UTF-8);
 * FP16/BF16 are numbers converted with round-to-nearest-even. Binary inputs are copied once out of
 * the request body; binary outputs are written straight after the JSON header.
 *
 * <p>Public for batch jobs (io.quiver.server.jobs), whose JSON Lines records are REST requests and
 * whose results are REST responses: one codec for both.
 */
public final class RestInferCodec {
  /**
   * Numbers go through Jackson's fast double parser, which reads them from the parser's own buffer: the
   * default parser builds a String per number first (a request's data is mostly numbers; in a batch job
   * that String and its parse were a quarter of the server's allocation).
   */
  public static final ObjectMapper JSON = new ObjectMapper(
      JsonFactory.builder().enable(StreamReadFeature.USE_FAST_DOUBLE_PARSER).build());
  static final JsonFactory FACTORY = JSON.getFactory();
  static final BigInteger UINT64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

  private RestInferCodec() {}

  /** A decoded inference request, not yet checked against a model (RequestValidator does that). */
  public record Decoded(String id, List<Tensor> inputs, List<String> outputs, List<Boolean> binaryOutputs,
      boolean binaryAll, int priority, long timeoutMicros, SequenceControl sequence, OutputPlan plan) {
    /** A request without a sequence and without classification or shared memory (batch jobs). */
    public Decoded(String id, List<Tensor> inputs, List<String> outputs, List<Boolean> binaryOutputs,
        boolean binaryAll, int priority, long timeoutMicros) {
      this(id, inputs, outputs, binaryOutputs, binaryAll, priority, timeoutMicros, null, OutputPlan.PLAIN);
    }

    /** Whether output {@code name} goes in the binary section. */
    public boolean binary(String name) {
      int i = outputs.indexOf(name);
      if (i >= 0 && binaryOutputs.get(i) != null) {
        return binaryOutputs.get(i);
      }
      return binaryAll;
    }
  }

  /**
   * A request's fields as read from its JSON, not yet checked ({@link #decode(Parsed, ByteBuffer)} does
   * that). An input's {@code data} is read straight into its tensor's bytes ({@link JsonTensorData})
   * when the input names a known datatype before its data, as clients write it; otherwise it is kept as
   * a tree and read as one. Unknown fields are skipped. Made by {@link #parse}; one thread at a time.
   */
  public static final class Parsed {
    private JsonNode id;
    private JsonNode parameters;
    private List<ParsedInput> inputs; // 'inputs' when it is an array (null otherwise: decode refuses it)
    private JsonNode outputs;

    private Parsed() {}

    /** The request's own id when it has a non-empty string one, else null (for reports of a failed decode). */
    public String ownId() {
      return id != null && id.isTextual() && !id.textValue().isEmpty() ? id.textValue() : null;
    }
  }

  /**
   * One entry of 'inputs' as read: the fields the decoder looks at (others are skipped), each as it
   * came, for the decoder's checks and messages. A repeated field replaces the earlier one, as in a tree.
   */
  private static final class ParsedInput {
    JsonNode notAnObject; // the entry itself when it is not an object (the decoder refuses it)
    JsonNode name;
    JsonNode datatype;
    long[] dims; // the shape when it is a list of integers...
    JsonNode shape; // ...or what it was instead
    JsonNode parameters;
    JsonNode data; // data read as a tree (its datatype was not known yet)...
    JsonTensorData streamed; // ...or read into the tensor's bytes

    boolean hasData() {
      return data != null || streamed != null;
    }
  }

  /**
   * Reads one request object from the parser, which must not have read anything yet.
   *
   * @return the request's fields, or null when the JSON is not an object (or is empty)
   * @throws IOException the JSON is malformed ({@link com.fasterxml.jackson.core.JsonProcessingException})
   *     or cannot be read
   */
  public static Parsed parse(JsonParser p) throws IOException {
    if (p.nextToken() != JsonToken.START_OBJECT) {
      return null;
    }
    Parsed request = new Parsed();
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken value = p.nextToken();
      switch (field) {
        case "id" -> request.id = readNode(p);
        case "parameters" -> request.parameters = readNode(p);
        case "outputs" -> request.outputs = readNode(p);
        case "inputs" -> {
          if (value == JsonToken.START_ARRAY) {
            request.inputs = parseInputs(p);
          } else {
            request.inputs = null;
            p.skipChildren();
          }
        }
        default -> p.skipChildren();
      }
    }
    return request;
  }

  private static List<ParsedInput> parseInputs(JsonParser p) throws IOException {
    List<ParsedInput> inputs = new ArrayList<>(2);
    while (p.nextToken() != JsonToken.END_ARRAY) {
      if (p.currentToken() == JsonToken.START_OBJECT) {
        inputs.add(parseInput(p));
      } else {
        ParsedInput input = new ParsedInput();
        input.notAnObject = readNode(p);
        inputs.add(input);
      }
    }
    return inputs;
  }

  private static ParsedInput parseInput(JsonParser p) throws IOException {
    ParsedInput input = new ParsedInput();
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      p.nextToken();
      switch (field) {
        case "name" -> input.name = readNode(p);
        case "datatype" -> input.datatype = readNode(p);
        case "shape" -> parseShape(p, input);
        case "parameters" -> input.parameters = readNode(p);
        case "data" -> {
          DataType type = input.datatype != null && input.datatype.isTextual()
              ? DataType.fromWireName(input.datatype.textValue()) : null;
          if (type != null) {
            input.streamed = JsonTensorData.read(p, type, input.dims == null ? -1 : Tensor.elementCount(input.dims));
            input.data = null;
          } else {
            input.data = readNode(p);
            input.streamed = null;
          }
        }
        default -> p.skipChildren();
      }
    }
    return input;
  }

  /** A shape of integers becomes {@code dims}; anything else is kept as a tree for the decoder's message. */
  private static void parseShape(JsonParser p, ParsedInput input) throws IOException {
    input.dims = null;
    input.shape = null;
    if (p.currentToken() != JsonToken.START_ARRAY) {
      input.shape = readNode(p);
      return;
    }
    long[] dims = new long[4];
    int n = 0;
    JsonToken token;
    while ((token = p.nextToken()) != JsonToken.END_ARRAY) {
      if (token != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
        ArrayNode shape = JSON.getNodeFactory().arrayNode();
        for (int i = 0; i < n; i++) {
          shape.add(dims[i]);
        }
        shape.add(readNode(p));
        while (p.nextToken() != JsonToken.END_ARRAY) {
          shape.add(readNode(p));
        }
        input.shape = shape;
        return;
      }
      if (n == dims.length) {
        dims = Arrays.copyOf(dims, 2 * n);
      }
      dims[n++] = p.getLongValue();
    }
    input.dims = Arrays.copyOf(dims, n);
  }

  /**
   * The value at the parser's current token as a tree, leaving the parser on its last token: what
   * {@code JSON.readTree(p)} makes (the same node types), without the deserialization context it
   * builds per call (for an id, a name and a datatype per input, that context was most of a small
   * request's allocation).
   */
  static JsonNode readNode(JsonParser p) throws IOException {
    JsonNodeFactory nodes = JSON.getNodeFactory();
    switch (p.currentToken()) {
      case VALUE_STRING:
        return nodes.textNode(p.getText());
      case VALUE_NUMBER_INT:
        return switch (p.getNumberType()) {
          case INT -> nodes.numberNode(p.getIntValue());
          case LONG -> nodes.numberNode(p.getLongValue());
          default -> nodes.numberNode(p.getBigIntegerValue());
        };
      case VALUE_NUMBER_FLOAT:
        return nodes.numberNode(p.getDoubleValue());
      case VALUE_TRUE:
        return nodes.booleanNode(true);
      case VALUE_FALSE:
        return nodes.booleanNode(false);
      case VALUE_NULL:
        return nodes.nullNode();
      case START_ARRAY: {
        ArrayNode array = nodes.arrayNode();
        while (p.nextToken() != JsonToken.END_ARRAY) {
          array.add(readNode(p));
        }
        return array;
      }
      case START_OBJECT: {
        ObjectNode object = nodes.objectNode();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          p.nextToken();
          object.set(field, readNode(p)); // a repeated field replaces the earlier one, as in JSON.readTree
        }
        return object;
      }
      default:
        throw new JsonParseException(p, "unexpected token " + p.currentToken());
    }
  }

  /** Decodes without shared memory (batch jobs, monitoring, tests). */
  public static Decoded decode(Parsed request, ByteBuffer binary) {
    return decode(request, binary, null, null);
  }

  /**
   * @param request the request's fields, from {@link #parse}
   * @param binary the bytes after the JSON header (empty when there are none)
   * @param shm the shared memory regions (null when the server has none)
   * @param owner the caller owning regions it registered (null when security is off)
   */
  static Decoded decode(Parsed request, ByteBuffer binary, SharedMemoryRegistry shm, String owner) {
    OutputPlan plan = usesExtensions(request) ? OutputPlan.forOutputs(outputCount(request.outputs))
        : OutputPlan.PLAIN;
    try {
      return decode(request, binary, shm, owner, plan);
    } catch (RuntimeException e) {
      plan.release();
      throw e;
    }
  }

  private static int outputCount(JsonNode outputs) {
    return outputs != null && outputs.isArray() ? outputs.size() : 0;
  }

  /** Whether an input or output names shared memory or classification (then the request gets its own plan). */
  private static boolean usesExtensions(Parsed request) {
    if (request.inputs != null) {
      for (ParsedInput input : request.inputs) {
        if (usesExtensions(input.parameters)) {
          return true;
        }
      }
    }
    if (request.outputs != null && request.outputs.isArray()) {
      for (JsonNode output : request.outputs) {
        if (usesExtensions(output.get("parameters"))) {
          return true;
        }
      }
    }
    return false;
  }

  private static boolean usesExtensions(JsonNode parameters) {
    return parameters != null && parameters.isObject()
        && (parameters.has("shared_memory_region") || parameters.has("classification"));
  }

  private static Decoded decode(Parsed request, ByteBuffer binary, SharedMemoryRegistry shm, String owner,
      OutputPlan plan) {
    String id = "";
    JsonNode idNode = request.id;
    if (idNode != null && !idNode.isNull()) {
      if (!idNode.isTextual()) {
        throw InferenceException.invalidField("id", "'id' must be a string; was %s", idNode.getNodeType());
      }
      id = idNode.textValue();
    }
    JsonNode params = request.parameters;
    int priority = 0;
    long timeout = 0;
    boolean binaryAll = false;
    SequenceControl sequence = null;
    if (params != null && !params.isNull()) {
      if (!params.isObject()) {
        throw InferenceException.invalidField("parameters", "'parameters' must be an object");
      }
      io.quiver.core.RequestParameters.checkKeys(params::fieldNames, "parameters");
      priority = (int) integerParam(params, "priority", Integer.MAX_VALUE);
      timeout = integerParam(params, "timeout", Long.MAX_VALUE);
      binaryAll = booleanParam(params, "binary_data_output", "parameters");
      sequence = sequence(params);
    }
    if (request.inputs == null) {
      throw InferenceException.invalidField("inputs", "the request needs an 'inputs' array");
    }
    List<Tensor> inputs = new ArrayList<>(request.inputs.size());
    ByteBuffer rest = binary.hasRemaining() ? binary.duplicate() : binary; // nothing to consume: no copy to move
    for (ParsedInput input : request.inputs) {
      inputs.add(decodeInput(input, rest, shm, owner, plan));
    }
    if (rest.hasRemaining()) {
      throw InferenceException.invalidField("binary_data_size",
          "the request has %d bytes of binary tensor data that no input's binary_data_size accounts for",
          rest.remaining());
    }
    List<String> outputs = List.of(); // none named: the model's outputs, all of them
    List<Boolean> binaryOutputs = List.of();
    JsonNode outputsNode = request.outputs;
    if (outputsNode != null && !outputsNode.isNull()) {
      if (!outputsNode.isArray()) {
        throw InferenceException.invalidField("outputs", "'outputs' must be an array");
      }
      outputs = new ArrayList<>(outputsNode.size());
      binaryOutputs = new ArrayList<>(outputsNode.size());
      int j = 0;
      for (JsonNode output : outputsNode) {
        String name = text(output, "name", "outputs[].name");
        JsonNode p = output.get("parameters");
        Boolean binaryOut = null;
        if (p != null && p.isObject()) {
          String field = "outputs[" + name + "].parameters";
          if (p.has("binary_data")) {
            binaryOut = booleanParam(p, "binary_data", field);
          }
          KServeSharedMemory region = sharedMemory(p, name, field);
          if (region != null) {
            // Triton: shared memory excludes classification and binary data on the same output.
            if (p.has("classification")) {
              throw InferenceException.invalidField(field, "Output can't set both 'shared_memory_region' and"
                  + " 'classification'");
            }
            if (Boolean.TRUE.equals(binaryOut)) {
              throw InferenceException.invalidField(field, "Output can't set both 'shared_memory_region' and"
                  + " 'binary_data'");
            }
            plan.writeTo(j, lease(shm, owner, region, name));
          }
          if (p.has("classification")) {
            JsonNode k = p.get("classification");
            if (!k.isIntegralNumber() || !k.canConvertToInt() || k.intValue() <= 0) {
              throw InferenceException.invalidField(field + "[classification]",
                  "Unable to set 'classification': it must be an integer > 0; was %s", abbreviate(k));
            }
            plan.classify(j, k.intValue());
          }
        }
        outputs.add(name);
        binaryOutputs.add(binaryOut);
        j++;
      }
    }
    return new Decoded(id, inputs, outputs, binaryOutputs, binaryAll, priority, timeout, sequence, plan);
  }

  /** Triton's sequence parameters: sequence_id a number or a string, sequence_start and sequence_end booleans. */
  private static SequenceControl sequence(JsonNode params) {
    JsonNode id = params.get("sequence_id");
    boolean start = booleanParam(params, "sequence_start", "parameters");
    boolean end = booleanParam(params, "sequence_end", "parameters");
    if (id == null || id.isNull()) {
      return null;
    }
    if (id.isIntegralNumber()) {
      java.math.BigInteger v = id.bigIntegerValue();
      if (v.signum() < 0 || v.compareTo(UINT64_MAX) > 0) {
        throw InferenceException.invalidField("parameters[sequence_id]",
            "sequence_id must be an unsigned 64-bit integer or a string; was %s", abbreviate(id));
      }
      return v.signum() == 0 ? null : SequenceControl.numeric(v.longValue(), start, end);
    }
    if (id.isTextual()) {
      return id.textValue().isEmpty() ? null : SequenceControl.string(id.textValue(), start, end);
    }
    throw InferenceException.invalidField("parameters[sequence_id]",
        "sequence_id must be an unsigned 64-bit integer or a string; was %s", abbreviate(id));
  }

  /** A tensor's shared-memory parameters. */
  record KServeSharedMemory(String region, long offset, long byteSize) {}

  /** Triton's REST rules: region a string, offset and byte size unsigned integers, byte size required. */
  private static KServeSharedMemory sharedMemory(JsonNode p, String tensor, String field) {
    JsonNode region = p.get("shared_memory_region");
    JsonNode offset = p.get("shared_memory_offset");
    JsonNode size = p.get("shared_memory_byte_size");
    if (region == null) {
      if (offset != null || size != null) {
        throw InferenceException.invalidField(field, "'%s' can not be specified without 'shared_memory_region' parameter"
            + " for tensor '%s'", offset != null ? "shared_memory_offset" : "shared_memory_byte_size", tensor);
      }
      return null;
    }
    if (!region.isTextual()) {
      throw InferenceException.invalidField(field, "Unable to parse 'shared_memory_region' of tensor '%s': a string is"
          + " expected", tensor);
    }
    if (size == null) {
      throw InferenceException.invalidField(field, "'shared_memory_byte_size' must be specified along with"
          + " 'shared_memory_region' parameter for tensor '%s'", tensor);
    }
    return new KServeSharedMemory(region.textValue(), offset == null ? 0 : unsigned(offset, "shared_memory_offset", field),
        unsigned(size, "shared_memory_byte_size", field));
  }

  private static long unsigned(JsonNode v, String name, String field) {
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
      throw InferenceException.invalidField(field, "Unable to parse '%s': a non-negative integer is expected; was %s",
          name, abbreviate(v));
    }
    return v.longValue();
  }

  private static SharedMemoryRegistry.Lease lease(SharedMemoryRegistry shm, String owner, KServeSharedMemory ref,
      String tensor) {
    if (shm == null) {
      throw InferenceException.invalidField("parameters[shared_memory_region]", "tensor '%s' names shared memory region"
          + " '%s', but system shared memory is not available on this server", tensor, ref.region());
    }
    return shm.lease(ref.region(), ref.offset(), ref.byteSize(), owner, tensor);
  }

  private static Tensor decodeInput(ParsedInput input, ByteBuffer binary, SharedMemoryRegistry shm, String owner,
      OutputPlan plan) {
    if (input.notAnObject != null) {
      throw InferenceException.invalidField("inputs", "each entry of 'inputs' must be an object");
    }
    String name = textValue(input.name, "name", "inputs[].name");
    if (input.datatype == null || !input.datatype.isTextual()) {
      textValue(input.datatype, "datatype", "inputs[" + name + "].datatype"); // throws
    }
    String typeName = input.datatype.textValue();
    DataType type = DataType.fromWireName(typeName);
    if (type == null) {
      throw InferenceException.invalidField("inputs[" + name + "].datatype",
          "input '%s' has unknown datatype '%s'", name, typeName);
    }
    long[] shape = input.dims;
    if (shape == null) {
      JsonNode shapeNode = input.shape;
      if (shapeNode == null || !shapeNode.isArray()) {
        throw InferenceException.invalidField("inputs[" + name + "].shape", "input '%s' needs a 'shape' array", name);
      }
      for (JsonNode dim : shapeNode) {
        if (!dim.isIntegralNumber() || !dim.canConvertToLong()) {
          throw InferenceException.invalidField("inputs[" + name + "].shape",
              "input '%s' has a shape entry that is not an integer: %s", name, dim);
        }
      }
      throw new AssertionError("a shape of integers is read as dims"); // parseShape keeps only other shapes
    }
    JsonTensorData streamed = input.streamed;
    JsonNode params = input.parameters;
    JsonNode sizeNode = params == null ? null : params.get("binary_data_size");
    KServeSharedMemory region = params == null || !params.isObject() ? null
        : sharedMemory(params, name, "inputs[" + name + "].parameters");
    boolean hasData = input.hasData();
    if (region != null) {
      if (sizeNode != null || hasData) {
        throw InferenceException.invalidField("inputs[" + name + "]", "Input must set only one of the following fields:"
            + " 'data', 'binary_data_size' in 'parameters', 'shared_memory_region' in 'parameters'. But set%s%s"
            + " 'shared_memory_region'", hasData ? " 'data'" : "", sizeNode != null ? " 'binary_data_size'" : "");
      }
      SharedMemoryRegistry.Lease lease = lease(shm, owner, region, name);
      plan.holdInput(lease);
      return new Tensor(name, type, shape, lease.buffer()); // a view of the region: no copy
    }
    if (sizeNode != null) {
      if (!sizeNode.isIntegralNumber() || sizeNode.longValue() < 0) {
        throw InferenceException.invalidField("inputs[" + name + "].parameters[binary_data_size]",
            "input '%s' has binary_data_size %s; it must be a non-negative integer", name, sizeNode);
      }
      long size = sizeNode.longValue();
      if (size > binary.remaining()) {
        throw InferenceException.invalidField("inputs[" + name + "].parameters[binary_data_size]",
            "input '%s' has binary_data_size %d but only %d bytes of binary data remain", name, size, binary.remaining());
      }
      if (hasData) {
        throw InferenceException.invalidField("inputs[" + name + "].data",
            "input '%s' has both 'data' and binary_data_size; use one", name);
      }
      // One copy, out of the request body (which Netty frees after this handler returns).
      ByteBuffer data = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer slice = binary.slice();
      slice.limit((int) size);
      data.put(slice).flip();
      binary.position(binary.position() + (int) size);
      return new Tensor(name, type, shape, data);
    }
    if (streamed != null) {
      return new Tensor(name, type, shape, streamedBytes(name, type, shape, streamed));
    }
    JsonNode data = input.data;
    if (data == null) {
      throw InferenceException.invalidField("inputs[" + name + "].data",
          "input '%s' has neither 'data' nor a binary_data_size parameter", name);
    }
    List<JsonNode> values = new ArrayList<>();
    flatten(data, values);
    checkCount(name, shape, values.size());
    return new Tensor(name, type, shape, toBytes(name, type, values));
  }

  /** INVALID_ARGUMENT unless {@code count} values (nested arrays flattened) fill {@code shape}. */
  private static void checkCount(String name, long[] shape, long count) {
    long expected = Tensor.elementCount(shape);
    if (expected != count) {
      throw InferenceException.invalidField("inputs[" + name + "].data",
          "input '%s' has %d values in data, but shape %s needs %s", name, count, Arrays.toString(shape),
          expected < 0 ? "a non-negative shape" : String.valueOf(expected));
    }
  }

  /** The bytes of data read while parsing, checked as {@link #toBytes} checks data read as a tree. */
  private static ByteBuffer streamedBytes(String name, DataType type, long[] shape, JsonTensorData data) {
    checkCount(name, shape, data.count());
    if (data.type != type) { // 'datatype' given twice, differently: the data was read as the first
      throw InferenceException.invalidField("inputs[" + name + "].datatype",
          "input '%s' gives 'datatype' more than once (%s, then %s)", name, data.type.wireName(), type.wireName());
    }
    if (data.badValue() != null) {
      throw data.expected() == null ? outOfRange(name, type, data.badValue())
          : wrongType(name, type, data.badValue(), data.expected());
    }
    return data.bytes();
  }

  private static void flatten(JsonNode node, List<JsonNode> out) {
    if (node.isArray()) {
      for (JsonNode child : node) {
        flatten(child, out);
      }
    } else {
      out.add(node);
    }
  }

  private static ByteBuffer toBytes(String name, DataType type, List<JsonNode> values) {
    if (type == DataType.BYTES) {
      List<byte[]> elements = new ArrayList<>(values.size());
      for (JsonNode v : values) {
        if (!v.isTextual()) {
          throw wrongType(name, type, v, "a string");
        }
        elements.add(v.textValue().getBytes(StandardCharsets.UTF_8));
      }
      return BytesElements.encode(elements);
    }
    ByteBuffer out = ByteBuffer.allocate(values.size() * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (JsonNode v : values) {
      switch (type) {
        case BOOL -> {
          if (!v.isBoolean()) {
            throw wrongType(name, type, v, "true or false");
          }
          out.put((byte) (v.booleanValue() ? 1 : 0));
        }
        case INT8 -> out.put((byte) integer(name, type, v, Byte.MIN_VALUE, Byte.MAX_VALUE));
        case INT16 -> out.putShort((short) integer(name, type, v, Short.MIN_VALUE, Short.MAX_VALUE));
        case INT32 -> out.putInt((int) integer(name, type, v, Integer.MIN_VALUE, Integer.MAX_VALUE));
        case INT64 -> out.putLong(integer(name, type, v, Long.MIN_VALUE, Long.MAX_VALUE));
        case UINT8 -> out.put((byte) integer(name, type, v, 0, 0xFF));
        case UINT16 -> out.putShort((short) integer(name, type, v, 0, 0xFFFF));
        case UINT32 -> out.putInt((int) integer(name, type, v, 0, 0xFFFF_FFFFL));
        case UINT64 -> {
          if (!v.isIntegralNumber()) {
            throw wrongType(name, type, v, "an integer");
          }
          BigInteger b = v.bigIntegerValue();
          if (b.signum() < 0 || b.compareTo(UINT64_MAX) > 0) {
            throw outOfRange(name, type, v);
          }
          out.putLong(b.longValue());
        }
        case FP16 -> out.putShort(Fp16.floatToHalf((float) number(name, type, v)));
        case BF16 -> out.putShort(Fp16.floatToBf16((float) number(name, type, v)));
        case FP32 -> out.putFloat((float) number(name, type, v));
        case FP64 -> out.putDouble(number(name, type, v));
        default -> throw new AssertionError(type);
      }
    }
    return out.flip();
  }

  private static long integer(String name, DataType type, JsonNode v, long min, long max) {
    if (!v.isIntegralNumber()) {
      throw wrongType(name, type, v, "an integer");
    }
    if (!v.canConvertToLong()) {
      throw outOfRange(name, type, v);
    }
    long value = v.longValue();
    if (value < min || value > max) {
      throw outOfRange(name, type, v);
    }
    return value;
  }

  private static double number(String name, DataType type, JsonNode v) {
    if (v.isNumber()) {
      return v.doubleValue();
    }
    if (v.isTextual()) { // JSON has no NaN or infinity: accept them spelled out
      switch (v.textValue()) {
        case "NaN", "nan" -> { return Double.NaN; }
        case "Infinity", "inf" -> { return Double.POSITIVE_INFINITY; }
        case "-Infinity", "-inf" -> { return Double.NEGATIVE_INFINITY; }
        default -> { }
      }
    }
    throw wrongType(name, type, v, "a number");
  }

  private static InferenceException wrongType(String name, DataType type, JsonNode v, String expected) {
    return InferenceException.invalidField("inputs[" + name + "].data",
        "input '%s' is %s, so each value must be %s; found %s", name, type.wireName(), expected, abbreviate(v));
  }

  private static InferenceException outOfRange(String name, DataType type, JsonNode v) {
    return InferenceException.invalidField("inputs[" + name + "].data",
        "input '%s' has value %s, outside the range of %s", name, abbreviate(v), type.wireName());
  }

  private static String abbreviate(JsonNode v) {
    String s = v.toString();
    return s.length() > 40 ? s.substring(0, 40) + "..." : s;
  }

  private static String text(JsonNode node, String field, String path) {
    return textValue(node.get(field), field, path);
  }

  /** The value {@code v} of {@code field} as a string, or INVALID_ARGUMENT naming {@code path}. */
  private static String textValue(JsonNode v, String field, String path) {
    if (v == null || !v.isTextual()) {
      throw InferenceException.invalidField(path, "'%s' must be a string%s", field, v == null ? " and is missing" : "");
    }
    return v.textValue();
  }

  private static long integerParam(JsonNode params, String name, long max) {
    JsonNode v = params.get(name);
    if (v == null || v.isNull()) {
      return 0;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw InferenceException.invalidField("parameters[" + name + "]", "parameter '%s' must be an integer; was %s",
          name, abbreviate(v));
    }
    long value = v.longValue();
    if (value < 0 || value > max) {
      throw InferenceException.invalidField("parameters[" + name + "]", "%s must be >= 0; was %d", name, value);
    }
    return value;
  }

  private static boolean booleanParam(JsonNode params, String name, String path) {
    JsonNode v = params.get(name);
    if (v == null || v.isNull()) {
      return false;
    }
    if (!v.isBoolean()) {
      throw InferenceException.invalidField(path + "[" + name + "]", "parameter '%s' must be true or false; was %s",
          name, abbreviate(v));
    }
    return v.booleanValue();
  }

  /**
   * Writes the response: the JSON header, then (for outputs sent as binary) their bytes in output
   * order. Returns the JSON header's length in bytes, or -1 when every output is in the JSON.
   */
  static long encode(InferRequest request, String version, Tensor[] outputs, Decoded decoded, CountingStream out)
      throws IOException {
    return encode(request.modelName(), request.id(), version, outputs, decoded, out);
  }

  /** {@link #encode(InferRequest, String, Tensor[], Decoded, CountingStream)} from the request's model name and id. */
  public static long encode(String modelName, String id, String version, Tensor[] outputs, Decoded decoded,
      CountingStream out) throws IOException {
    boolean[] binary = new boolean[outputs.length];
    boolean anyBinary;
    try (JsonGenerator gen = FACTORY.createGenerator((OutputStream) out)) {
      gen.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
      anyBinary = writeResponse(gen, modelName, id, version, outputs, decoded, binary);
    }
    long headerLength = out.count();
    if (!anyBinary) {
      return -1;
    }
    for (int i = 0; i < outputs.length; i++) {
      if (binary[i]) {
        out.write(outputs[i].data());
      }
    }
    return headerLength;
  }

  /**
   * Writes one response object with every output's data in the JSON, through the caller's generator:
   * a batch job writes a chunk's result lines through one generator instead of building one per line.
   */
  public static void writeJsonResponse(JsonGenerator gen, String modelName, String id, String version,
      Tensor[] outputs) throws IOException {
    writeResponse(gen, modelName, id, version, outputs, null, null);
  }

  /**
   * The response's JSON object. With {@code decoded} null every output's data goes in the JSON;
   * otherwise {@code binary[i]} is set for the outputs whose bytes follow the JSON, and the result says
   * whether there are any.
   */
  private static boolean writeResponse(JsonGenerator gen, String modelName, String id, String version,
      Tensor[] outputs, Decoded decoded, boolean[] binary) throws IOException {
    boolean anyBinary = false;
    gen.writeStartObject();
    gen.writeStringField("model_name", modelName);
    gen.writeStringField("model_version", version);
    if (!id.isEmpty()) {
      gen.writeStringField("id", id);
    }
    gen.writeArrayFieldStart("outputs");
    for (int i = 0; i < outputs.length; i++) {
      Tensor t = outputs[i];
      gen.writeStartObject();
      gen.writeStringField("name", t.name());
      gen.writeStringField("datatype", t.dataType().wireName());
      gen.writeArrayFieldStart("shape");
      for (long dim : t.shape()) {
        gen.writeNumber(dim);
      }
      gen.writeEndArray();
      String region = decoded == null ? null : decoded.plan().sharedMemoryRegion(i);
      if (region != null) {
        // Written into the client's region: described, not carried.
        gen.writeObjectFieldStart("parameters");
        gen.writeStringField("shared_memory_region", region);
        gen.writeNumberField("shared_memory_byte_size", t.byteSize());
        if (decoded.plan().sharedMemoryOffset(i) != 0) {
          gen.writeNumberField("shared_memory_offset", decoded.plan().sharedMemoryOffset(i));
        }
        gen.writeEndObject();
        gen.writeEndObject();
        continue;
      }
      if (decoded != null && decoded.binary(t.name())) {
        binary[i] = true;
        anyBinary = true;
        gen.writeObjectFieldStart("parameters");
        gen.writeNumberField("binary_data_size", t.byteSize());
        gen.writeEndObject();
      } else {
        gen.writeArrayFieldStart("data");
        writeData(gen, t);
        gen.writeEndArray();
      }
      gen.writeEndObject();
    }
    gen.writeEndArray();
    gen.writeEndObject();
    return anyBinary;
  }

  /** An output stream that counts and can take a ByteBuffer. */
  public abstract static class CountingStream extends OutputStream {
    /** Bytes written so far. */
    public abstract long count();

    /** Writes the buffer's remaining bytes (its position is left unchanged or advanced; callers pass duplicates). */
    public abstract void write(ByteBuffer data);
  }

  private static void writeData(JsonGenerator gen, Tensor t) throws IOException {
    ByteBuffer d = t.data();
    switch (t.dataType()) {
      case BYTES -> {
        java.nio.charset.CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
            .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
        for (byte[] element : BytesElements.decode(d)) {
          try {
            gen.writeString(utf8.decode(ByteBuffer.wrap(element)).toString());
          } catch (java.nio.charset.CharacterCodingException e) {
            // JSON strings are text: binary elements would be mangled, so refuse and say how to get them.
            throw InferenceException.invalidField("outputs[" + t.name() + "].parameters[binary_data]",
                "output '%s' holds BYTES that are not valid UTF-8 text, which JSON cannot carry; ask for it in the"
                    + " binary section (\"binary_data\": true on the output, or \"binary_data_output\": true)", t.name());
          }
        }
      }
      case BOOL -> { while (d.hasRemaining()) gen.writeBoolean(d.get() != 0); }
      case INT8 -> { while (d.hasRemaining()) gen.writeNumber(d.get()); }
      case UINT8 -> { while (d.hasRemaining()) gen.writeNumber(d.get() & 0xFF); }
      case INT16 -> { while (d.hasRemaining()) gen.writeNumber(d.getShort()); }
      case UINT16 -> { while (d.hasRemaining()) gen.writeNumber(d.getShort() & 0xFFFF); }
      case INT32 -> { while (d.hasRemaining()) gen.writeNumber(d.getInt()); }
      case UINT32 -> { while (d.hasRemaining()) gen.writeNumber(Integer.toUnsignedLong(d.getInt())); }
      case INT64 -> { while (d.hasRemaining()) gen.writeNumber(d.getLong()); }
      case UINT64 -> {
        while (d.hasRemaining()) {
          long v = d.getLong();
          if (v >= 0) {
            gen.writeNumber(v);
          } else {
            gen.writeNumber(new BigInteger(Long.toUnsignedString(v)));
          }
        }
      }
      case FP16 -> { while (d.hasRemaining()) gen.writeNumber(Fp16.halfToFloat(d.getShort())); }
      case BF16 -> { while (d.hasRemaining()) gen.writeNumber(Fp16.bf16ToFloat(d.getShort())); }
      case FP32 -> { while (d.hasRemaining()) gen.writeNumber(d.getFloat()); }
      case FP64 -> { while (d.hasRemaining()) gen.writeNumber(d.getDouble()); }
      default -> throw new AssertionError(t.dataType());
    }
  }

  /** For tests and metadata: iterates the fields of a JSON object. */
  static Iterator<Map.Entry<String, JsonNode>> fields(JsonNode node) {
    return node.fields();
  }

  /**
   * ModelMetadata in REST v2's JSON form: name, versions, platform, and inputs/outputs with name,
   * datatype and shape. Shared by the REST endpoint and the benchmarks' bare REST echo.
   */
  public static void writeMetadata(JsonGenerator gen, ModelMetadataResponse m)
      throws IOException {
    gen.writeStartObject();
    gen.writeStringField("name", m.getName());
    gen.writeArrayFieldStart("versions");
    for (String v : m.getVersionsList()) {
      gen.writeString(v);
    }
    gen.writeEndArray();
    gen.writeStringField("platform", m.getPlatform());
    writeTensorMetadata(gen, "inputs", m.getInputsList());
    writeTensorMetadata(gen, "outputs", m.getOutputsList());
    gen.writeEndObject();
  }

  private static void writeTensorMetadata(JsonGenerator gen, String field,
      List<ModelMetadataResponse.TensorMetadata> tensors) throws IOException {
    gen.writeArrayFieldStart(field);
    for (ModelMetadataResponse.TensorMetadata t : tensors) {
      gen.writeStartObject();
      gen.writeStringField("name", t.getName());
      gen.writeStringField("datatype", t.getDatatype());
      gen.writeArrayFieldStart("shape");
      for (long d : t.getShapeList()) {
        gen.writeNumber(d);
      }
      gen.writeEndArray();
      gen.writeEndObject();
    }
    gen.writeEndArray();
  }
}
