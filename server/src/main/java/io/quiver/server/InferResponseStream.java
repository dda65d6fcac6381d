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
 * 5 outputs: InferOutputTensor {1 name, 2 datatype, 3 shape (packed int64)}, 6 raw_output_contents};
 * ModelStreamInferResponse {2 infer_response}. Empty strings and empty shapes are left out, as proto3
 * does, so the bytes equal protobuf's.
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
  private final int bodySize; // the ModelInferResponse message
  private final int size; // what is written: the message, or the stream wrapper around it
  private InputStream materialized; // only if someone reads instead of draining
  private boolean drained;

  private InferResponseStream(String model, String version, String id, Tensor[] outputs, boolean streamWrapper) {
    this.model = model;
    this.version = version;
    this.id = id;
    this.outputs = outputs;
    this.streamWrapper = streamWrapper;
    int body = stringFieldSize(1, model) + stringFieldSize(2, version) + stringFieldSize(3, id);
    for (Tensor output : outputs) {
      body += lengthDelimitedSize(5, outputTensorSize(output));
    }
    for (Tensor output : outputs) {
      body += lengthDelimitedSize(6, output.byteSize());
    }
    this.bodySize = body;
    this.size = streamWrapper ? lengthDelimitedSize(2, body) : body;
  }

  /** The bytes of a ModelInferResponse for ModelInfer. */
  public static InferResponseStream unary(String model, String version, String id, Tensor[] outputs) {
    return new InferResponseStream(model, version, id, outputs, false);
  }

  /** The bytes of a ModelStreamInferResponse carrying it (no error message), for ModelStreamInfer. */
  public static InferResponseStream streamed(String model, String version, String id, Tensor[] outputs) {
    return new InferResponseStream(model, version, id, outputs, true);
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
    for (Tensor output : outputs) {
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, 5, WIRE_LEN);
      pos = putVarint(scratch, pos, outputTensorSize(output));
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
    }
    for (Tensor output : outputs) {
      pos = ensure(scratch, pos, target, 16);
      pos = putTag(scratch, pos, 6, WIRE_LEN);
      pos = putVarint(scratch, pos, output.byteSize());
      target.write(scratch, 0, pos);
      pos = 0;
      writeData(output, target, scratch);
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

  private static int outputTensorSize(Tensor output) {
    int n = stringFieldSize(1, output.name()) + stringFieldSize(2, output.dataType().wireName());
    long[] shape = output.shape();
    if (shape.length > 0) {
      n += lengthDelimitedSize(3, packedSize(shape));
    }
    return n;
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
