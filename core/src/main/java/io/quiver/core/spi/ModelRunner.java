package io.quiver.core.spi;

import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;

/**
 * One instance of a loaded model version: a runtime session pinned to one device.
 *
 * <p>Not thread-safe: a scheduler gives an instance one batch at a time, from one thread at a time.
 * Calls may come from different threads over time (each call happens-after the previous one).
 *
 * <p>A caller that passes the same input {@link Tensor} object again (same buffer, same shape: a
 * scheduler's pooled batch buffer) lets a runner reuse what it built over it, e.g. an ONNX Runtime
 * tensor wrapping that memory; the buffer's contents may change between runs.
 */
public interface ModelRunner extends AutoCloseable {
  /**
   * Runs one batch.
   *
   * @param inputs one tensor per signature input, in signature order (null for an absent optional
   *     input); when the model batches, the first dimension is the batch. Data buffers are direct
   *     and little-endian; the runner reads them only during this call.
   * @param outputIndices signature positions of the outputs to produce
   * @return the outputs, aligned with {@code outputIndices}. Their buffers stay valid until the second
   *     following {@code run} on this runner starts (a runner may alternate between two sets of output
   *     buffers that it reuses); the caller must be done with them by then. A runner may also return
   *     fresh buffers every time.
   * @throws InferenceException INTERNAL (or INVALID_ARGUMENT for input the runtime rejects)
   */
  Tensor[] run(Tensor[] inputs, int[] outputIndices);

  /**
   * Native memory this instance holds as its runtime reports it (weights, arenas), in bytes, or -1
   * when the runtime does not say. The model lifecycle takes it into a loaded version's memory
   * accounting beside the process's resident-size growth measured at load. Called once after load,
   * from the loading thread.
   */
  default long memoryBytes() {
    return -1;
  }

  /** Releases the session; idempotent. */
  @Override
  void close();
}
