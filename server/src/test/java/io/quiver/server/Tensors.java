package io.quiver.server;

import com.google.protobuf.ByteString;
import io.quiver.proto.inference.ModelInferRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Test helpers to build request tensors. */
final class Tensors {
  private Tensors() {}

  static ByteString floats(float... values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      buffer.putFloat(v);
    }
    return ByteString.copyFrom(buffer.flip());
  }

  static ByteString ints(int... values) {
    ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      buffer.putInt(v);
    }
    return ByteString.copyFrom(buffer.flip());
  }

  static int[] toInts(ByteString bytes) {
    ByteBuffer buffer = bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    int[] out = new int[bytes.size() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = buffer.getInt();
    }
    return out;
  }

  static float[] toFloats(ByteString bytes) {
    ByteBuffer buffer = bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[bytes.size() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = buffer.getFloat();
    }
    return out;
  }

  static ModelInferRequest.InferInputTensor input(String name, String datatype, long... shape) {
    ModelInferRequest.InferInputTensor.Builder input = ModelInferRequest.InferInputTensor.newBuilder()
        .setName(name)
        .setDatatype(datatype);
    for (long dim : shape) {
      input.addShape(dim);
    }
    return input.build();
  }

  static float[] sequence(int n, float start) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = start + i * 0.5f;
    }
    return out;
  }
}
