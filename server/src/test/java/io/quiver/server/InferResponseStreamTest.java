package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.UnsafeByteOperations;
import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The hand-written answer encoding is byte for byte what protobuf writes for the same message. */
class InferResponseStreamTest {
  private final Random random = new Random(42);

  @Test
  void unary_equalsProtobufsBytes_forManyShapesNamesAndBufferKinds() throws IOException {
    for (int round = 0; round < 300; round++) {
      Tensor[] outputs = randomOutputs();
      String model = round % 7 == 0 ? "modèle-ünï" : "model_" + round;
      String version = round % 5 == 0 ? "" : Integer.toString(round);
      String id = round % 3 == 0 ? "" : "id-" + "x".repeat(random.nextInt(300));
      byte[] ours = drain(InferResponseStream.unary(model, version, id, outputs));
      assertThat(ours).as("round %d", round).isEqualTo(protobuf(model, version, id, outputs).toByteArray());
    }
  }

  @Test
  void streamed_equalsTheStreamResponseWrappingTheSameMessage() throws IOException {
    Tensor[] outputs = randomOutputs();
    byte[] ours = drain(InferResponseStream.streamed("m", "2", "req-9", outputs));
    byte[] expected = ModelStreamInferResponse.newBuilder().setInferResponse(protobuf("m", "2", "req-9", outputs))
        .build().toByteArray();
    assertThat(ours).isEqualTo(expected);
  }

  @Test
  void available_isTheSize_andReadingWorksToo() throws IOException {
    Tensor[] outputs = randomOutputs();
    InferResponseStream stream = InferResponseStream.unary("m", "1", "", outputs);
    byte[] expected = protobuf("m", "1", "", outputs).toByteArray();
    assertThat(stream.available()).isEqualTo(expected.length);
    assertThat(stream.readAllBytes()).isEqualTo(expected); // the path for a caller that reads instead of draining
  }

  @Test
  void largeDirectTensor_goesThroughTheScratchArrayInChunks() throws IOException {
    ByteBuffer big = ByteBuffer.allocateDirect(600_000).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < big.capacity(); i++) {
      big.put(i, (byte) (i * 31));
    }
    Tensor[] outputs = {new Tensor("OUT", DataType.UINT8, new long[] {1, 600_000}, big)};
    assertThat(drain(InferResponseStream.unary("m", "1", "i", outputs)))
        .isEqualTo(protobuf("m", "1", "i", outputs).toByteArray());
  }

  private Tensor[] randomOutputs() {
    int n = random.nextInt(4);
    Tensor[] outputs = new Tensor[n];
    for (int k = 0; k < n; k++) {
      int rank = random.nextInt(4);
      long[] shape = new long[rank];
      long elements = 1;
      for (int d = 0; d < rank; d++) {
        shape[d] = random.nextInt(6);
        elements *= shape[d];
      }
      if (rank > 0 && random.nextInt(10) == 0) {
        shape[0] = -1; // a negative dim takes ten bytes as a varint
        elements = 0;
      }
      int bytes = (int) (elements * 4);
      ByteBuffer data = random.nextBoolean()
          ? ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN)
          : ByteBuffer.allocate(bytes + 8).order(ByteOrder.LITTLE_ENDIAN).position(4).slice().limit(bytes);
      for (int i = 0; i < bytes; i++) {
        data.put(i, (byte) random.nextInt());
      }
      outputs[k] = new Tensor(List.of("OUTPUT", "probabilités", "y").get(random.nextInt(3)) + k, DataType.FP32, shape, data);
    }
    return outputs;
  }

  private static ModelInferResponse protobuf(String model, String version, String id, Tensor[] outputs) {
    ModelInferResponse.Builder response = ModelInferResponse.newBuilder()
        .setModelName(model).setModelVersion(version).setId(id);
    for (Tensor output : outputs) {
      ModelInferResponse.InferOutputTensor.Builder tensor = response.addOutputsBuilder()
          .setName(output.name()).setDatatype(output.dataType().wireName());
      for (long dim : output.shape()) {
        tensor.addShape(dim);
      }
      response.addRawOutputContents(UnsafeByteOperations.unsafeWrap(output.data()));
    }
    return response.build();
  }

  private static byte[] drain(InferResponseStream stream) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int written = stream.drainTo(out);
    assertThat(written).isEqualTo(out.size());
    return out.toByteArray();
  }
}
