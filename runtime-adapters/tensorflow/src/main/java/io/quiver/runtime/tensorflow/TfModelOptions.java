package io.quiver.runtime.tensorflow;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelParameter;
import org.tensorflow.proto.ConfigProto;

/**
 * The TensorFlow settings a model config asks for, parsed and checked once at load. Config
 * {@code parameters}:
 * <ul>
 *   <li>{@value #SIGNATURE_DEF}: the signature to serve (Triton's TensorFlow backend uses the same
 *       key); default {@value #DEFAULT_SIGNATURE}.
 *   <li>{@value #GRAPH_TAG}: the MetaGraph tag to load (Triton's key); default {@value #DEFAULT_TAG}.
 *   <li>{@value #INTRA_OP_THREAD_COUNT} and {@value #INTER_OP_THREAD_COUNT}: the session's thread
 *       pools (0 = TensorFlow's default, one per core), the keys the onnxruntime runtime uses.
 * </ul>
 * Other keys are left to other components.
 */
record TfModelOptions(String signature, String tag, int intraOpThreads, int interOpThreads) {
  static final String SIGNATURE_DEF = "TF_SIGNATURE_DEF";
  static final String GRAPH_TAG = "TF_GRAPH_TAG";
  static final String INTRA_OP_THREAD_COUNT = "intra_op_thread_count";
  static final String INTER_OP_THREAD_COUNT = "inter_op_thread_count";
  static final String DEFAULT_SIGNATURE = "serving_default";
  static final String DEFAULT_TAG = "serve";
  /** A typo like "800" must not start 800 threads. */
  static final int MAX_THREADS = 1024;

  /** @throws InferenceException INVALID_ARGUMENT naming the parameter and its value */
  static TfModelOptions of(ModelConfig config) {
    return new TfModelOptions(stringParameter(config, SIGNATURE_DEF, DEFAULT_SIGNATURE),
        stringParameter(config, GRAPH_TAG, DEFAULT_TAG), intParameter(config, INTRA_OP_THREAD_COUNT),
        intParameter(config, INTER_OP_THREAD_COUNT));
  }

  /** The session config: thread pools when set; one CPU device, no GPU (this build of TensorFlow has none). */
  ConfigProto sessionConfig() {
    ConfigProto.Builder config = ConfigProto.newBuilder().putDeviceCount("GPU", 0);
    if (intraOpThreads > 0) {
      config.setIntraOpParallelismThreads(intraOpThreads);
    }
    if (interOpThreads > 0) {
      config.setInterOpParallelismThreads(interOpThreads);
    }
    return config.build();
  }

  private static String stringParameter(ModelConfig config, String key, String defaultValue) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return defaultValue;
    }
    String value = parameter.getStringValue().trim();
    if (value.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must not be empty", config.getName(), key);
    }
    return value;
  }

  private static int intParameter(ModelConfig config, String key) {
    ModelParameter parameter = config.getParametersMap().get(key);
    if (parameter == null) {
      return 0;
    }
    String value = parameter.getStringValue().trim();
    int parsed;
    try {
      parsed = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be an integer; was \"%s\"",
          config.getName(), key, value);
    }
    if (parsed < 0 || parsed > MAX_THREADS) {
      throw InferenceException.invalidArgument("model '%s': parameters['%s'] must be between 0 and %d; was %d",
          config.getName(), key, MAX_THREADS, parsed);
    }
    return parsed;
  }
}
