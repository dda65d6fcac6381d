package io.quiver.bench.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnsafeByteOperations;
import io.quiver.client.DataType;
import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.Tensors;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
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
 * The client's encode and decode path beside what a user writes by hand with generated stubs (the
 * README's old example), for FP32 tensors of {@code elements} floats. Encode = the request built from a
 * {@code float[]} and serialized into a reused buffer (the copy gRPC makes into the transport's
 * buffers); decode = the response parsed from bytes and its output read into a {@code float[]}.
 *
 * <pre>
 * java -cp 'benchmarks/target/quiver-benchmarks.jar:benchmarks/target/lib/*' org.openjdk.jmh.Main \
 *     -prof gc 'io\.quiver\.bench\.client\.ClientCodecBenchmark'
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ClientCodecBenchmark {
  /** FP32 elements: 16 (identity_fp32), 784 (a 28×28 image), 150528 (224×224×3). */
  @Param({"16", "784", "150528"})
  int elements;

  private float[] values;
  private ByteBuffer direct;
  private byte[] target;
  private byte[] responseBytes;

  @Setup
  public void setUp() {
    values = new float[elements];
    for (int i = 0; i < elements; i++) {
      values[i] = i * 0.25f;
    }
    direct = ByteBuffer.allocateDirect(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    direct.asFloatBuffer().put(values);
    target = new byte[elements * 4 + 1024];
    ByteBuffer raw = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    raw.asFloatBuffer().put(values);
    responseBytes = ModelInferResponse.newBuilder().setModelName("identity_fp32").setModelVersion("1")
        .addOutputs(ModelInferResponse.InferOutputTensor.newBuilder().setName("OUTPUT0").setDatatype("FP32")
            .addShape(1).addShape(elements))
        .addRawOutputContents(ByteString.copyFrom(raw.array())).build().toByteArray();
  }

  private int serialize(ModelInferRequest request) throws IOException {
    CodedOutputStream out = CodedOutputStream.newInstance(target);
    request.writeTo(out);
    return out.getTotalBytesWritten();
  }

  /** The client: {@code Tensors.fp32(float[])} (one copy into a little-endian array) + the request + serialize. */
  @Benchmark
  public int encodeClient() throws IOException {
    return serialize(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(values, 1, elements))
        .build().toProto());
  }

  /** The client from a direct buffer the caller already filled: no copy before serialization. */
  @Benchmark
  public int encodeClientDirectBuffer() throws IOException {
    return serialize(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.of(DataType.FP32, direct, 1, elements))
        .build().toProto());
  }

  /** By hand, as the README used to show: a little-endian ByteBuffer, then ByteString.copyFrom (two copies). */
  @Benchmark
  public int encodeStubByHand() throws IOException {
    ByteBuffer data = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      data.putFloat(v);
    }
    return serialize(ModelInferRequest.newBuilder()
        .setModelName("identity_fp32")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(elements))
        .addRawInputContents(ByteString.copyFrom(data.flip()))
        .build());
  }

  /** By hand, the best a careful stub user can do: bulk put into an array, wrapped without a second copy. */
  @Benchmark
  public int encodeStubBest() throws IOException {
    byte[] bytes = new byte[elements * 4];
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(values);
    return serialize(ModelInferRequest.newBuilder()
        .setModelName("identity_fp32")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(elements))
        .addRawInputContents(UnsafeByteOperations.unsafeWrap(bytes))
        .build());
  }

  /** The client: parse, then {@code result.output("OUTPUT0").toFloatArray()}. */
  @Benchmark
  public float[] decodeClient() throws InvalidProtocolBufferException {
    return InferResult.of(ModelInferResponse.parseFrom(responseBytes)).output("OUTPUT0").toFloatArray();
  }

  /** By hand: parse, then the first raw output through a little-endian FloatBuffer. */
  @Benchmark
  public float[] decodeStubByHand() throws InvalidProtocolBufferException {
    ModelInferResponse response = ModelInferResponse.parseFrom(responseBytes);
    float[] out = new float[elements];
    response.getRawOutputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }
}
