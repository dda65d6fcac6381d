package io.quiver.runtime.tensorflow;

import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import io.quiver.core.runtime.ConfigCompleter;
import io.quiver.core.runtime.ModelTensor;
import io.quiver.core.runtime.RunnerInputs;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.proto.inference.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Signature;
import org.tensorflow.proto.ConfigProto;

/**
 * TensorFlow SavedModels (TensorFlow Java 1.1, TensorFlow 2.18, CPU) behind the {@link ModelRuntime}
 * SPI: serves configs whose platform is {@value #PLATFORM} or whose backend is {@value #BACKEND},
 * from the SavedModel directory {@value #MODEL_FILENAME} (Triton's name) in the version directory.
 *
 * <p>The signature served is {@code serving_default} unless the config's parameter
 * {@code TF_SIGNATURE_DEF} names another; the MetaGraph loaded is the one tagged {@code serve}
 * unless {@code TF_GRAPH_TAG} says otherwise. Each {@link #newRunner runner} loads its own
 * {@link SavedModelBundle} (its own session and variables).
 *
 * <p>Thread-safe and stateless. {@link #completeConfig} and {@link #newRunner} load the SavedModel
 * (ms to s; the first TensorFlow use in a JVM also extracts the native libraries, see
 * {@link JavaCppCache}): call them from a loading thread, never from a transport thread. No
 * TensorFlow class is initialized until one of them is called, so merely installing this runtime
 * costs nothing.
 */
public final class TensorFlowRuntime implements ModelRuntime {
  public static final String NAME = "tensorflow";
  public static final String PLATFORM = "tensorflow_savedmodel";
  public static final String BACKEND = "tensorflow";
  /** A directory, as in Triton: {@code <version>/model.savedmodel/saved_model.pb} and {@code variables/}. */
  public static final String MODEL_FILENAME = "model.savedmodel";
  /** max_batch_size given to a batchable model whose config says nothing about batching (Triton's default-max-batch-size). */
  public static final int DEFAULT_MAX_BATCH_SIZE = 4;

  private static final Logger LOG = LoggerFactory.getLogger(TensorFlowRuntime.class);

  /** Public no-argument constructor for {@link java.util.ServiceLoader}; creates no native state. */
  public TensorFlowRuntime() {}

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public String platform() {
    return PLATFORM;
  }

  @Override
  public boolean handles(String platform, String backend) {
    return PLATFORM.equals(platform) || BACKEND.equals(backend);
  }

  @Override
  public String defaultModelFilename() {
    return MODEL_FILENAME;
  }

  /** Loads the SavedModel once (one thread) to read the served signature. */
  @Override
  public ModelConfig completeConfig(ModelConfig declared, Path modelFile) {
    checkPlatform();
    ModelConfig named = ConfigCompleter.withModelName(declared, modelFile);
    TfConfigCompleter.INSTANCE.checkSupported(named); // cheap checks before loading
    TfModelOptions options = TfModelOptions.of(named);
    ConfigProto oneThread = ConfigProto.newBuilder().putDeviceCount("GPU", 0)
        .setIntraOpParallelismThreads(1).setInterOpParallelismThreads(1).build();
    try (SavedModelBundle bundle = load(named.getName(), modelFile, options, oneThread)) {
      Signature signature = signature(named.getName(), bundle, options.signature(), modelFile);
      return TfConfigCompleter.INSTANCE.complete(named, modelTensors(describe(named.getName(), "input", signature.getInputs())),
          modelTensors(describe(named.getName(), "output", signature.getOutputs())));
    }
  }

  @Override
  public ModelRunner newRunner(ModelConfig completed, Path modelFile, InstanceSpec instance) {
    checkPlatform();
    String model = completed.getName();
    if (instance.kind() != InstanceSpec.Kind.CPU) {
      throw InferenceException.invalidArgument(
          "model '%s': instance %d is of kind %s on device %d; the tensorflow runtime runs on CPU only "
              + "(it ships TensorFlow's CPU build)", model, instance.index(), instance.kind(), instance.deviceId());
    }
    TfConfigCompleter.INSTANCE.checkSupported(completed);
    TfModelOptions options = TfModelOptions.of(completed);
    ModelSignature signature = ModelSignature.of(completed);
    SavedModelBundle bundle = load(model, modelFile, options, options.sessionConfig());
    try {
      Signature served = signature(model, bundle, options.signature(), modelFile);
      List<SignatureTensor> inputs = describe(model, "input", served.getInputs());
      List<SignatureTensor> outputs = describe(model, "output", served.getOutputs());
      String[] inputTensors = tensorNames(model, "input", signature.inputs(), inputs);
      String[] outputTensors = tensorNames(model, "output", signature.outputs(), outputs);
      for (SignatureTensor tensor : inputs) {
        if (signature.inputIndex(tensor.name()) < 0) {
          throw InferenceException.invalidArgument("model '%s': signature input '%s' is missing from the config", model,
              tensor.name());
        }
      }
      TensorFlowRunner runner = new TensorFlowRunner(model, instance, bundle, signature, inputTensors, outputTensors);
      LOG.debug("model '{}': opened instance {} from {} (signature '{}', {})", model, instance.index(), modelFile,
          options.signature(), options);
      bundle = null; // owned by the runner now
      return runner;
    } finally {
      if (bundle != null) {
        bundle.close();
      }
    }
  }

