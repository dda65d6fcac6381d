package io.quiver.runtime.onnxruntime;

import com.google.protobuf.TextFormat;
import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Loads generated models the way the model manager does: declared config → completed config → runner. */
final class TestRepository {
  final OnnxRuntime runtime = new OnnxRuntime();
  final Path root;

  TestRepository(Path root) {
    this.root = root;
  }

  Path modelFile(String model) {
    return root.resolve(model).resolve(ExampleModels.VERSION).resolve(ExampleModels.MODEL_FILE);
  }

  /** The parsed config.pbtxt, or a config holding only the name when there is none. */
  ModelConfig declared(String model) {
    Path file = root.resolve(model).resolve(ExampleModels.CONFIG_FILE);
    ModelConfig.Builder builder = ModelConfig.newBuilder();
    try {
      if (Files.exists(file)) {
        TextFormat.merge(Files.readString(file), builder);
      } else {
        builder.setName(model);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return builder.build();
  }

  ModelConfig completed(String model) {
    return runtime.completeConfig(declared(model), modelFile(model));
  }

  ModelRunner runner(String model) {
    return runtime.newRunner(completed(model), modelFile(model), InstanceSpec.cpu(0));
  }

  static Tensor tensor(String name, DataType type, long[] shape, byte[] bytes) {
    ByteBuffer data = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.LITTLE_ENDIAN);
    data.put(bytes).flip();
    return new Tensor(name, type, shape, data);
  }

  static Tensor floats(String name, long[] shape, float... values) {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    data.asFloatBuffer().put(values);
    return new Tensor(name, DataType.FP32, shape, data);
  }

  static Tensor ints(String name, long[] shape, int... values) {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    data.asIntBuffer().put(values);
    return new Tensor(name, DataType.INT32, shape, data);
  }

  static Tensor longs(String name, long[] shape, long... values) {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    data.asLongBuffer().put(values);
    return new Tensor(name, DataType.INT64, shape, data);
  }

  static byte[] bytes(Tensor tensor) {
    ByteBuffer data = tensor.data();
    byte[] out = new byte[data.remaining()];
    data.get(out);
    return out;
  }

  static float[] floatValues(Tensor tensor) {
    ByteBuffer data = tensor.data();
    float[] out = new float[data.remaining() / 4];
    data.asFloatBuffer().get(out);
    return out;
  }

  static int[] intValues(Tensor tensor) {
    ByteBuffer data = tensor.data();
    int[] out = new int[data.remaining() / 4];
    data.asIntBuffer().get(out);
    return out;
  }
}
