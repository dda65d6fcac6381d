package io.quiver.core.spi;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import java.nio.file.Path;

/**
 * A runtime (ONNX Runtime, TensorFlow...) that turns model files into {@link ModelRunner}s. Found
 * through {@link java.util.ServiceLoader}; the manager picks the runtime whose {@link #handles}
 * accepts a model's config (platform or backend), or whose {@link #defaultModelFilename()} is present
 * in the version directory when the config names neither. Implementations are thread-safe.
 */
public interface ModelRuntime {
  /** Short name used in logs and errors, e.g. "onnxruntime". */
  String name();

  /** The platform value it writes into completed configs, e.g. "onnxruntime_onnx". */
  String platform();

  /** Whether this runtime serves a model whose config names this platform or backend. */
  boolean handles(String platform, String backend);

  /** The file looked for in a version directory when the config gives no default_model_filename. */
  String defaultModelFilename();

  /**
   * Fills in what the declared config leaves out (inputs, outputs, their types and dims, platform)
   * from the model file itself, and checks what it does declare against the file.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field that disagrees with the model or is
   *     unsupported by this runtime
   */
  ModelConfig completeConfig(ModelConfig declared, Path modelFile);

  /**
   * Opens one instance of a model version.
   *
   * @throws InferenceException when the model cannot be loaded (corrupt file, device missing...)
   */
  ModelRunner newRunner(ModelConfig completed, Path modelFile, InstanceSpec instance);
}