  private static SavedModelBundle load(String model, Path dir, TfModelOptions options, ConfigProto config) {
    if (!Files.isDirectory(dir)) {
      throw InferenceException.notFound("model '%s': SavedModel directory '%s' does not exist%s", model, dir,
          Files.exists(dir) ? " (it is a file; a SavedModel is a directory holding saved_model.pb and variables/)" : "");
    }
    if (!Files.isRegularFile(dir.resolve("saved_model.pb")) && !Files.isRegularFile(dir.resolve("saved_model.pbtxt"))) {
      throw InferenceException.invalidArgument(
          "model '%s': '%s' is not a SavedModel: it holds no saved_model.pb", model, dir);
    }
    JavaCppCache.configure(); // before the first TensorFlow class initializes
    try {
      return SavedModelBundle.loader(dir.toString()).withTags(options.tag()).withConfigProto(config).load();
    } catch (RuntimeException | UnsatisfiedLinkError e) {
      // TensorFlowException and friends: corrupt protobuf, missing variables, unknown tag, missing ops.
      throw new InferenceException(e instanceof UnsatisfiedLinkError ? ErrorCode.FAILED_PRECONDITION : ErrorCode.INVALID_ARGUMENT,
          String.format("model '%s': TensorFlow cannot load the SavedModel '%s' with tag '%s': %s", model, dir,
              options.tag(), firstLine(e.getMessage())), null, 0L, e);
    }
  }

  private static Signature signature(String model, SavedModelBundle bundle, String key, Path dir) {
    List<String> keys = new ArrayList<>();
    for (Signature signature : bundle.signatures()) {
      if (signature.key().equals(key)) {
        return signature;
      }
      keys.add(signature.key());
    }
    throw InferenceException.invalidArgument(
        "model '%s': the SavedModel '%s' has no signature '%s' (it has %s); name one with parameters { key: \"%s\" ... }",
        model, dir, key, keys, TfModelOptions.SIGNATURE_DEF);
  }

  /** A signature's inputs or outputs in key order (a SignatureDef is a map; its keys are sorted for a stable order). */
  static List<SignatureTensor> describe(String model, String kind, Map<String, Signature.TensorDescription> map) {
    List<SignatureTensor> tensors = new ArrayList<>(map.size());
    for (String key : new java.util.TreeSet<>(map.keySet())) {
      Signature.TensorDescription description = map.get(key);
      DataType type = TfTypes.toDataType(description.dataType);
      if (type == null) {
        throw InferenceException.invalidArgument(
            "model '%s': signature %s '%s' has type %s, which the tensorflow runtime cannot %s (see the datatype table in its README)",
            model, kind, key, description.dataType, kind.equals("input") ? "feed" : "fetch");
      }
      if (description.shape == null || description.shape.isUnknown()) {
        throw InferenceException.invalidArgument(
            "model '%s': signature %s '%s' has an unknown rank; export the model with a known rank", model, kind, key);
      }
      tensors.add(new SignatureTensor(new ModelTensor(key, type, description.shape.asArray()), description.name));
    }
    return tensors;
  }

  private static List<ModelTensor> modelTensors(List<SignatureTensor> tensors) {
    List<ModelTensor> out = new ArrayList<>(tensors.size());
    for (SignatureTensor tensor : tensors) {
      out.add(tensor.tensor());
    }
    return out;
  }

  /** Graph tensor names for the config's tensors, in config order; checks names and types against the signature. */
  private static String[] tensorNames(String model, String kind, List<TensorSpec> specs, List<SignatureTensor> tensors) {
    String[] names = new String[specs.size()];
    for (int i = 0; i < names.length; i++) {
      TensorSpec spec = specs.get(i);
      SignatureTensor match = null;
      for (SignatureTensor tensor : tensors) {
        if (tensor.name().equals(spec.name())) {
          match = tensor;
        }
      }
      if (match == null) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' of the config is not in the signature (it has %s)",
            model, kind, spec.name(), tensors.stream().map(SignatureTensor::name).toList());
      }
      if (match.dataType() != spec.dataType()) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' is %s in the config but %s in the signature", model,
            kind, spec.name(), spec.dataType().wireName(), match.dataType().wireName());
      }
      names[i] = match.tensorName();
    }
    return names;
  }

  private static void checkPlatform() {
    RunnerInputs.requireLittleEndian(NAME, "tensors are copied without byte swapping");
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "(no message)";
    }
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }
}
