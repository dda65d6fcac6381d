package io.quiver.bench.jmh;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.quiver.core.DataType;
import io.quiver.core.ModelSignature;
import io.quiver.core.RequestValidator;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.proto.inference.ModelInferRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
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
 * Request decode and validation, the work a ModelInfer call does on the event loop before it
 * reaches the scheduler: parse the protobuf (what gRPC's marshaller does), wrap each
 * {@code raw_input_contents} entry as a Tensor without copying, then {@link RequestValidator}.
 *
 * <p>The server's own decoder (KServeCodec.decodeInputs) is package-private, so {@link #decode}
 * mirrors it line for line through public APIs (raw contents only); make KServeCodec public to
 * benchmark the real one.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RequestDecodeBenchmark {
  /** FP32 elements per row: 16 (identity_fp32) or 784 (mlp_784). */
  @Param({"16", "784"})
  int elements;

  private ModelSignature signature;
  private ModelInferRequest request;
  private byte[] wire;
  private final Tensor[] ordered = new Tensor[1];

  @Setup
  public void setUp() {
    signature = new ModelSignature(64, List.of(new TensorSpec("INPUT0", DataType.FP32, new long[] {elements})),
        List.of(new TensorSpec("OUTPUT0", DataType.FP32, new long[] {elements})));
    ByteBuffer data = ByteBuffer.allocate(elements * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < elements; i++) {
      data.putFloat(i * 0.5f);
    }
    request = ModelInferRequest.newBuilder()
        .setModelName("bench")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(elements))
        .addRawInputContents(ByteString.copyFrom(data.flip()))
        .build();
    wire = request.toByteArray();
  }

  /** Codec + validator on an already parsed message. */
  @Benchmark
  public int decodeAndValidate() {
    return validate(request);
  }

  /** Protobuf parse from the wire bytes, then codec + validator. */
  @Benchmark
  public int parseDecodeAndValidate() throws InvalidProtocolBufferException {
    return validate(ModelInferRequest.parseFrom(wire));
  }

  private int validate(ModelInferRequest message) {
    List<Tensor> inputs = decode(message);
    int batch = RequestValidator.validateInputs(message.getModelName(), signature, inputs, ordered);
    int[] outputs = RequestValidator.resolveOutputs(message.getModelName(), signature, List.of());
    return batch + outputs.length;
  }

  /** KServeCodec.decodeInputs for raw contents, through public APIs. */
  static List<Tensor> decode(ModelInferRequest request) {
    int count = request.getInputsCount();
    List<Tensor> tensors = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      ModelInferRequest.InferInputTensor input = request.getInputs(i);
      List<Long> dims = input.getShapeList();
      long[] shape = new long[dims.size()];
      for (int d = 0; d < shape.length; d++) {
        shape[d] = dims.get(d);
      }
      tensors.add(new Tensor(input.getName(), DataType.fromWireName(input.getDatatype()), shape,
          request.getRawInputContents(i).asReadOnlyByteBuffer()));
    }
    return tensors;
  }
}
