package io.quiver.runtime.onnxruntime;

import java.util.Map;

/**
 * One ONNX Runtime execution provider to register for a session, before the implicit CPU fallback:
 * its name ({@value #TENSORRT} or {@value #CUDA}), the GPU ordinal and ONNX Runtime's own option
 * keys and values (e.g. {@code trt_fp16_enable=1}), ready for
 * {@code OrtTensorRTProviderOptions.add} / {@code OrtCUDAProviderOptions.add}. Immutable.
 */
record ExecutionProvider(String name, int deviceId, Map<String, String> options) {
  static final String TENSORRT = "tensorrt";
  static final String CUDA = "cuda";

  ExecutionProvider {
    options = Map.copyOf(options);
  }

  /** "CUDA" or "TensorRT", for messages. */
  String displayName() {
    return name.equals(TENSORRT) ? "TensorRT" : "CUDA";
  }

  @Override
  public String toString() {
    return name + "(GPU " + deviceId + ", " + new java.util.TreeMap<>(options) + ")";
  }
}
