package io.quiver.core;

import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelOutput;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The inputs, outputs and batching limit of a model version, derived once from its completed
 * ModelConfig and shared read-only by every request (immutable, thread-safe).
 */
public final class ModelSignature {
  private final int maxBatchSize;
  private final List<TensorSpec> inputs;
  private final List<TensorSpec> outputs;
  private final Map<String, Integer> inputIndex;
  private final Map<String, Integer> outputIndex;
  private final int[] allOutputIndices;

  public ModelSignature(int maxBatchSize, List<TensorSpec> inputs, List<TensorSpec> outputs) {
    this.maxBatchSize = maxBatchSize;
    this.inputs = List.copyOf(inputs);
    this.outputs = List.copyOf(outputs);
    this.inputIndex = indexByName(this.inputs);
    this.outputIndex = indexByName(this.outputs);
    int clientOutputs = 0;
    for (TensorSpec output : this.outputs) {
      clientOutputs += output.clientFacing() ? 1 : 0;
    }
    this.allOutputIndices = new int[clientOutputs];
    int k = 0;
    for (int i = 0; i < this.outputs.size(); i++) {
      if (this.outputs.get(i).clientFacing()) {
        allOutputIndices[k++] = i;
      }
    }
  }

  /**
   * The positions of every client output (0, 1, ..., unless the model has sequence-state outputs):
   * what a request that names no output gets. Shared: callers must not modify it.
   */
  public int[] allOutputIndices() {
    return allOutputIndices;
  }

  /**
   * Builds the signature of a completed config. Throws INVALID_ARGUMENT naming the tensor when a
   * datatype is missing or unknown.
   */
  public static ModelSignature of(ModelConfig config) {
    List<TensorSpec> inputs = new ArrayList<>(config.getInputCount());
    for (ModelInput input : config.getInputList()) {
      inputs.add(new TensorSpec(input.getName(), dataType(config, "input", input.getName(), input.getDataType()),
          toArray(input.getDimsList()), input.getOptional()));
    }
    List<TensorSpec> outputs = new ArrayList<>(config.getOutputCount());
    for (ModelOutput output : config.getOutputList()) {
      outputs.add(new TensorSpec(output.getName(), dataType(config, "output", output.getName(), output.getDataType()),
          toArray(output.getDimsList())));
    }
    // Sequence batching: the inputs the server sets and the state outputs it reads come after the
    // client's tensors (Triton keeps them out of the config's input and output lists).
    SequenceBatchingSpec sequence = SequenceBatchingSpec.of(config);
    if (sequence != null) {
      for (SequenceBatchingSpec.Control control : sequence.controls()) {
        inputs.add(new TensorSpec(control.inputName(), control.dataType(), new long[] {1}, false,
            TensorSpec.Role.SEQUENCE_CONTROL));
      }
      for (SequenceBatchingSpec.State state : sequence.states()) {
        inputs.add(new TensorSpec(state.inputName(), state.dataType(), state.dims().clone(), false,
            TensorSpec.Role.SEQUENCE_STATE));
        outputs.add(new TensorSpec(state.outputName(), state.dataType(), state.dims().clone(), false,
            TensorSpec.Role.SEQUENCE_STATE));
      }
    }
    return new ModelSignature(config.getMaxBatchSize(), inputs, outputs);
  }

  /** 0 when the model does not batch (request shapes are the config dims exactly). */
  public int maxBatchSize() {
    return maxBatchSize;
  }

  public boolean batches() {
    return maxBatchSize > 0;
  }

  public List<TensorSpec> inputs() {
    return inputs;
  }

  public List<TensorSpec> outputs() {
    return outputs;
  }

  /** Whether any input is set by the sequence batcher (the model has sequence_batching controls or states). */
  public boolean hasServerInputs() {
    for (TensorSpec input : inputs) {
      if (!input.clientFacing()) {
        return true;
      }
    }
    return false;
  }

  /** Position of the named input in {@link #inputs()}, or -1. */
  public int inputIndex(String name) {
    return inputIndex.getOrDefault(name, -1);
  }

  /** Position of the named output in {@link #outputs()}, or -1. */
  public int outputIndex(String name) {
    return outputIndex.getOrDefault(name, -1);
  }

  /** The shape a client sees in metadata: dims, with a leading -1 when the model batches. */
  public long[] metadataShape(TensorSpec spec) {
    if (!batches()) {
      return spec.dims();
    }
    long[] shape = new long[spec.dims().length + 1];
    shape[0] = -1;
    System.arraycopy(spec.dims(), 0, shape, 1, spec.dims().length);
    return shape;
  }

  private static DataType dataType(ModelConfig config, String kind, String name, io.quiver.proto.inference.DataType type) {
    DataType mapped = DataType.fromConfig(type);
    if (mapped == null) {
      throw InferenceException.invalidArgument("model '%s': %s '%s' has no valid data_type (was %s)",
          config.getName(), kind, name, type);
    }
    return mapped;
  }

  private static long[] toArray(List<Long> dims) {
    long[] out = new long[dims.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = dims.get(i);
    }
    return out;
  }

  private static Map<String, Integer> indexByName(List<TensorSpec> specs) {
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < specs.size(); i++) {
      index.put(specs.get(i).name(), i);
    }
    return Collections.unmodifiableMap(index);
  }
}
