package io.quiver.client;

import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelInferRequest;
import java.time.Duration;
import java.util.Set;

/**
 * One inference request, built once and sendable any number of times, from any thread (immutable): the
 * model (and optionally a version number or a traffic label such as {@code canary}), named input
 * {@link Tensor}s, the outputs wanted, and per-call settings.
 *
 * <pre>{@code
 * InferRequest request = InferRequest.builder("simple")
 *     .input("INPUT0", Tensors.int32(a, 1, 16))
 *     .input("INPUT1", Tensors.int32(b, 1, 16))
 *     .output("OUTPUT0")                   // default: every output
 *     .id("order-42").priority(1).deadline(Duration.ofMillis(50))
 *     .build();
 * }</pre>
 *
 * <p>On the wire each input travels in {@code raw_input_contents} (never typed {@code contents}, which
 * cannot carry FP16/BF16): one entry per input in the order added. The reserved parameters are sent as
 * Triton's own client sends them: {@code priority} as {@code uint64_param}, {@code timeout} (µs) as
 * {@code int64_param}, an output's {@code classification} (top k) as {@code int64_param}.
 */
public final class InferRequest {
  private final ModelInferRequest proto;
  private final Duration deadline;

  private InferRequest(ModelInferRequest proto, Duration deadline) {
    this.proto = proto;
    this.deadline = deadline;
  }

  /** A builder for a request to {@code model}. */
  public static Builder builder(String model) {
    return new Builder(model);
  }

  /** The request exactly as it goes on the wire. */
  public ModelInferRequest toProto() {
    return proto;
  }

  public String modelName() {
    return proto.getModelName();
  }

  /** The request id, "" when none was set. */
  public String id() {
    return proto.getId();
  }

  /** This call's gRPC deadline, or null for the client's default. */
  public Duration deadline() {
    return deadline;
  }

  /** The same request under another id (the tensors are shared, not copied). */
  public InferRequest withId(String id) {
    return new InferRequest(proto.toBuilder().setId(id).build(), deadline);
  }

  @Override
  public String toString() {
    return "InferRequest{model=" + proto.getModelName()
        + (proto.getModelVersion().isEmpty() ? "" : ", version=" + proto.getModelVersion())
        + (proto.getId().isEmpty() ? "" : ", id=" + proto.getId()) + ", inputs=" + proto.getInputsCount() + "}";
  }

  /** Builds an {@link InferRequest}. Not thread-safe; one builder per request. */
  public static final class Builder {
    private static final Set<String> RESERVED = Set.of("priority", "timeout", "classification", "binary_data_output");
    private final ModelInferRequest.Builder proto = ModelInferRequest.newBuilder();
    private Duration deadline;

    private Builder(String model) {
      if (model == null || model.isEmpty()) {
        throw new IllegalArgumentException("a request needs a model name");
      }
      proto.setModelName(model);
    }

    /** Adds an input (in this order on the wire). */
    public Builder input(String name, Tensor tensor) {
      if (name == null || name.isEmpty()) {
        throw new IllegalArgumentException("an input needs a name");
      }
      // A scan, not a set: requests have a handful of inputs, and this path runs per call.
      for (int i = 0; i < proto.getInputsCount(); i++) {
        if (proto.getInputs(i).getName().equals(name)) {
          throw new IllegalArgumentException("input '" + name + "' was added twice");
        }
      }
      ModelInferRequest.InferInputTensor.Builder input = ModelInferRequest.InferInputTensor.newBuilder()
          .setName(name)
          .setDatatype(tensor.datatype().wireName());
      for (long dim : tensor.shapeArray()) {
        input.addShape(dim);
      }
      // addInputs(message), not addInputsBuilder(): the nested-builder machinery costs ~200 bytes per request.
      proto.addInputs(input.build()).addRawInputContents(tensor.rawBytes());
      return this;
    }

    /** Asks for this output (by default, with no output asked for, the server returns all of them). */
    public Builder output(String name) {
      requestedOutput(name);
      return this;
    }

