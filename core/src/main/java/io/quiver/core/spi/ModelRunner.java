package io.quiver.core.spi;

import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;

/**
 * One instance of a loaded model version: a runtime session pinned to one device.
 *
 * <p>Not thread-safe: a scheduler gives an instance one batch at a time, from one thread at a time.
 */
public interface ModelRunner extends AutoCloseable {
  /**
   * Runs one batch.
   *
   * @param inputs one tensor per signature input, in signature order (null for an absent optional
   *     input); when the model batches, the first dimension is the batch. Data buffers are direct
   *     and little-endian; the runner reads them only during this call.
   * @param outputIndices signature positions of the outputs to produce
   * @return the outputs, aligned with {@code outputIndices}; their buffers belong to the caller
   * @throws InferenceException INTERNAL (or INVALID_ARGUMENT for input the runtime rejects)
   */
  Tensor[] run(Tensor[] inputs, int[] outputIndices);

  /** Releases the session; idempotent. */
  @Override
  void close();
}
