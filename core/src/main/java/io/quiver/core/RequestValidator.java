package io.quiver.core;

import java.util.Arrays;
import java.util.List;

/**
 * Checks decoded request tensors against a model's signature and puts them in signature order.
 * Every failure is INVALID_ARGUMENT with a message naming the tensor and the values. Stateless and
 * thread-safe; shared by every transport (gRPC, REST) so validation is the same everywhere.
 */
public final class RequestValidator {
  private RequestValidator() {}

  /**
   * Validates the inputs and returns them ordered as the signature's inputs (absent optional inputs
   * are null), plus the batch size, via {@code out}.
   *
   * @return the request's batch size: the leading dimension when the model batches, else 1
   */
  public static int validateInputs(String model, ModelSignature signature, List<Tensor> inputs, Tensor[] out) {
    List<TensorSpec> specs = signature.inputs();
    if (out.length != specs.size()) {
      throw new IllegalArgumentException("out must have one slot per model input");
    }
    Arrays.fill(out, null);
    long batch = -1;
    String batchFrom = null;
    for (Tensor tensor : inputs) {
      int index = signature.inputIndex(tensor.name());
      if (index < 0) {
        throw InferenceException.invalidField("inputs", "model '%s' has no input named '%s'; its inputs are %s",
            model, tensor.name(), names(specs));
      }
      if (out[index] != null) {
        throw InferenceException.invalidField("inputs", "input '%s' is given more than once", tensor.name());
      }
      TensorSpec spec = specs.get(index);
      if (!spec.clientFacing()) {
        throw InferenceException.invalidField("inputs", "input '%s' of model '%s' is a sequence_batching %s input that"
            + " the server sets for each request; do not send it", tensor.name(), model,
            spec.role() == TensorSpec.Role.SEQUENCE_CONTROL ? "control" : "state");
      }
      checkTensor(model, signature, spec, tensor);
      if (signature.batches()) {
        long rows = tensor.shape()[0];
        if (batch >= 0 && rows != batch) {
          throw InferenceException.invalidField("inputs", "inputs '%s' and '%s' disagree on the batch dimension: %d vs %d",
              batchFrom, tensor.name(), batch, rows);
        }
        batch = rows;
        batchFrom = tensor.name();
      }
      out[index] = tensor;
    }
    for (int i = 0; i < specs.size(); i++) {
      if (out[i] == null && !specs.get(i).optional() && specs.get(i).clientFacing()) {
        throw InferenceException.invalidField("inputs", "input '%s' is missing; model '%s' requires %s",
            specs.get(i).name(), model, names(specs));
      }
    }
    if (!signature.batches()) {
      return 1;
    }
    if (batch < 1) {
      throw InferenceException.invalidField("inputs", "batch dimension must be at least 1; was %d", batch);
    }
    return (int) batch;
  }

  /**
   * Checks the requested output names and returns their positions in the signature; an empty list
   * means every output.
   */
  public static int[] resolveOutputs(String model, ModelSignature signature, List<String> requested) {
    if (requested.isEmpty()) {
      return signature.allOutputIndices(); // shared, like every InferRequest's indices: read-only
    }
    int[] indices = new int[requested.size()];
    for (int i = 0; i < indices.length; i++) {
      int index = signature.outputIndex(requested.get(i));
      if (index >= 0 && !signature.outputs().get(index).clientFacing()) {
        throw InferenceException.invalidField("outputs", "output '%s' of model '%s' is a sequence_batching state output"
            + " that the server keeps between requests; it cannot be requested", requested.get(i), model);
      }
      if (index < 0) {
        throw InferenceException.invalidField("outputs", "model '%s' has no output named '%s'; its outputs are %s",
            model, requested.get(i), names(signature.outputs()));
      }
      for (int j = 0; j < i; j++) {
        if (indices[j] == index) {
          throw InferenceException.invalidField("outputs", "output '%s' is requested more than once", requested.get(i));
        }
      }
      indices[i] = index;
    }
    return indices;
  }

  /**
   * Checks one tensor against the signature's input at {@code index} (datatype, shape, byte size, BYTES
   * framing), as {@link #validateInputs} does for each named input: for callers that already hold the
   * inputs in signature order (an ensemble handing one model's outputs to the next).
   */
  public static void checkInput(String model, ModelSignature signature, int index, Tensor tensor) {
    checkTensor(model, signature, signature.inputs().get(index), tensor);
  }

  private static void checkTensor(String model, ModelSignature signature, TensorSpec spec, Tensor tensor) {
    String name = tensor.name();
    if (tensor.dataType() != spec.dataType()) {
      throw InferenceException.invalidField("inputs[" + name + "].datatype",
          "input '%s' of model '%s' has datatype %s; expected %s", name, model, tensor.dataType().wireName(),
          spec.dataType().wireName());
    }
    long[] shape = tensor.shape();
    long[] dims = spec.dims();
    int offset = signature.batches() ? 1 : 0;
    if (shape.length != dims.length + offset) {
      throw InferenceException.invalidField("inputs[" + name + "].shape",
          "input '%s' has shape %s; expected %s", name, Arrays.toString(shape),
          Arrays.toString(signature.metadataShape(spec)));
    }
    for (long dim : shape) {
      if (dim < 0) {
        throw InferenceException.invalidField("inputs[" + name + "].shape",
            "input '%s' has a negative dimension in shape %s", name, Arrays.toString(shape));
      }
    }
    if (signature.batches() && shape[0] > signature.maxBatchSize()) {
      throw InferenceException.invalidField("inputs[" + name + "].shape",
          "input '%s' has batch dimension %d, over max_batch_size %d of model '%s'", name, shape[0],
          signature.maxBatchSize(), model);
    }
    for (int i = 0; i < dims.length; i++) {
      if (dims[i] >= 0 && dims[i] != shape[i + offset]) {
        throw InferenceException.invalidField("inputs[" + name + "].shape",
            "input '%s' has shape %s; expected %s", name, Arrays.toString(shape),
            Arrays.toString(signature.metadataShape(spec)));
      }
    }
    long elements = Tensor.elementCount(shape);
    if (tensor.dataType().isFixedSize()) {
      long expected = elements == Long.MAX_VALUE ? Long.MAX_VALUE : elements * tensor.dataType().byteSize();
      if (elements == Long.MAX_VALUE || expected / tensor.dataType().byteSize() != elements
          || expected != tensor.byteSize()) {
        throw InferenceException.invalidField("inputs[" + name + "]",
            "input '%s' has %d bytes of data, but shape %s of %s needs %s", name, tensor.byteSize(),
            Arrays.toString(shape), tensor.dataType().wireName(),
            elements == Long.MAX_VALUE ? "more than 2^63" : String.valueOf(expected));
      }
    } else {
      long count = BytesElements.count(tensor.data());
      if (count < 0) {
        throw InferenceException.invalidField("inputs[" + name + "]",
            "input '%s' has malformed BYTES data: each element needs a 4-byte little-endian length then that many bytes",
            name);
      }
      if (count != elements) {
        throw InferenceException.invalidField("inputs[" + name + "]",
            "input '%s' has %d BYTES elements, but shape %s needs %d", name, count, Arrays.toString(shape), elements);
      }
    }
  }

  /** The client-facing names, for messages (the sequence batcher's tensors are not the client's business). */
  private static String names(List<TensorSpec> specs) {
    StringBuilder sb = new StringBuilder("[");
    boolean first = true;
    for (TensorSpec spec : specs) {
      if (spec.clientFacing()) {
        sb.append(first ? "" : ", ").append(spec.name());
        first = false;
      }
    }
    return sb.append(']').toString();
  }
}
