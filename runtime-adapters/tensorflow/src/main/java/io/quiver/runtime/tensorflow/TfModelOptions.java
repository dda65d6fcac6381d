package io.quiver.runtime.tensorflow;

import io.quiver.core.InferenceException;
import io.quiver.core.runtime.ModelParameters;
import io.quiver.proto.inference.ModelConfig;
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
    return new TfModelOptions(ModelParameters.stringValue(config, SIGNATURE_DEF, DEFAULT_SIGNATURE),
        ModelParameters.stringValue(config, GRAPH_TAG, DEFAULT_TAG),
        ModelParameters.intValue(config, INTRA_OP_THREAD_COUNT, 0, 0, MAX_THREADS),
        ModelParameters.intValue(config, INTER_OP_THREAD_COUNT, 0, 0, MAX_THREADS));
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
}
