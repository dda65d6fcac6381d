package io.quiver.client;

import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's KServe v2 metadata: its name, ready versions, platform, and the specs of its inputs and
 * outputs. {@link #validate} checks a request against the input specs before it is sent, with the
 * errors the server would give (INVALID_ARGUMENT naming the field), so a caller can fail fast without a
 * round trip. Immutable and thread-safe.
 */
public final class ModelMetadata {
  /**
   * One input or output: its name, datatype and shape, where -1 marks a variable dimension (with a batch
   * dimension first when the model batches). {@code datatype} is null when the server named a datatype
   * that is not KServe v2's; {@code datatypeName} is the name as sent.
   */
  public record TensorSpec(String name, DataType datatype, String datatypeName, List<Long> shape) {}

  private final ModelMetadataResponse proto;
  private final List<TensorSpec> inputs;
  private final List<TensorSpec> outputs;

  ModelMetadata(ModelMetadataResponse proto) {
    this.proto = proto;
    this.inputs = specs(proto.getInputsList());
    this.outputs = specs(proto.getOutputsList());
  }

  /** Wraps a response received some other way. */
  public static ModelMetadata of(ModelMetadataResponse response) {
    return new ModelMetadata(response);
  }

  public String name() {
    return proto.getName();
  }

  public List<String> versions() {
    return proto.getVersionsList();
  }

  public String platform() {
    return proto.getPlatform();
  }

  public List<TensorSpec> inputs() {
    return inputs;
  }

  public List<TensorSpec> outputs() {
    return outputs;
  }

  public ModelMetadataResponse toProto() {
    return proto;
  }

  /**
   * Checks the request's inputs and requested outputs against this model: every input known and given
   * once, every model input present, datatypes equal, ranks equal, fixed dimensions equal.
   *
   * @throws QuiverException INVALID_ARGUMENT naming the field ({@code inputs[NAME].shape} ...) at the first problem
   */
  public void validate(InferRequest request) {
    ModelInferRequest wire = request.toProto();
    Map<String, TensorSpec> byName = new HashMap<>();
    for (TensorSpec spec : inputs) {
      byName.put(spec.name(), spec);
    }
    for (ModelInferRequest.InferInputTensor input : wire.getInputsList()) {
      String name = input.getName();
      TensorSpec spec = byName.remove(name);
      if (spec == null) {
        throw QuiverException.invalidArgument("inputs[" + name + "]", "model '" + name() + "' has no input '" + name
            + "'; its inputs are " + inputs.stream().map(TensorSpec::name).toList());
      }
      if (!spec.datatypeName().equals(input.getDatatype())) {
        throw QuiverException.invalidArgument("inputs[" + name + "].datatype", "input '" + name + "' of model '"
            + name() + "' is " + spec.datatypeName() + "; the request gives " + input.getDatatype());
      }
      List<Long> shape = input.getShapeList();
      boolean matches = shape.size() == spec.shape().size();
      for (int d = 0; matches && d < shape.size(); d++) {
        long expected = spec.shape().get(d);
        matches = expected < 0 || expected == shape.get(d);
      }
      if (!matches) {
        throw QuiverException.invalidArgument("inputs[" + name + "].shape", "input '" + name + "' of model '" + name()
            + "' has shape " + spec.shape() + " (-1: any); the request gives " + shape);
      }
    }
    if (!byName.isEmpty()) {
      String missing = byName.keySet().iterator().next();
      throw QuiverException.invalidArgument("inputs[" + missing + "]", "model '" + name() + "' needs input '" + missing
          + "', which the request does not give");
    }
    for (ModelInferRequest.InferRequestedOutputTensor output : wire.getOutputsList()) {
      if (outputs.stream().noneMatch(o -> o.name().equals(output.getName()))) {
        throw QuiverException.invalidArgument("outputs[" + output.getName() + "]", "model '" + name()
            + "' has no output '" + output.getName() + "'; its outputs are " + outputs.stream().map(TensorSpec::name).toList());
      }
    }
  }

  private static List<TensorSpec> specs(List<ModelMetadataResponse.TensorMetadata> tensors) {
    List<TensorSpec> specs = new ArrayList<>(tensors.size());
    for (ModelMetadataResponse.TensorMetadata t : tensors) {
      specs.add(new TensorSpec(t.getName(), DataType.fromWireName(t.getDatatype()), t.getDatatype(),
          List.copyOf(t.getShapeList())));
    }
    return List.copyOf(specs);
  }

  @Override
  public String toString() {
    return "ModelMetadata{" + name() + " " + platform() + " versions=" + versions() + " inputs="
        + inputs.stream().map(s -> s.name() + ":" + s.datatypeName() + Arrays.toString(s.shape().toArray())).toList()
        + "}";
  }
}
