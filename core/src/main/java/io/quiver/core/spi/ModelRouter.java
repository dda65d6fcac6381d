package io.quiver.core.spi;

/**
 * Finds the loaded version a request for a model should go to and holds it, as the data plane does
 * for a client's request (the model manager implements it). Thread-safe, non-blocking, and allocation-free
 * on success, so a scheduler may call it for every request it forwards.
 */
@FunctionalInterface
public interface ModelRouter {
  /**
   * @param version a version number, a traffic label, or "" for the version the model routes to
   * @param requestId the request's id: routing by traffic weights is sticky per id ("" picks at random)
   * @return the held version; the caller releases it exactly once
   * @throws io.quiver.core.InferenceException NOT_FOUND for an unknown model or version, UNAVAILABLE for
   *     one that is not ready (the message names the state and the reason)
   */
  ModelHandle acquire(String model, String version, String requestId);
}
