package io.quiver.runtime.onnxruntime;

import ai.onnxruntime.OrtProvider;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Whether this machine can run the GPU tests: an NVIDIA GPU is visible, and ONNX Runtime is the GPU build (-Pgpu). */
final class CudaAvailability {
  private CudaAvailability() {}

  /** An NVIDIA device node, or a working {@code nvidia-smi -L}. */
  static boolean present() {
    if (Files.exists(Path.of("/dev/nvidia0"))) {
      return true;
    }
    try {
      Process process = new ProcessBuilder("nvidia-smi", "-L").redirectErrorStream(true).start();
      boolean exited = process.waitFor(10, TimeUnit.SECONDS);
      if (!exited) {
        process.destroyForcibly();
        return false;
      }
      return process.exitValue() == 0;
    } catch (Exception e) {
      return false;
    }
  }

  /** For {@code @EnabledIf}: a GPU and the CUDA provider. */
  static boolean cuda() {
    return present() && OnnxRuntime.availableProviders().contains(OrtProvider.CUDA);
  }

  /** For {@code @EnabledIf}: a GPU and the TensorRT provider. */
  static boolean tensorRt() {
    return cuda() && OnnxRuntime.availableProviders().contains(OrtProvider.TENSOR_RT);
  }
}
