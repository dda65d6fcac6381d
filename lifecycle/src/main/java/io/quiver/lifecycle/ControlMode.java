package io.quiver.lifecycle;

/** Which models the {@link ModelManager} loads at start (Triton's {@code --model-control-mode}). */
public enum ControlMode {
  /** Every model in the repository. */
  NONE,
  /** Only {@link ModelManagerOptions#startupModels()}; the rest on request. */
  EXPLICIT,
  /**
   * Every model in the repository at start, then the repository is watched ({@code RepositoryPoller}):
   * each model's version policy is applied to versions that appear or disappear.
   */
  POLL
}
