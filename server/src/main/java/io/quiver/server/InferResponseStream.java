package io.quiver.server;

import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.netty.util.concurrent.FastThreadLocal;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.ModelInferResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A successful ModelInfer answer serialized straight from the output tensors, in exactly the bytes
 * protobuf would write for the equivalent {@link ModelInferResponse} (or for a
 * {@code ModelStreamInferResponse} whose {@code infer_response} is that message), without building
 * any protobuf message: no builders, no message objects, no ByteString per output. gRPC's framer asks
 * its length ({@link KnownLength}) and has it write itself into the transport's buffer
 * ({@link Drainable}); the tensor bytes are copied once there (through a per-thread scratch array when
 * they are in a direct buffer, such as ONNX Runtime's pinned outputs).
 *
 * <p>Wire format (grpc_service.proto): ModelInferResponse {1 model_name, 2 model_version, 3 id,
 * 4 parameters, 5 outputs: InferOutputTensor {1 name, 2 datatype, 3 shape (packed int64), 4 parameters},
 * 6 raw_output_contents}; ModelStreamInferResponse {2 infer_response}. Empty strings and empty shapes
 * are left out, as proto3 does, so the bytes equal protobuf's; a map's entries are written key then
 * value, in the order given (protobuf-java's order for a map filled in that order).
 *
 * <p>Two Triton extensions ride on it: an output written into a client's shared-memory region
 * ({@link OutputPlan}) keeps its name, datatype and shape, carries {@code shared_memory_region},
 * {@code shared_memory_byte_size} (the bytes written) and, when not 0, {@code shared_memory_offset}, and
 * has an empty {@code raw_output_contents} entry (the list stays index-aligned with {@code outputs});
 * a streamed answer carries the response parameter {@code triton_final_response: true}, as Triton's
 * stream handler sends on every answer of a non-decoupled model.
 *
 * <p>Single use, not thread-safe: made on the thread that answers the call and drained there by
 * gRPC. The outputs must stay valid until {@link #drainTo} has run, which gRPC does inside
 * {@code sendMessage}. {@link #MARSHALLER} accepts this class or a plain {@link ModelInferResponse}
 * (error answers, client side).
 */
public final class InferResponseStream extends InputStream implements KnownLength, Drainable {
  private static final int WIRE_VARINT = 0;
  private static final int WIRE_LEN = 2;
  private static final int SCRATCH_BYTES = 8 * 1024;
  private static final FastThreadLocal<byte[]> SCRATCH = new FastThreadLocal<>() {
    @Override
    protected byte[] initialValue() {
      return new byte[SCRATCH_BYTES];
    }
  };

  private final String model;
  private final String version;
  private final String id;
  private final Tensor[] outputs;
  private final boolean streamWrapper;
  private final OutputPlan plan; // null: no output in shared memory
  private final boolean finalResponse;
  private final int bodySize; // the ModelInferResponse message
  private final int size; // what is written: the message, or the stream wrapper around it
  private InputStream materialized; // only if someone reads instead of draining
  private boolean drained;

  private InferResponseStream(String model, String version, String id, Tensor[] outputs, boolean streamWrapper,
      OutputPlan plan, boolean finalResponse) {
    this.model = model;
    this.version = version;
    this.id = id;
    this.outputs = outputs;
    this.streamWrapper = streamWrapper;
    this.plan = plan != null && plan.hasSharedMemoryOutputs() ? plan : null;
    this.finalResponse = finalResponse;
    int body = stringFieldSize(1, model) + stringFieldSize(2, version) + stringFieldSize(3, id);
    if (finalResponse) {
      body += lengthDelimitedSize(4, boolParamEntrySize(FINAL_RESPONSE));
    }
    for (int j = 0; j < outputs.length; j++) {
      body += lengthDelimitedSize(5, outputTensorSize(outputs[j], j));
    }
    for (int j = 0; j < outputs.length; j++) {
      body += lengthDelimitedSize(6, rawSize(j));
    }
    this.bodySize = body;
    this.size = streamWrapper ? lengthDelimitedSize(2, body) : body;
  }

  /** Triton's response parameter on every streamed answer of a non-decoupled model. */
  static final String FINAL_RESPONSE = "triton_final_response";

  /** The bytes of a ModelInferResponse for ModelInfer. */
  public static InferResponseStream unary(String model, String version, String id, Tensor[] outputs) {
    return new InferResponseStream(model, version, id, outputs, false, null, false);
  }

  /** {@link #unary}, with outputs the plan wrote into shared memory described instead of carried. */
  public static InferResponseStream unary(String model, String version, String id, Tensor[] outputs, OutputPlan plan) {
    return new InferResponseStream(model, version, id, outputs, false, plan, false);
  }

  /** The bytes of a ModelStreamInferResponse carrying it (no error message), for ModelStreamInfer. */
  public static InferResponseStream streamed(String model, String version, String id, Tensor[] outputs) {
    return new InferResponseStream(model, version, id, outputs, true, null, false);
  }

  /**
   * A streamed answer as Triton sends it: with {@code triton_final_response: true} in the response's
   * parameters, and outputs the plan wrote into shared memory described instead of carried.
   */
  public static InferResponseStream streamedFinal(String model, String version, String id, Tensor[] outputs,
      OutputPlan plan) {
    return new InferResponseStream(model, version, id, outputs, true, plan, true);
  }

  private int rawSize(int j) {
    return plan != null && plan.sharedMemoryRegion(j) != null ? 0 : outputs[j].byteSize();
  }

  /**
   * The response marshaller for ModelInfer and ModelStreamInfer: streams an {@link InferResponseStream}
   * as it is, anything else (a protobuf message) through the default protobuf marshaller, which also
   * parses (client side, tests).
   */
  static <T> MethodDescriptor.Marshaller<Object> marshaller(MethodDescriptor.Marshaller<T> protobuf) {
    return new MethodDescriptor.Marshaller<>() {
      @Override
      @SuppressWarnings("unchecked")
      public InputStream stream(Object value) {
        return value instanceof InferResponseStream s ? s : protobuf.stream((T) value);
      }

      @Override
      public Object parse(InputStream stream) {
        return protobuf.parse(stream);
      }
    };
  }

  @Override
  public int available() {
    if (materialized != null) {
      try {
        return materialized.available();
      } catch (IOException e) {
        return 0;
      }
    }
    return drained ? 0 : size;
  }

  @Override
  public int drainTo(OutputStream target) throws IOException {
    if (drained || materialized != null) {
      throw new IllegalStateException("a response stream is read once");
    }
    drained = true;
    byte[] scratch = SCRATCH.get();
    int pos = 0;
    if (streamWrapper) {
      pos = putTag(scratch, pos, 2, WIRE_LEN);
      pos = putVarint(scratch, pos, bodySize);
    }
    pos = putString(scratch, pos, target, 1, model);
    pos = putString(scratch, pos, target, 2, version);
    pos = putString(scratch, pos, target, 3, id);
    if (finalResponse) {
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, 4, WIRE_LEN);
      pos = putVarint(scratch, pos, boolParamEntrySize(FINAL_RESPONSE));
      pos = putBoolParamEntry(scratch, pos, target, FINAL_RESPONSE, true);
    }
    for (int j = 0; j < outputs.length; j++) {
      Tensor output = outputs[j];
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, 5, WIRE_LEN);
      pos = putVarint(scratch, pos, outputTensorSize(output, j));
      pos = putString(scratch, pos, target, 1, output.name());
      pos = putString(scratch, pos, target, 2, output.dataType().wireName());
      long[] shape = output.shape();
      if (shape.length > 0) {
        pos = ensure(scratch, pos, target, 16);
        pos = putTag(scratch, pos, 3, WIRE_LEN);
        pos = putVarint(scratch, pos, packedSize(shape));
        for (long dim : shape) {
          pos = ensure(scratch, pos, target, 10);
          pos = putVarint(scratch, pos, dim);
        }
      }
      String region = plan == null ? null : plan.sharedMemoryRegion(j);
      if (region != null) {
        pos = putSharedMemoryParameters(scratch, pos, target, region, output.byteSize(), plan.sharedMemoryOffset(j));
      }
    }
    for (int j = 0; j < outputs.length; j++) {
      Tensor output = outputs[j];
      int raw = rawSize(j);
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, 6, WIRE_LEN);
      pos = putVarint(scratch, pos, raw);
      if (raw > 0) {
        target.write(scratch, 0, pos);
        pos = 0;
        writeData(output, target, scratch);
      }
    }
    target.write(scratch, 0, pos);
    return size;
  }

  /** Copies a tensor's bytes to the target: the backing array directly, a direct buffer through the scratch array. */
  private static void writeData(Tensor output, OutputStream target, byte[] scratch) throws IOException {
    ByteBuffer data = output.data();
    if (data.hasArray()) {
      target.write(data.array(), data.arrayOffset() + data.position(), data.remaining());
      return;
    }
    while (data.hasRemaining()) {
      int n = Math.min(scratch.length, data.remaining());
      data.get(scratch, 0, n);
      target.write(scratch, 0, n);
    }
  }

  @Override
  public int read() throws IOException {
    return materialize().read();
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    return materialize().read(b, off, len);
  }

  private InputStream materialize() throws IOException {
    if (materialized == null) {
      if (drained) {
        return InputStream.nullInputStream();
      }
      ByteArrayOutputStream bytes = new ByteArrayOutputStream(size);
      drainTo(bytes);
      materialized = new java.io.ByteArrayInputStream(bytes.toByteArray());
    }
    return materialized;
  }

  // ---- sizes ----

  private int outputTensorSize(Tensor output, int j) {
    int n = stringFieldSize(1, output.name()) + stringFieldSize(2, output.dataType().wireName());
    long[] shape = output.shape();
    if (shape.length > 0) {
      n += lengthDelimitedSize(3, packedSize(shape));
    }
    String region = plan == null ? null : plan.sharedMemoryRegion(j);
    if (region != null) {
      n += sharedMemoryParametersSize(region, output.byteSize(), plan.sharedMemoryOffset(j));
    }
    return n;
  }

  // ---- parameters (map<string, InferParameter>: entries {1 key, 2 value}; InferParameter {1 bool, 2 int64, 3 string}) ----

  static final String SHM_REGION = "shared_memory_region";
  static final String SHM_BYTE_SIZE = "shared_memory_byte_size";
  static final String SHM_OFFSET = "shared_memory_offset";

  /** The output tensor's parameters field (4): region, byte size, then the offset when not 0. */
  private static int sharedMemoryParametersSize(String region, long byteSize, long offset) {
    int n = lengthDelimitedSize(4, stringParamEntrySize(SHM_REGION, region))
        + lengthDelimitedSize(4, int64ParamEntrySize(SHM_BYTE_SIZE, byteSize));
    if (offset != 0) {
      n += lengthDelimitedSize(4, int64ParamEntrySize(SHM_OFFSET, offset));
    }
    return n;
  }

  private static int putSharedMemoryParameters(byte[] scratch, int pos, OutputStream target, String region,
      long byteSize, long offset) throws IOException {
    pos = ensure(scratch, pos, target, 16);
    pos = putTag(scratch, pos, 4, WIRE_LEN);
    pos = putVarint(scratch, pos, stringParamEntrySize(SHM_REGION, region));
    pos = putString(scratch, pos, target, 1, SHM_REGION);
    pos = ensure(scratch, pos, target, 16);
    pos = putTag(scratch, pos, 2, WIRE_LEN);
    pos = putVarint(scratch, pos, stringFieldSizeAlways(3, region));
    pos = putStringAlways(scratch, pos, target, 3, region);
    pos = putInt64ParamEntry(scratch, pos, target, SHM_BYTE_SIZE, byteSize);
    if (offset != 0) {
      pos = putInt64ParamEntry(scratch, pos, target, SHM_OFFSET, offset);
    }
    return pos;
  }

  private static int putInt64ParamEntry(byte[] scratch, int pos, OutputStream target, String key, long value)
      throws IOException {
    pos = ensure(scratch, pos, target, 16);
    pos = putTag(scratch, pos, 4, WIRE_LEN);
    pos = putVarint(scratch, pos, int64ParamEntrySize(key, value));
    pos = putString(scratch, pos, target, 1, key);
    pos = ensure(scratch, pos, target, 24);
    pos = putTag(scratch, pos, 2, WIRE_LEN);
    pos = putVarint(scratch, pos, varintSize(2 << 3) + varintSize(value));
    pos = putTag(scratch, pos, 2, WIRE_VARINT);
    return putVarint(scratch, pos, value);
  }

  /** A map entry: key (field 1) and an InferParameter value (field 2) whose bool_param (field 1) is set. */
  private static int putBoolParamEntry(byte[] scratch, int pos, OutputStream target, String key, boolean value)
      throws IOException {
    pos = putString(scratch, pos, target, 1, key);
    pos = ensure(scratch, pos, target, 16);
    pos = putTag(scratch, pos, 2, WIRE_LEN);
    pos = putVarint(scratch, pos, 2);
    pos = putTag(scratch, pos, 1, WIRE_VARINT);
    scratch[pos++] = (byte) (value ? 1 : 0);
    return pos;
  }

  private static int boolParamEntrySize(String key) {
    return stringFieldSize(1, key) + lengthDelimitedSize(2, 2);
  }

  private static int int64ParamEntrySize(String key, long value) {
    return stringFieldSize(1, key) + lengthDelimitedSize(2, varintSize(2 << 3) + varintSize(value));
  }

  private static int stringParamEntrySize(String key, String value) {
    return stringFieldSize(1, key) + lengthDelimitedSize(2, stringFieldSizeAlways(3, value));
  }

  /** A string inside a oneof is written even when empty. */
  private static int stringFieldSizeAlways(int field, String value) {
    return lengthDelimitedSize(field, utf8Length(value));
  }

  private static int putStringAlways(byte[] scratch, int pos, OutputStream target, int field, String value)
      throws IOException {
    if (!value.isEmpty()) {
      return putString(scratch, pos, target, field, value);
    }
    pos = ensure(scratch, pos, target, 16);
    pos = putTag(scratch, pos, field, WIRE_LEN);
    return putVarint(scratch, pos, 0);
  }

  private static int packedSize(long[] shape) {
    int n = 0;
    for (long dim : shape) {
      n += varintSize(dim);
    }
    return n;
  }

  private static int stringFieldSize(int field, String value) {
    return value.isEmpty() ? 0 : lengthDelimitedSize(field, utf8Length(value));
  }

  private static int lengthDelimitedSize(int field, int length) {
    return varintSize((long) field << 3) + varintSize(length) + length;
  }

  private static int varintSize(long value) {
    int n = 1;
    while ((value & ~0x7FL) != 0) {
      value >>>= 7;
      n++;
    }
    return n;
  }

  /** UTF-8 length without encoding; ASCII names and ids take the first loop only. */
  private static int utf8Length(String s) {
    int n = s.length();
    for (int i = 0; i < s.length(); i++) {
      if (s.charAt(i) >= 0x80) {
        return s.getBytes(StandardCharsets.UTF_8).length; // rare: allocates
      }
    }
    return n;
  }

  // ---- writing into the scratch array ----

  private static int ensure(byte[] scratch, int pos, OutputStream target, int needed) throws IOException {
    if (scratch.length - pos >= needed) {
      return pos;
    }
    target.write(scratch, 0, pos);
    return 0;
  }

  private static int putTag(byte[] b, int pos, int field, int wireType) {
    return putVarint(b, pos, (long) field << 3 | wireType);
  }

  private static int putVarint(byte[] b, int pos, long value) {
    while ((value & ~0x7FL) != 0) {
      b[pos++] = (byte) ((value & 0x7F) | 0x80);
      value >>>= 7;
    }
    b[pos++] = (byte) value;
    return pos;
  }

  private static int putString(byte[] scratch, int pos, OutputStream target, int field, String value) throws IOException {
    if (value.isEmpty()) {
      return pos;
    }
    int length = utf8Length(value);
    if (length != value.length() || length > scratch.length - 16) {
      byte[] utf8 = value.getBytes(StandardCharsets.UTF_8); // non-ASCII or very long: rare, allocates
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, field, WIRE_LEN);
      pos = putVarint(scratch, pos, utf8.length);
      target.write(scratch, 0, pos);
      target.write(utf8);
      return 0;
    }
    pos = ensure(scratch, pos, target, 16 + length);
    pos = putTag(scratch, pos, field, WIRE_LEN);
    pos = putVarint(scratch, pos, length);
    for (int i = 0; i < length; i++) {
      scratch[pos++] = (byte) value.charAt(i);
    }
    return pos;
  }
}
