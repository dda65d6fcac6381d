package io.quiver.bench.jmh;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.UnsafeByteOperations;
import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.server.InferResponseStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Response encode, two ways. {@code build}/{@code buildAndSerialize}: a ModelInferResponse whose
 * {@code raw_output_contents} wrap the output buffers without copying
 * ({@link UnsafeByteOperations#unsafeWrap}), as a server using protobuf's builders makes it (the bare
 * echo baseline does this), serialized into a reused buffer. {@code direct}: the server's
 * {@link InferResponseStream}, which writes the same bytes straight from the tensors into the target
 * (the copy gRPC makes into Netty's buffers) without building a message.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ResponseEncodeBenchmark {
  /** FP32 elements of the output: 10 (mlp_784, cnn_small), 16 (identity_fp32), 784. */
  @Param({"10", "16", "784"})
  int elements;

  private Tensor[] outputs;
  private byte[] target;
  private Sink sink;

  @Setup
  public void setUp() {
    ByteBuffer data = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < elements; i++) {
      data.putFloat(i);
    }
    outputs = new Tensor[] {new Tensor("OUTPUT0", DataType.FP32, new long[] {1, elements}, data.flip())};
    target = new byte[elements * 4 + 1024];
    sink = new Sink(elements * 4 + 1024);
  }

  /** Builds the message only. */
  @Benchmark
  public ModelInferResponse build() {
    return encode("bench", "1", "", outputs);
  }

  /** Builds and serializes it. */
  @Benchmark
  public int buildAndSerialize() throws IOException {
    ModelInferResponse response = encode("bench", "1", "", outputs);
    CodedOutputStream out = CodedOutputStream.newInstance(target);
    response.writeTo(out);
    return out.getTotalBytesWritten();
  }

  /** The server's path: the same bytes written straight from the outputs. */
  @Benchmark
  public int direct() throws IOException {
    sink.reset();
    return InferResponseStream.unary("bench", "1", "", outputs).drainTo(sink);
  }

  /** A reusable in-memory target, like the transport's buffer. */
  static final class Sink extends java.io.OutputStream {
    final byte[] bytes;
    int size;

    Sink(int capacity) {
      bytes = new byte[capacity];
    }

    void reset() {
      size = 0;
    }

    @Override
    public void write(int b) {
      bytes[size++] = (byte) b;
    }

    @Override
    public void write(byte[] b, int off, int len) {
      System.arraycopy(b, off, bytes, size, len);
      size += len;
    }
  }

  static ModelInferResponse encode(String model, String version, String id, Tensor[] outputs) {
    ModelInferResponse.Builder response = ModelInferResponse.newBuilder()
        .setModelName(model)
        .setModelVersion(version)
        .setId(id);
    for (Tensor output : outputs) {
      ModelInferResponse.InferOutputTensor.Builder tensor = response.addOutputsBuilder()
          .setName(output.name())
          .setDatatype(output.dataType().wireName());
      for (long dim : output.shape()) {
        tensor.addShape(dim);
      }
      response.addRawOutputContents(UnsafeByteOperations.unsafeWrap(output.data()));
    }
    return response.build();
  }
}
