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
import io.quiver.core.TensorSpec;
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
import java.util.LinkedHashMap;
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
 *       native order, little-endian on the platforms this runtime accepts). When the caller passes the
 *       same input Tensor object again (the batcher's pooled batch tensor of a given size), the
 *       OnnxTensor built over it is reused: no JNI tensor creation per batch. A heap buffer is copied
 *       once here.
 *   <li>BYTES inputs: ONNX Runtime Java 1.23 offers string tensors only from {@code String[]} (there
 *       is no byte[]-based string tensor API, and its JNI side copies each String with
 *       {@code GetStringUTFChars}, i.e. as modified UTF-8: U+0000 becomes C0 80 and characters outside the
 *       Basic Multilingual Plane become 6-byte surrogate pairs inside the model; outputs are decoded the
 *       same way, so text round-trips), so each element is decoded as strict UTF-8 and an element that is
 *       not valid UTF-8 (binary data) is INVALID_ARGUMENT. The model load says so once (OnnxRuntime).
 *   <li>Outputs of a shape known before the run (fixed dims, not BYTES): ONNX Runtime writes them into
 *       this runner's own direct buffers (pinned outputs), two sets used in turn, so the outputs of a
 *       run stay valid until the second following run (the {@link ModelRunner} contract) and a run
 *       makes no output objects and no copy. Other outputs are copied once from ONNX Runtime's memory
 *       into a new heap buffer that the caller owns; BYTES outputs are re-encoded with 4-byte
 *       little-endian lengths. Only the requested outputs are computed.
 * </ul>
 * A Result, and every OnnxTensor not kept for reuse, is closed before {@link #run} returns, on success
 * or failure; kept ones are closed by {@link #close()}.
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
  /** Per input, the last batch tensor per row count seen and the OnnxTensor kept over it (fixed shapes). */
  private final Tensor[][] keptFor;
  private final OnnxTensor[][] kept;
  private final int maxRows;
  /** Per output, bytes per row when its shape is known before the run (pinned output), else -1. */
  private final long[] pinnedRowBytes;
  private final long[][] outputDims;
  private final PinnedOutputs[] pinnedSets;
  private long runs;
  private boolean pinning;
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
    this.batches = signature.batches();
    this.maxRows = Math.max(1, signature.maxBatchSize());
    this.keptFor = new Tensor[inputs][];
    this.kept = new OnnxTensor[inputs][];
    for (int i = 0; i < inputs; i++) {
      if (inputTypes[i] != DataType.BYTES && inputJavaTypes[i] != null) {
        keptFor[i] = new Tensor[maxRows + 1];
        kept[i] = new OnnxTensor[maxRows + 1];
      }
    }
    this.pinnedRowBytes = new long[outputs];
    this.outputDims = new long[outputs][];
    boolean any = false;
    for (int j = 0; j < outputs; j++) {
      TensorSpec spec = signature.outputs().get(j);
      outputDims[j] = spec.dims();
      long bytes = outputTypes[j].isFixedSize() && OrtTypes.inputJavaType(outputTypes[j]) != null
          ? outputTypes[j].byteSize() : -1;
      for (long d : spec.dims()) {
        bytes = d > 0 && bytes > 0 ? bytes * d : -1;
      }
      pinnedRowBytes[j] = bytes;
      any |= bytes > 0;
    }
    this.pinning = any;
    this.pinnedSets = new PinnedOutputs[] {new PinnedOutputs(outputs), new PinnedOutputs(outputs)};
  }

  private final boolean batches;

  /**
   * One set of pinned output buffers: per output, a direct buffer for a full batch, and per row count
   * the OnnxTensor and the Tensor over its first rows (built on first use, kept until close).
   */
  private final class PinnedOutputs {
    final ByteBuffer[] buffers;
    final OnnxTensor[][] onnx;
    final Tensor[][] tensors;
    /** Per row count, the pinned-output map for "every output" (the usual request). */
    final Map<String, OnnxTensor>[] allOutputs;

    @SuppressWarnings("unchecked")
    PinnedOutputs(int outputs) {
      buffers = new ByteBuffer[outputs];
      onnx = new OnnxTensor[outputs][];
      tensors = new Tensor[outputs][];
      allOutputs = new Map[maxRows + 1];
    }

    /** The pinned output {@code j} for a batch of {@code rows}, created on first use. */
    OnnxTensor output(int j, int rows) throws OrtException {
      if (onnx[j] == null) {
        onnx[j] = new OnnxTensor[maxRows + 1];
        tensors[j] = new Tensor[maxRows + 1];
        buffers[j] = ByteBuffer.allocateDirect((int) (pinnedRowBytes[j] * maxRows)).order(ByteOrder.nativeOrder());
      }
      OnnxTensor t = onnx[j][rows];
      if (t == null) {
        long[] shape = shape(j, rows);
        ByteBuffer view = buffers[j].slice(0, (int) (pinnedRowBytes[j] * rows)).order(ByteOrder.LITTLE_ENDIAN);
        t = OnnxTensor.createTensor(environment, view, shape, OrtTypes.inputJavaType(outputTypes[j]));
        onnx[j][rows] = t;
        tensors[j][rows] = new Tensor(outputNames[j], outputTypes[j], shape, view);
      }
      return t;
    }

    private long[] shape(int j, int rows) {
      long[] dims = outputDims[j];
      if (!batches) {
        return dims.clone();
      }
      long[] shape = new long[dims.length + 1];
      shape[0] = rows;
      System.arraycopy(dims, 0, shape, 1, dims.length);
      return shape;
    }

    void close() {
      for (OnnxTensor[] perRows : onnx) {
        if (perRows != null) {
          for (OnnxTensor t : perRows) {
            if (t != null) {
              t.close();
            }
          }
        }
      }
    }
  }

  /**
   * Runs one batch. Allocates ONNX Runtime's own per-call arrays and Result; besides that, only what a
   * path that cannot be reused needs (an input tensor not seen before, outputs of unknown shape and
   * their heap copies, one String per BYTES element).
   */
  @Override
  public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
    RunnerInputs.checkRun(modelName, instance, closed, inputs.length, inputNames.length);
    PinnedOutputs pinned = pinnedSets[(int) (runs++ & 1)]; // two sets in turn: see the class doc
    try {
      int rows = 1;
      for (int i = 0; i < inputs.length; i++) {
        if (inputs[i] != null) {
          OnnxTensor tensor = input(i, inputs[i]);
          feeds.put(inputNames[i], tensor);
          if (batches && inputs[i].shape().length > 0) {
            rows = (int) Math.min(Integer.MAX_VALUE, inputs[i].shape()[0]);
          }
        } else {
          feeds.remove(inputNames[i]);
        }
      }
      if (pinning && rows >= 1 && rows <= maxRows && allPinnable(outputIndices)) {
        try {
          return runPinned(pinned, rows, outputIndices);
        } catch (OrtException | IllegalArgumentException | IllegalStateException e) {
          // The model's real output shape is not what its config says (ONNX Runtime refuses the pinned
          // buffer): stop pinning for this runner and let ONNX Runtime allocate from now on.
          pinning = false;
          LOG.warn("model '{}' instance {}: ONNX Runtime refused pre-allocated outputs ({}); outputs are copied from now on",
              modelName, instance.index(), e.getMessage());
        }
      }
      Set<String> requested = requestedOutputs(outputIndices);
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
    }
  }

  private boolean allPinnable(int[] outputIndices) {
    for (int index : outputIndices) {
      if (index < 0 || index >= pinnedRowBytes.length || pinnedRowBytes[index] <= 0) {
        return false;
      }
    }
    return true;
  }

  private Tensor[] runPinned(PinnedOutputs set, int rows, int[] outputIndices) throws OrtException {
    Map<String, OnnxTensor> outputs;
    if (outputIndices.length == outputNames.length && isIdentity(outputIndices)) {
      outputs = set.allOutputs[rows];
      if (outputs == null) {
        Map<String, OnnxTensor> all = new LinkedHashMap<>();
        for (int j = 0; j < outputNames.length; j++) {
          all.put(outputNames[j], set.output(j, rows));
        }
        outputs = all;
        set.allOutputs[rows] = all;
      }
    } else {
      outputs = new LinkedHashMap<>(); // a subset of the outputs: rare, allocates
      for (int index : outputIndices) {
        outputs.put(outputNames[index], set.output(index, rows));
      }
    }
    try (OrtSession.Result result = session.run(feeds, outputs)) {
      // The Result does not own pinned outputs: closing it leaves them for the next use.
      Tensor[] out = new Tensor[outputIndices.length];
      for (int j = 0; j < outputIndices.length; j++) {
        out[j] = set.tensors[outputIndices[j]][rows];
      }
      return out;
    }
  }

  private static boolean isIdentity(int[] indices) {
    for (int j = 0; j < indices.length; j++) {
      if (indices[j] != j) {
        return false;
      }
    }
    return true;
  }

  /** The OnnxTensor for input {@code i}: the one kept for this Tensor object, or a new one (kept if it may recur). */
  private OnnxTensor input(int i, Tensor tensor) throws OrtException {
    Tensor[] seen = keptFor[i];
    long[] shape = tensor.shape();
    int rows = !batches ? 1 : shape.length > 0 && shape[0] >= 0 && shape[0] <= maxRows ? (int) shape[0] : -1;
    if (seen != null && rows >= 0 && seen[rows] == tensor) {
      return kept[i][rows];
    }
    OnnxTensor made = createInput(i, tensor);
    if (seen != null && rows >= 0 && tensor.data().isDirect()) {
      // The caller may pass this object again (its pooled batch tensor): keep it until replaced.
      if (kept[i][rows] != null) {
        kept[i][rows].close();
      }
      seen[rows] = tensor;
      kept[i][rows] = made;
    } else {
      created[i] = made; // closed after this run
    }
    return made;
  }

  /** Closes the session; idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (OnnxTensor[] perRows : kept) {
      if (perRows != null) {
        for (OnnxTensor t : perRows) {
          if (t != null) {
            t.close();
          }
        }
      }
    }
    for (PinnedOutputs set : pinnedSets) {
      set.close();
    }
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
    ByteBuffer[] views = BytesElements.slices(data, strings.length);
    for (int i = 0; i < strings.length; i++) {
      try {
        CharBuffer chars = utf8.reset().decode(views[i]);
        strings[i] = chars.toString();
      } catch (CharacterCodingException e) {
        throw InferenceException.invalidField("inputs[" + inputNames[index] + "]",
            "model '%s': input '%s' element %d is not valid UTF-8; ONNX Runtime's Java API takes string tensors as"
                + " text only, so BYTES elements of ONNX models must be UTF-8 text (binary data: declare the input"
                + " UINT8, or serve the model with TensorFlow)",
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
