package io.quiver.core;

/**
 * Receives the outcome of an {@link InferRequest}: exactly one of the two methods is called, exactly
 * once, on the thread that finished the request (a runner or scheduler thread). Implementations must
 * not block.
 */
public interface InferCallback {
  /**
   * @param outputs the requested outputs, aligned with {@link InferRequest#outputIndices()}; their
   *     buffers belong to the callee from now on
   */
  void onSuccess(InferRequest request, Tensor[] outputs);

  void onFailure(InferRequest request, InferenceException error);
}
