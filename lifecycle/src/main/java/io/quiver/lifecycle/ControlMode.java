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
  POLL,
  /**
   * Every model in the repository is known and listed, but only pinned models (and
   * {@link ModelManagerOptions#startupModels()}) load at start; any other loads when the first request
   * for it arrives, and requests arriving meanwhile wait in a bounded per-model queue. Under a memory
   * budget the least recently used unpinned models are evicted to make room and load again on their
   * next request.
   */
  LAZY
}