    /**
     * Asks for this output as Triton's classification extension: the top {@code k} classes as BYTES
     * {@code "score:index[:label]"} (read them with {@link InferResult#classifications}). Quiver itself
     * answers INVALID_ARGUMENT: it does not implement the extension.
     */
    public Builder classification(String output, int k) {
      if (k < 1) {
        throw new IllegalArgumentException("classification needs k >= 1; was " + k);
      }
      requestedOutput(output).putParameters("classification", InferParameter.newBuilder().setInt64Param(k).build());
      return this;
    }

    /** Pins a version number (by default the server routes: latest, or its traffic split). */
    public Builder version(long version) {
      if (version < 1) {
        throw new IllegalArgumentException("a model version is >= 1; was " + version);
      }
      proto.setModelVersion(Long.toString(version));
      return this;
    }

    /** Pins a version number given as text, or a traffic label such as {@code canary} (Quiver's control plane). */
    public Builder version(String versionOrLabel) {
      proto.setModelVersion(versionOrLabel == null ? "" : versionOrLabel);
      return this;
    }

    /** The request id, echoed in the response (and used to correlate stream answers). */
    public Builder id(String id) {
      proto.setId(id == null ? "" : id);
      return this;
    }

    /** The {@code priority} parameter: 1 is the highest level; 0 (the default) is the model's default level. */
    public Builder priority(int priority) {
      if (priority < 0) {
        throw new IllegalArgumentException("priority must be >= 0; was " + priority);
      }
      proto.putParameters("priority", InferParameter.newBuilder().setUint64Param(priority).build());
      return this;
    }

    /**
     * The {@code timeout} parameter: how long the server may keep the request queued (sent in
     * microseconds; honoured where the model's queue policy allows overrides). Not the call's deadline:
     * see {@link #deadline}.
     */
    public Builder timeout(Duration timeout) {
      long micros = timeout.toNanos() / 1000;
      if (micros < 0) {
        throw new IllegalArgumentException("timeout must be >= 0; was " + timeout);
      }
      proto.putParameters("timeout", InferParameter.newBuilder().setInt64Param(micros).build());
      return this;
    }

    /**
     * This call's gRPC deadline (instead of the client's default). It reaches the server, which fails the
     * request with DEADLINE_EXCEEDED if it has not run by then; a request still queued is dropped.
     */
    public Builder deadline(Duration deadline) {
      if (deadline.isNegative() || deadline.isZero()) {
        throw new IllegalArgumentException("deadline must be positive; was " + deadline);
      }
      this.deadline = deadline;
      return this;
    }

    /** Any other request parameter, as a bool. The reserved ones have their own methods. */
    public Builder parameter(String name, boolean value) {
      return parameter(name, InferParameter.newBuilder().setBoolParam(value).build());
    }

    /** Any other request parameter, as an int64. */
    public Builder parameter(String name, long value) {
      return parameter(name, InferParameter.newBuilder().setInt64Param(value).build());
    }

    /** Any other request parameter, as a string. */
    public Builder parameter(String name, String value) {
      return parameter(name, InferParameter.newBuilder().setStringParam(value).build());
    }

    /** Any other request parameter, as a double. */
    public Builder parameter(String name, double value) {
      return parameter(name, InferParameter.newBuilder().setDoubleParam(value).build());
    }

    private Builder parameter(String name, InferParameter value) {
      if (RESERVED.contains(name)) {
        throw new IllegalArgumentException("'" + name + "' is a reserved parameter: use its own builder method");
      }
      proto.putParameters(name, value);
      return this;
    }

    private ModelInferRequest.InferRequestedOutputTensor.Builder requestedOutput(String name) {
      if (name == null || name.isEmpty()) {
        throw new IllegalArgumentException("an output needs a name");
      }
      for (int i = 0; i < proto.getOutputsCount(); i++) {
        if (proto.getOutputs(i).getName().equals(name)) {
          throw new IllegalArgumentException("output '" + name + "' was asked for twice");
        }
      }
      return proto.addOutputsBuilder().setName(name);
    }

    public InferRequest build() {
      return new InferRequest(proto.build(), deadline);
    }
  }
}
