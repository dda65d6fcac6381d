package io.quiver.runtime.tensorflow;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.runtime.RunnerInputs;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TString;
import org.tensorflow.types.family.TType;

/**
 * One instance of a TensorFlow SavedModel: its own {@link SavedModelBundle} (graph, session,
 * variables) on the CPU.
 *
 * <p><b>Not thread-safe</b>: one {@link #run} at a time, as the {@link ModelRunner} contract says. A
 * run blocks its caller while TensorFlow computes on the session's own thread pools.
 *
 * <p>Tensor data paths (TensorFlow Java 1.1 has no public way to wrap memory it did not allocate as
 * a tensor, so each fixed-size input costs one copy):
 * <ul>
 *   <li>Fixed-size inputs: TensorFlow allocates the tensor, and the request's little-endian bytes
 *       are copied into it with one {@code ByteBuffer.put} (a memcpy through {@link NativeMemory});
 *       TensorFlow reads native order, little-endian on the platforms this runtime accepts.
 *   <li>BYTES inputs: one {@code byte[]} per element, then TensorFlow copies them into its string
 *       tensor. Elements are arbitrary bytes (TensorFlow strings need not be UTF-8).
 *   <li>Outputs: only the requested outputs are fetched; each is copied once from TensorFlow's
 *       memory into a new heap buffer that the caller owns (little-endian, position 0); BYTES
 *       outputs are re-encoded with 4-byte little-endian lengths.
 * </ul>
 * Every input tensor and the {@link Result} (which owns the output tensors) are closed before
 * {@link #run} returns, on success or failure; {@link #close} closes the bundle.
 */
public final class TensorFlowRunner implements ModelRunner {
  private static final Logger LOG = LoggerFactory.getLogger(TensorFlowRunner.class);

  private final String modelName;
  private final InstanceSpec instance;
  private final SavedModelBundle bundle;
  private final Session session;
  private final String[] inputNames;
  private final String[] inputTensors;
  private final DataType[] inputTypes;
  private final Class<? extends TType>[] inputClasses;
  private final String[] outputNames;
  private final String[] outputTensors;
  private final DataType[] outputTypes;
  private final org.tensorflow.Tensor[] created; // reused between calls (one call at a time)
  private boolean closed;

  @SuppressWarnings("unchecked")
  TensorFlowRunner(String modelName, InstanceSpec instance, SavedModelBundle bundle, ModelSignature signature,
      String[] inputTensors, String[] outputTensors) {
    this.modelName = modelName;
    this.instance = instance;
    this.bundle = bundle;
    this.session = bundle.session();
    int inputs = signature.inputs().size();
    this.inputNames = new String[inputs];
    this.inputTypes = new DataType[inputs];
    this.inputClasses = new Class[inputs];
    for (int i = 0; i < inputs; i++) {
      inputNames[i] = signature.inputs().get(i).name();
      inputTypes[i] = signature.inputs().get(i).dataType();
      inputClasses[i] = TfTypes.tensorClass(inputTypes[i]);
    }
    this.inputTensors = inputTensors;
    int outputs = signature.outputs().size();
    this.outputNames = new String[outputs];
    this.outputTypes = new DataType[outputs];
    for (int i = 0; i < outputs; i++) {
      outputNames[i] = signature.outputs().get(i).name();
      outputTypes[i] = signature.outputs().get(i).dataType();
    }
    this.outputTensors = outputTensors;
    this.created = new org.tensorflow.Tensor[inputs];
  }

