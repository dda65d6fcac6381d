package io.quiver.lifecycle;

/**
 * One row of the repository index: a model version and its state. {@code version} is the decimal
 * version number, or "" for a model with no loadable (or no loaded) version; {@code reason} is "" when
 * there is nothing to explain.
 */
public record ModelVersionStatus(String name, String version, State state, String reason) {
  public enum State {
    /** Loaded and taking requests. */
    READY,
    /** Being loaded; not yet routable. */
    LOADING,
    /** No longer routable; draining accepted requests before its runners close. */
    UNLOADING,
    /** Not serving: failed to load, missing, or not loaded; {@code reason} says which. */
    UNAVAILABLE
  }
}
