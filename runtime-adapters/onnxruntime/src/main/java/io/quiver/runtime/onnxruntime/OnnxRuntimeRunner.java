package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
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
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One instance of an ONNX model: one {@link OrtSession} on the CPU.
 *
 * <p><b>Not thread-safe</b>: one {@link #run} at a time, as the {@link ModelRunner} contract says (the
 * runner reuses its feed map and output-name set between calls). A run blocks its caller while
 * ONNX Runtime computes on the session's own intra-op threads.
 *
 * <p>Tensor data paths:
 * <ul>
 *   <li>Fixed-size inputs: the request's direct little-endian buffer is wrapped by
 *       {@code OnnxTensor.createTensor(env, buffer, shape, type)} without a copy (ONNX Runtime reads
 *       native order, little-endian on the platforms this runtime accepts). A heap buffer is copied
 *       once here.
 *   <li>BYTES inputs: ONNX Runtime Java 1.23 offers string tensors only from {@code String[]} (there
 *       is no byte[]-based string tensor API), so each element is decoded as strict UTF-8; an element
 *       that is not valid UTF-8 is INVALID_ARGUMENT.
 *   <li>Outputs: only the requested outputs are computed and fetched; each is copied once from ONNX
 *       Runtime's memory into a new heap buffer that the caller owns (little-endian, position 0);
 *       BYTES outputs are re-encoded with 4-byte little-endian lengths.
 * </ul>
 * Every OnnxTensor and Result is closed before {@link #run} returns, on success or failure.
 */
public final class OnnxRuntimeRunner implements ModelRunner {
  private static final Logger LOG = LoggerFactory.getLogger(OnnxRuntimeRunner.class);

  private final String modelName;
  private final InstanceSpec instance;
  private final OrtEnvironment environment;
  private final OrtSession session;
  private final String[] inputNames;
  private final DataType[] inputTypes;
  private final OnnxJavaType[] inputJavaTypes;
  private final String[] outputNames;
  private final DataType[] outputTypes;

  // Reused between calls (one call at a time): the feeds, the tensors created for them, the decoder.
  private final Map<String, OnnxTensor> feeds;
  private final OnnxTensor[] created;
  private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
      .onMalformedInput(CodingErrorAction.REPORT)
      .onUnmappableCharacter(CodingErrorAction.REPORT);
  private int[] lastOutputIndices = new int[0];
  private Set<String> lastRequested = Set.of();
  private boolean closed;

  OnnxRuntimeRunner(String modelName, InstanceSpec instance, OrtEnvironment environment, OrtSession session,
      ModelSignature signature) {
    this.modelName = modelName;
    this.instance = instance;
    this.environment = environment;
    this.session = session;
    int inputs = signature.inputs().size();
    this.inputNames = new String[inputs];
    this.inputTypes = new DataType[inputs];
    this.inputJavaTypes = new OnnxJavaType[inputs];
    for (int i = 0; i < inputs; i++) {
      inputNames[i] = signature.inputs().get(i).name();
      inputTypes[i] = signature.inputs().get(i).dataType();
      inputJavaTypes[i] = OrtTypes.inputJavaType(inputTypes[i]);
    }
    int outputs = signature.outputs().size();
    this.outputNames = new String[outputs];
    this.outputTypes = new DataType[outputs];
    for (int i = 0; i < outputs; i++) {
      outputNames[i] = signature.outputs().get(i).name();
      outputTypes[i] = signature.outputs().get(i).dataType();
    }
    this.feeds = new HashMap<>(inputs * 2);
    this.created = new OnnxTensor[inputs];
  }

  /**
   * Runs one batch. Allocates the ONNX Runtime input and output wrappers, the output buffers (one
   * copy of each output's data) and, for BYTES, one String per element.
   */
  @Override
  public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
    RunnerInputs.checkRun(modelName, instance, closed, inputs.length, inputNames.length);
    Set<String> requested = requestedOutputs(outputIndices);
    try {
      for (int i = 0; i < inputs.length; i++) {
        if (inputs[i] != null) {
          created[i] = createInput(i, inputs[i]);
          feeds.put(inputNames[i], created[i]);
        }
      }
      try (OrtSession.Result result = session.run(feeds, requested)) {
        Tensor[] outputs = new Tensor[outputIndices.length];
        for (int j = 0; j < outputIndices.length; j++) {
          int index = outputIndices[j];
          outputs[j] = copyOutput(outputNames[index], outputTypes[index], result.get(outputNames[index]));
        }
        return outputs;
      }
    } catch (OrtException | IllegalArgumentException | IllegalStateException e) {
      // ONNX Runtime's Java layer also reports some failures (shape/buffer mismatch, closed handles) as
      // unchecked exceptions; all of them are the runtime failing, not the caller.
      throw new InferenceException(ErrorCode.INTERNAL,
          String.format("model '%s' instance %d: ONNX Runtime failed: %s", modelName, instance.index(), e.getMessage()),
          null, 0L, e);
    } finally {
      for (int i = 0; i < created.length; i++) {
        if (created[i] != null) {
          created[i].close();
          created[i] = null;
        }
      }
      feeds.clear();
    }
  }

  /** Closes the session; idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      session.close();
    } catch (OrtException e) {
      LOG.warn("model '{}' instance {}: closing the ONNX Runtime session failed", modelName, instance.index(), e);
    }
  }

  @Override
  public String toString() {
    return "OnnxRuntimeRunner[" + modelName + "#" + instance.index() + "]";
  }

  private Set<String> requestedOutputs(int[] outputIndices) {
    if (Arrays.equals(outputIndices, lastOutputIndices)) {
      return lastRequested; // the usual case: the same outputs as last time, no allocation
    }
    Set<String> names = new LinkedHashSet<>();
    for (int index : outputIndices) {
      RunnerInputs.checkOutputIndex(modelName, index, outputNames.length);
      names.add(outputNames[index]);
    }
    lastOutputIndices = outputIndices.clone();
    lastRequested = names;
    return names;
  }

  private OnnxTensor createInput(int index, Tensor tensor) throws OrtException {
    long[] shape = tensor.shape();
    long elements = RunnerInputs.elementCount(modelName, inputNames[index], shape);
    if (inputTypes[index] == DataType.BYTES) {
      return OnnxTensor.createTensor(environment, decodeStrings(index, tensor, elements), shape);
    }
    ByteBuffer data = tensor.data(); // a view at position 0: direct buffers are passed without a copy
    RunnerInputs.checkByteSize(modelName, inputNames[index], inputTypes[index], shape, elements, data);
    if (!data.isDirect()) {
      // The SPI promises direct buffers; a heap buffer gets one copy here, because ONNX Runtime 1.23
      // fails on heap ByteBuffers of types wider than a byte (ClassCastException in OrtUtil.prepareBuffer).
      data = ByteBuffer.allocateDirect(data.remaining()).order(ByteOrder.LITTLE_ENDIAN).put(data).flip();
    }
    return OnnxTensor.createTensor(environment, data, shape, inputJavaTypes[index]);
  }

  private String[] decodeStrings(int index, Tensor tensor, long elements) {
    ByteBuffer data = tensor.data();
    long count = BytesElements.count(data);
    if (count != elements) {
      throw InferenceException.invalidField("inputs[" + inputNames[index] + "]",
          "model '%s': input '%s' with shape %s needs %d BYTES elements; got %s", modelName, inputNames[index],
          Arrays.toString(tensor.shape()), elements, count < 0 ? "malformed data" : Long.toString(count));
    }
    String[] strings = new String[(int) elements];
    int pos = 0;
    for (int i = 0; i < strings.length; i++) {
      int length = data.getInt(pos);
      ByteBuffer element = data.slice(pos + 4, length);
      pos += 4 + length;
      try {
        CharBuffer chars = utf8.reset().decode(element);
        strings[i] = chars.toString();
      } catch (CharacterCodingException e) {
        throw InferenceException.invalidField("inputs[" + inputNames[index] + "]",
            "model '%s': input '%s' element %d is not valid UTF-8; ONNX Runtime's Java API takes string tensors as text only",
            modelName, inputNames[index], i);
      }
    }
    return strings;
  }

  private Tensor copyOutput(String name, DataType type, Optional<OnnxValue> value) throws OrtException {
    if (value.isEmpty() || !(value.get() instanceof OnnxTensor)) {
      throw InferenceException.internal(
          String.format("model '%s': ONNX Runtime returned no tensor for output '%s'", modelName, name), null);
    }
    OnnxTensor tensor = (OnnxTensor) value.get();
    long[] shape = tensor.getInfo().getShape();
    if (type == DataType.BYTES) {
      List<String> strings = new ArrayList<>((int) Math.max(0, Tensor.elementCount(shape)));
      flatten(tensor.getValue(), strings);
      return new Tensor(name, type, shape, BytesElements.encodeStrings(strings));
    }
    if (Tensor.elementCount(shape) == 0) {
      return new Tensor(name, type, shape, ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN));
    }
    // getByteBuffer() is the one copy: from ONNX Runtime's memory into a new heap buffer in native
    // (= little-endian) order. Unsigned outputs come back with their bits untouched.
    ByteBuffer data = tensor.getByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    return new Tensor(name, type, shape, data);
  }

  /** ONNX Runtime returns string tensors as nested String arrays (or one String for a scalar). */
  private static void flatten(Object value, List<String> out) {
    if (value instanceof String) {
      out.add((String) value);
    } else if (value instanceof Object[]) {
      for (Object element : (Object[]) value) {
        flatten(element, out);
      }
    } else {
      throw InferenceException.internal("unexpected string tensor value of " + value.getClass(), null);
    }
  }
}