  /**
   * Runs one batch. Allocates the TensorFlow input tensors (one copy of each input's data), the
   * session runner, and the output buffers (one copy of each output's data); for BYTES, one array
   * per element.
   */
  @Override
  public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
    RunnerInputs.checkRun(modelName, instance, closed, inputs.length, inputNames.length);
    for (int index : outputIndices) {
      RunnerInputs.checkOutputIndex(modelName, index, outputNames.length);
    }
    try {
      Session.Runner runner = session.runner();
      for (int i = 0; i < inputs.length; i++) {
        if (inputs[i] == null) {
          throw InferenceException.invalidField("inputs[" + inputNames[i] + "]", "model '%s': input '%s' is missing",
              modelName, inputNames[i]);
        }
        created[i] = createInput(i, inputs[i]);
        runner.feed(inputTensors[i], created[i]);
      }
      for (int index : outputIndices) {
        runner.fetch(outputTensors[index]);
      }
      try (Result result = runner.run()) {
        Tensor[] out = new Tensor[outputIndices.length];
        for (int i = 0; i < out.length; i++) {
          int index = outputIndices[i];
          out[i] = copyOutput(outputNames[index], outputTypes[index], result.get(i));
        }
        return out;
      }
    } catch (InferenceException e) {
      throw e;
    } catch (RuntimeException e) {
      // TensorFlowException subclasses: shape mismatches inside the graph, failed ops, out of memory.
      throw new InferenceException(ErrorCode.INTERNAL,
          String.format("model '%s': TensorFlow failed to run: %s", modelName, e.getMessage()), null, 0L, e);
    } finally {
      for (int i = 0; i < created.length; i++) {
        if (created[i] != null) {
          created[i].close();
          created[i] = null;
        }
      }
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      bundle.close();
    } catch (RuntimeException e) {
      LOG.warn("model '{}' instance {}: closing the SavedModel failed", modelName, instance.index(), e);
    }
  }

  @Override
  public String toString() {
    return "TensorFlowRunner[" + modelName + "#" + instance.index() + "]";
  }

  private org.tensorflow.Tensor createInput(int index, Tensor tensor) {
    long[] shape = tensor.shape();
    long elements = RunnerInputs.elementCount(modelName, inputNames[index], shape);
    ByteBuffer data = tensor.data(); // a view at position 0
    if (inputTypes[index] == DataType.BYTES) {
      return TString.tensorOfBytes(Shape.of(shape), DataBuffers.ofObjects(splitBytes(index, data, elements)));
    }
    long expectedBytes = RunnerInputs.checkByteSize(modelName, inputNames[index], inputTypes[index], shape, elements, data);
    org.tensorflow.Tensor created = org.tensorflow.Tensor.of(inputClasses[index], Shape.of(shape));
    try {
      if (expectedBytes > 0) {
        NativeMemory.view(created).put(data); // the one copy: request bytes → TensorFlow's buffer
      }
      return created;
    } catch (RuntimeException e) {
      created.close();
      throw e;
    }
  }

  private byte[][] splitBytes(int index, ByteBuffer data, long elements) {
    long count = BytesElements.count(data);
    if (count != elements) {
      throw InferenceException.invalidField("inputs[" + inputNames[index] + "]",
          "model '%s': input '%s' needs %d BYTES elements; got %s", modelName, inputNames[index], elements,
          count < 0 ? "malformed data" : Long.toString(count));
    }
    return BytesElements.decode(data).toArray(new byte[0][]);
  }

  private Tensor copyOutput(String name, DataType type, org.tensorflow.Tensor value) {
    long[] shape = value.shape().asArray();
    if (type == DataType.BYTES) {
      if (!(value instanceof TString)) {
        throw InferenceException.internal(
            String.format("model '%s': output '%s' should be a string tensor; TensorFlow returned %s", modelName, name,
                value.dataType()), null);
      }
      long count = Tensor.elementCount(shape);
      byte[][] elements = new byte[(int) count][];
      ((TString) value).asBytes().copyTo(DataBuffers.of(elements, false, false));
      List<byte[]> list = new ArrayList<>(Arrays.asList(elements));
      return new Tensor(name, type, shape, BytesElements.encode(list));
    }
    if (TfTypes.toDataType(value.dataType()) != type) {
      throw InferenceException.internal(String.format("model '%s': output '%s' is %s in the config but TensorFlow returned %s",
          modelName, name, type.wireName(), value.dataType()), null);
    }
    // The one copy: TensorFlow's memory → a heap buffer the caller owns.
    ByteBuffer copy = ByteBuffer.allocate((int) value.numBytes()).order(ByteOrder.LITTLE_ENDIAN);
    copy.put(NativeMemory.view(value)).flip();
    return new Tensor(name, type, shape, copy);
  }
}
