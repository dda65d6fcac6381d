package io.quiver.bench.jmh;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
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
 * Parsing a ModelInfer request from a gRPC message stream: grpc-java's default protobuf marshaller
 * (bytes fields copied out of its read buffer) against the server's aliasing parse (the message read
 * into one array, {@code raw_input_contents} aliased into it; the same steps as
 * io.quiver.server.AliasingRequestMarshaller, which the server module does not export). The
 * {@code ...AndGather} variants add the batcher's copy of the tensor into a direct buffer, i.e. the
 * work up to the runner. Run with {@code -prof gc} for bytes per operation.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class RequestParseBenchmark {
  /** 784 FP32 (an MNIST row, 3.1 KB) and 38,400 FP32 (150 KB). */
  @Param({"784", "38400"})
  int floats;

  private static final MethodDescriptor.Marshaller<ModelInferRequest> DEFAULT =
      GRPCInferenceServiceGrpc.getModelInferMethod().getRequestMarshaller();

  private byte[] wire;
  private ByteBuffer gather;

  /** gRPC's message streams are KnownLength (the default marshaller takes its buffered path for them). */
  static final class KnownLengthStream extends ByteArrayInputStream implements KnownLength {
    KnownLengthStream(byte[] bytes) {
      super(bytes);
    }
  }

  @Setup
  public void setUp() {
    byte[] raw = new byte[floats * 4];
    new Random(1).nextBytes(raw);
    wire = ModelInferRequest.newBuilder()
        .setModelName("mlp_784").setId("bench")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder()
            .setName("INPUT0").setDatatype("FP32").addShape(1).addShape(floats))
        .addRawInputContents(ByteString.copyFrom(raw))
        .build().toByteArray();
    gather = ByteBuffer.allocateDirect(raw.length).order(ByteOrder.LITTLE_ENDIAN);
  }

  static ModelInferRequest aliasingParse(KnownLengthStream stream) throws IOException {
    int length = stream.available();
    byte[] buffer = new byte[length];
    stream.read(buffer, 0, length);
    // Aliasing needs an input that knows its bytes are immutable; newInstance(byte[]) does not.
    CodedInputStream input = UnsafeByteOperations.unsafeWrap(buffer, 0, length).newCodedInput();
    input.enableAliasing(true);
    ModelInferRequest message = ModelInferRequest.parser().parseFrom(input, ExtensionRegistryLite.getEmptyRegistry());
    input.checkLastTagWas(0);
    return message;
  }

  @Benchmark
  public ModelInferRequest defaultParse() {
    return DEFAULT.parse(new KnownLengthStream(wire));
  }

  @Benchmark
  public ModelInferRequest aliasingParse() throws IOException {
    return aliasingParse(new KnownLengthStream(wire));
  }

  @Benchmark
  public ByteBuffer defaultParseAndGather() {
    return gather(DEFAULT.parse(new KnownLengthStream(wire)));
  }

  @Benchmark
  public ByteBuffer aliasingParseAndGather() throws IOException {
    return gather(aliasingParse(new KnownLengthStream(wire)));
  }

  private ByteBuffer gather(ModelInferRequest request) {
    gather.clear();
    request.getRawInputContents(0).copyTo(gather);
    return gather;
  }
}
