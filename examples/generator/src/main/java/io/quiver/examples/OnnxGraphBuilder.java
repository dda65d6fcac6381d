package io.quiver.examples;

import ai.onnx.proto.OnnxMl.AttributeProto;
import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.OperatorSetIdProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnx.proto.OnnxMl.TensorShapeProto;
import ai.onnx.proto.OnnxMl.TypeProto;
import ai.onnx.proto.OnnxMl.ValueInfoProto;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Builds an ONNX {@link ModelProto} directly from the ONNX protobuf classes: IR version 8, default
 * opset 17, one graph. Shapes are given as {@code long[]} where -1 is a symbolic dimension (named
 * {@code batch} in position 0, {@code dim<i>} elsewhere); initializers are stored as little-endian
 * {@code raw_data}.
 *
 * <p>Not thread-safe; build one model per instance.
 */
public final class OnnxGraphBuilder {
  /** ONNX IR version written into every model (ONNX 1.10+ readers accept it). */
  public static final long IR_VERSION = 8;
  /** Default-domain opset of every model. */
  public static final long OPSET_VERSION = 17;

  private final GraphProto.Builder graph;
  private int nodeCount;

  public OnnxGraphBuilder(String graphName) {
    this.graph = GraphProto.newBuilder().setName(graphName);
  }

  /** Declares a graph input; {@code elemType} is a {@link TensorProto.DataType}. */
  public OnnxGraphBuilder input(String name, TensorProto.DataType elemType, long... shape) {
    graph.addInput(valueInfo(name, elemType, shape));
    return this;
  }

  /** Declares a graph output. */
  public OnnxGraphBuilder output(String name, TensorProto.DataType elemType, long... shape) {
    graph.addOutput(valueInfo(name, elemType, shape));
    return this;
  }

  /** Adds a node of the default domain; its name is the op type and a running number. */
  public OnnxGraphBuilder node(String opType, String[] inputs, String[] outputs, AttributeProto... attributes) {
    NodeProto.Builder node = NodeProto.newBuilder()
        .setName(opType.toLowerCase(java.util.Locale.ROOT) + "_" + nodeCount++)
        .setOpType(opType);
    for (String input : inputs) {
      node.addInput(input);
    }
    for (String output : outputs) {
      node.addOutput(output);
    }
    for (AttributeProto attribute : attributes) {
      node.addAttribute(attribute);
    }
    graph.addNode(node);
    return this;
  }

  /** Adds a node with one input and one output. */
  public OnnxGraphBuilder node(String opType, String input, String output, AttributeProto... attributes) {
    return node(opType, new String[] {input}, new String[] {output}, attributes);
  }

  /** Adds an FP32 initializer (a constant weight tensor) stored as little-endian raw data. */
  public OnnxGraphBuilder floatInitializer(String name, long[] dims, float[] values) {
    checkCount(name, dims, values.length);
    ByteBuffer raw = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    raw.asFloatBuffer().put(values);
    return initializer(name, TensorProto.DataType.FLOAT, dims, raw);
  }

  /** Adds an INT64 initializer (e.g. a shape operand) stored as little-endian raw data. */
  public OnnxGraphBuilder int64Initializer(String name, long[] dims, long[] values) {
    checkCount(name, dims, values.length);
    ByteBuffer raw = ByteBuffer.allocate(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    raw.asLongBuffer().put(values);
    return initializer(name, TensorProto.DataType.INT64, dims, raw);
  }

  /** Adds an INT32 initializer stored as little-endian raw data. */
  public OnnxGraphBuilder int32Initializer(String name, long[] dims, int[] values) {
    checkCount(name, dims, values.length);
    ByteBuffer raw = ByteBuffer.allocate(values.length * Integer.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    raw.asIntBuffer().put(values);
    return initializer(name, TensorProto.DataType.INT32, dims, raw);
  }

  /** The finished model. */
  public ModelProto build() {
    return ModelProto.newBuilder()
        .setIrVersion(IR_VERSION)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET_VERSION))
        .setProducerName("quiver-example-generator")
        .setProducerVersion("1")
        .setGraph(graph)
        .build();
  }

  /** Writes the model to {@code file}, creating parent directories. */
  public void write(Path file) throws IOException {
    Files.createDirectories(file.toAbsolutePath().getParent());
    try (OutputStream out = Files.newOutputStream(file)) {
      build().writeTo(out);
    }
  }

  public static AttributeProto intAttribute(String name, long value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INT).setI(value).build();
  }

  public static AttributeProto intsAttribute(String name, long... values) {
    AttributeProto.Builder attribute = AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.INTS);
    for (long value : values) {
      attribute.addInts(value);
    }
    return attribute.build();
  }

  public static AttributeProto floatAttribute(String name, float value) {
    return AttributeProto.newBuilder().setName(name).setType(AttributeProto.AttributeType.FLOAT).setF(value).build();
  }

  private OnnxGraphBuilder initializer(String name, TensorProto.DataType type, long[] dims, ByteBuffer raw) {
    TensorProto.Builder tensor = TensorProto.newBuilder().setName(name).setDataType(type.getNumber());
    for (long dim : dims) {
      tensor.addDims(dim);
    }
    // raw_data is little-endian by the ONNX spec whatever the writer's platform; the buffer was built LE.
    tensor.setRawData(ByteString.copyFrom(raw.rewind()));
    graph.addInitializer(tensor);
    return this;
  }

  private static void checkCount(String name, long[] dims, int count) {
    long expected = 1;
    for (long dim : dims) {
      expected *= dim;
    }
    if (expected != count) {
      throw new IllegalArgumentException("initializer '" + name + "': dims hold " + expected + " elements; got " + count);
    }
  }

  private static ValueInfoProto valueInfo(String name, TensorProto.DataType elemType, long[] shape) {
    TensorShapeProto.Builder shapeProto = TensorShapeProto.newBuilder();
    for (int i = 0; i < shape.length; i++) {
      TensorShapeProto.Dimension.Builder dim = TensorShapeProto.Dimension.newBuilder();
      if (shape[i] < 0) {
        dim.setDimParam(i == 0 ? "batch" : "dim" + i);
      } else {
        dim.setDimValue(shape[i]);
      }
      shapeProto.addDim(dim);
    }
    TypeProto type = TypeProto.newBuilder()
        .setTensorType(TypeProto.Tensor.newBuilder().setElemType(elemType.getNumber()).setShape(shapeProto))
        .build();
    return ValueInfoProto.newBuilder().setName(name).setType(type).build();
  }
}
