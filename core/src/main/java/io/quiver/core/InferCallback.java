package io.quiver.core;

/**
 * Receives the outcome of an {@link InferRequest}: exactly one of the two methods is called, exactly
 * once, on the request's {@link InferRequest#transport() transport thread} when it has one, else on
 * the thread that finished the request (a compute or scheduler thread). Implementations must not block.
 */
public interface InferCallback {
  /**
   * @param outputs the requested outputs, aligned with {@link InferRequest#outputIndices()}. Their
   *     buffers are valid during this call only (a runner may reuse them for a later batch): copy or
   *     serialize what must outlive it.
   */
  void onSuccess(InferRequest request, Tensor[] outputs);

  void onFailure(InferRequest request, InferenceException error);
}
