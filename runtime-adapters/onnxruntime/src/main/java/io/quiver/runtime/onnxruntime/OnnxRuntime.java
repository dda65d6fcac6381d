package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.ValueInfo;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.TensorSpec;
import io.quiver.core.runtime.ConfigCompleter;
import io.quiver.core.runtime.DirectBuffers;
import io.quiver.core.runtime.ModelTensor;
import io.quiver.core.runtime.RunnerInputs;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ONNX Runtime (CPU, CUDA and TensorRT execution providers) behind the {@link ModelRuntime} SPI: serves configs whose
 * platform is {@value #PLATFORM} or whose backend is {@value #BACKEND}, from {@value #MODEL_FILENAME}.
 *
 * <p>All sessions share one {@link OrtEnvironment}, created on first use (≈200 ms). Each
 * {@link #newRunner runner} owns its own session and thread pools.
 *
 * <p>Thread-safe: stateless apart from the shared environment, which ONNX Runtime makes safe to use
 * from any thread. {@link #completeConfig} and {@link #newRunner} open the model file and may take
 * from milliseconds to seconds; call them from a loading thread, never from a transport thread.
 *
 * <p>Assumes a little-endian platform: request tensors arrive little-endian (the protocol's order)
 * and are handed to ONNX Runtime, which reads native order, without conversion. Both entry points
 * fail with FAILED_PRECONDITION on a big-endian JVM.
 */
public final class OnnxRuntime implements ModelRuntime {
  public static final String NAME = "onnxruntime";
  public static final String PLATFORM = "onnxruntime_onnx";
  public static final String BACKEND = "onnxruntime";
  public static final String MODEL_FILENAME = "model.onnx";
  /** max_batch_size given to a batchable model whose config says nothing about batching (Triton's default-max-batch-size). */
  public static final int DEFAULT_MAX_BATCH_SIZE = 4;

  private static final Logger LOG = LoggerFactory.getLogger(OnnxRuntime.class);
  /**
   * Model files up to this size (256 MiB, or an eighth of the heap limit, which is also the JVM's default limit on
   * direct memory, if that is less) are read by Quiver in small pieces and handed to ONNX Runtime as bytes.
   */
  static final long READ_INTO_MEMORY_MAX_BYTES = Math.min(256L << 20, Runtime.getRuntime().maxMemory() / 8);
  /** Where ONNX Runtime looks for a model's external data files when the model itself comes as bytes. */
  private static final String EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path";

  /** Public no-argument constructor for {@link java.util.ServiceLoader}; creates no native state. */
  public OnnxRuntime() {}

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

  /** Opens the model once (no graph optimization, one thread) to read its inputs and outputs. */
  @Override
  public ModelConfig completeConfig(ModelConfig declared, Path modelFile) {
    checkPlatform();
    ModelConfig named = ConfigCompleter.withModelName(declared, modelFile);
    OnnxConfigCompleter.INSTANCE.checkSupported(named); // cheap checks before opening the file
    String model = named.getName();
    try (SessionOptions options = new SessionOptions()) {
      options.setOptimizationLevel(SessionOptions.OptLevel.NO_OPT);
      options.setIntraOpNumThreads(1);
      options.addConfigEntry("session.intra_op.allow_spinning", "0");
      try (OrtSession session = open(model, modelFile, options)) {
        List<ModelTensor> inputs = describe(model, "input", session.getInputInfo());
        List<ModelTensor> outputs = describe(model, "output", session.getOutputInfo());
        ModelConfig completed = OnnxConfigCompleter.INSTANCE.complete(named, inputs, outputs);
        List<String> strings = OnnxConfigCompleter.stringInputs(completed);
        if (!strings.isEmpty()) {
          // Said once per load, so the operator knows before any request: BYTES are text for this runtime.
          LOG.warn("model '{}': BYTES input(s) {} are ONNX string tensors; ONNX Runtime's Java API takes them only as"
              + " text (its native side encodes Java strings as modified UTF-8), so each element must be valid UTF-8"
              + " and binary elements are refused with INVALID_ARGUMENT; inside the model NUL is C0 80 and characters"
              + " outside the Basic Multilingual Plane (emoji) are 6-byte surrogate pairs. For binary data declare"
              + " the input UINT8, or serve the model with the TensorFlow runtime (docs/triton-compatibility.md)",
              model, strings);
        }
        return completed;
      }
    } catch (OrtException e) {
      throw new InferenceException(ErrorCode.INTERNAL,
          String.format("model '%s': ONNX Runtime failed while reading '%s': %s", model, modelFile, e.getMessage()),
          null, 0L, e);
    }
  }

  @Override
  public ModelRunner newRunner(ModelConfig completed, Path modelFile, InstanceSpec instance) {
    checkPlatform();
    String model = completed.getName();
    OnnxConfigCompleter.INSTANCE.checkSupported(completed);
    OnnxConfigCompleter.checkInputTypesFeedable(completed);
    ModelSignature signature = ModelSignature.of(completed);
    OnnxSessionOptions settings = OnnxSessionOptions.of(completed);
    List<ExecutionProvider> providers = OnnxExecutionProviders.forInstance(completed, instance);
    checkProvidersAvailable(model, instance, providers, availableProviders());
    OrtSession session = null;
    SessionOptions options = null;
    try {
      try {
        options = settings.create(instance, providers);
      } catch (OrtException e) {
        if (providers.isEmpty()) {
          throw e; // a CPU setting ONNX Runtime refused: INTERNAL below
        }
        throw gpuFailure(model, instance, providers, e);
      }
      // ONNX Runtime copies the options into the session; they can be released once it exists.
      try {
        session = open(model, modelFile, options);
      } catch (InferenceException e) {
        if (providers.isEmpty() || !(e.getCause() instanceof OrtException)) {
          throw e; // a CPU instance, or no ONNX Runtime failure (e.g. the file is missing)
        }
        throw gpuFailure(model, instance, providers, e.getCause());
      }
      checkSignatureMatches(model, signature, session);
      LOG.debug("model '{}': opened instance {} from {} with {} and providers {}", model, instance.index(), modelFile,
          settings, providers);
      OnnxRuntimeRunner runner = new OnnxRuntimeRunner(model, instance, environment(), session, signature);
      session = null; // owned by the runner now
      return runner;
    } catch (OrtException e) {
      throw new InferenceException(ErrorCode.INTERNAL,
          String.format("model '%s': ONNX Runtime failed to open instance %d from '%s': %s", model, instance.index(),
              modelFile, e.getMessage()), null, 0L, e);
    } finally {
      if (options != null) {
        options.close();
      }
      if (session != null) {
        closeQuietly(session);
      }
    }
  }

  /** The execution providers this ONNX Runtime build has: [CPU] for the default artifact, plus CUDA and TensorRT for onnxruntime_gpu. */
  static Set<OrtProvider> availableProviders() {
    environment(); // loads the native library
    return OrtEnvironment.getAvailableProviders();
  }

  /**
   * Fails a GPU instance at once when the build lacks a provider it needs.
   *
   * @throws InferenceException FAILED_PRECONDITION naming the instance, device, provider and what is available
   */
  static void checkProvidersAvailable(String model, InstanceSpec instance, List<ExecutionProvider> providers,
      Set<OrtProvider> available) {
    for (ExecutionProvider provider : providers) {
      OrtProvider needed = provider.name().equals(ExecutionProvider.TENSORRT) ? OrtProvider.TENSOR_RT : OrtProvider.CUDA;
      if (!available.contains(needed)) {
        throw InferenceException.failedPrecondition(
            "model '%s': instance %d (instance_group '%s', KIND_GPU) needs ONNX Runtime's %s execution provider on GPU %d, "
                + "but this ONNX Runtime build has only %s; build Quiver with -Pgpu (onnxruntime_gpu, CUDA 12) and run it "
                + "on a machine with an NVIDIA GPU, or use instance_group { kind: KIND_CPU }",
            model, instance.index(), instance.groupName(), provider.displayName(),
            instance.deviceId(), available);
      }
    }
  }

  /** A GPU instance that ONNX Runtime could not set up: name the providers and the device, and say why. */
  private static InferenceException gpuFailure(String model, InstanceSpec instance, List<ExecutionProvider> providers,
      Throwable cause) {
    List<String> names = new ArrayList<>();
    for (ExecutionProvider provider : providers) {
      names.add(provider.displayName());
    }
    boolean noDriver = System.getProperty("os.name", "").startsWith("Linux") && !Files.exists(Path.of("/dev/nvidiactl"));
    return new InferenceException(ErrorCode.FAILED_PRECONDITION,
        String.format("model '%s': ONNX Runtime could not open instance %d on GPU %d with the %s execution provider(s): %s%s",
            model, instance.index(), instance.deviceId(), names, cause.getMessage(),
            noDriver ? " (this machine has no /dev/nvidiactl: no NVIDIA driver is visible)" : ""),
        null, 0L, cause);
  }

  /** The environment shared by every session in this JVM. */
  static OrtEnvironment environment() {
    return EnvironmentHolder.ENVIRONMENT;
  }

  private static final class EnvironmentHolder {
    // Created lazily: the ServiceLoader instantiates every runtime, loaded models or not.
    static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING, "quiver");
  }

  private static OrtSession open(String model, Path modelFile, SessionOptions options) {
    if (!Files.isRegularFile(modelFile)) {
      throw InferenceException.notFound("model '%s': model file '%s' does not exist", model, modelFile);
    }
    try {
      return createSession(modelFile, options);
    } catch (OrtException e) {
      throw new InferenceException(ErrorCode.INVALID_ARGUMENT,
          String.format("model '%s': ONNX Runtime cannot load '%s': %s", model, modelFile, e.getMessage()),
          null, 0L, e);
    }
  }

  /**
   * Given a path, ONNX Runtime reads the whole file in one {@code read()} per pass into memory it has just allocated,
   * so the call also takes every first-touch page fault: 0.5-2.4 ms for a 0.6 MiB model on our 2-core VM
   * (docs/lifecycle.md, "Loads beside serving"). A load runs at the lowest priority so that serving threads take its
   * core at once, but a thread inside a system call keeps its core until it returns. So a file up to
   * {@link #READ_INTO_MEMORY_MAX_BYTES} is read here, {@link DirectBuffers#READ_CHUNK_BYTES} per call into a
   * buffer already touched, and the session is created from that buffer, which is freed as soon as the session exists;
   * its external data files, if any, are still found in the model's directory. Larger files (whose loads take seconds
   * anyway) and files that cannot be read here go to ONNX Runtime by path, which reports what is wrong with them.
   */
  private static OrtSession createSession(Path modelFile, SessionOptions options) throws OrtException {
    ByteBuffer bytes;
    try {
      bytes = DirectBuffers.readFile(modelFile, READ_INTO_MEMORY_MAX_BYTES);
    } catch (IOException e) {
      LOG.debug("reading '{}' into memory failed ({}); ONNX Runtime reads it by path", modelFile, e.toString());
      return environment().createSession(modelFile.toString(), options);
    }
    try {
      Path folder = modelFile.toAbsolutePath().getParent();
      options.addConfigEntry(EXTERNAL_DATA_FOLDER, folder.toString());
      return environment().createSession(bytes, options);
    } finally {
      DirectBuffers.free(bytes); // ONNX Runtime has parsed the model into its own memory
    }
  }

  /** Reads a session's inputs or outputs; rejects non-tensor values and element types the protocol lacks. */
  private static List<ModelTensor> describe(String model, String kind, Map<String, NodeInfo> infos) {
    List<ModelTensor> tensors = new ArrayList<>(infos.size());
    for (NodeInfo node : infos.values()) {
      ValueInfo info = node.getInfo();
      if (!(info instanceof TensorInfo)) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' is not a tensor (%s); only tensors are supported",
            model, kind, node.getName(), info);
      }
      TensorInfo tensorInfo = (TensorInfo) info;
      DataType type = OrtTypes.toDataType(tensorInfo.onnxType);
      if (type == null) {
        throw InferenceException.invalidArgument("model '%s': %s '%s' has element type %s, which the protocol has no datatype for",
            model, kind, node.getName(), tensorInfo.onnxType);
      }
      tensors.add(new ModelTensor(node.getName(), type, tensorInfo.getShape()));
    }
    return tensors;
  }

  /** A completed config must still describe the file (it could have been completed from another version). */
  private static void checkSignatureMatches(String model, ModelSignature signature, OrtSession session) throws OrtException {
    List<ModelTensor> inputs = describe(model, "input", session.getInputInfo());
    List<ModelTensor> outputs = describe(model, "output", session.getOutputInfo());
    for (TensorSpec spec : signature.inputs()) {
      check(model, "input", spec, inputs);
    }
    for (TensorSpec spec : signature.outputs()) {
      check(model, "output", spec, outputs);
    }
    for (ModelTensor tensor : inputs) {
      if (signature.inputIndex(tensor.name()) < 0) {
        throw InferenceException.invalidArgument("model '%s': the model's input '%s' is missing from the config", model,
            tensor.name());
      }
    }
  }

  private static void check(String model, String kind, TensorSpec spec, List<ModelTensor> tensors) {
    for (ModelTensor tensor : tensors) {
      if (tensor.name().equals(spec.name())) {
        if (tensor.dataType() != spec.dataType()) {
          throw InferenceException.invalidArgument("model '%s': %s '%s' is %s in the config but %s in the model", model,
              kind, spec.name(), spec.dataType().wireName(), tensor.dataType().wireName());
        }
        return;
      }
    }
    throw InferenceException.invalidArgument("model '%s': %s '%s' of the config is not in the model (it has %s)", model,
        kind, spec.name(), Arrays.toString(tensors.stream().map(ModelTensor::name).toArray()));
  }

  private static void checkPlatform() {
    RunnerInputs.requireLittleEndian(NAME, "tensors are passed to ONNX Runtime without byte swapping");
  }

  private static void closeQuietly(OrtSession session) {
    try {
      session.close();
    } catch (OrtException | RuntimeException e) {
      LOG.warn("closing an ONNX Runtime session failed", e);
    }
  }
}
