package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.ModelRepository;
import java.nio.file.Path;

/**
 * A repository the control plane can write to: new versions (uploads) and the desired-state manifest
 * kept beside the models, so that every server pointed at the repository converges to the same state.
 * Thread-safe.
 */
public interface WritableModelRepository extends ModelRepository {
  /** Name of the desired-state manifest at the repository's root (hidden, so never taken for a model). */
  String DESIRED_STATE_NAME = ".quiver-desired-state.json";

  /**
   * Puts the files of {@code stagedDir} (recursively) into the repository as {@code <model>/<version>/},
   * and {@code configText}, when not null, as {@code <model>/config.pbtxt}.
   *
   * @throws InferenceException ALREADY_EXISTS when the version is present; INVALID_ARGUMENT for a bad
   *     name; UNAVAILABLE or INTERNAL when the store cannot be written
   */
  void putVersion(String model, long version, Path stagedDir, String configText);

  /**
   * Reads the desired-state manifest unless it is unchanged since {@code knownTag} (an ETag for S3,
   * modification time and size for a directory): a cheap conditional read for polling.
   *
   * @param knownTag the tag of the last read, or null
   * @return null when unchanged since {@code knownTag}; otherwise the contents (null bytes when absent)
   */
  StoredObject readDesiredState(String knownTag);

  /** Replaces the desired-state manifest atomically (readers see the old or the new, never a mix). */
  void writeDesiredState(byte[] contents);

  /** An object read from the store and its change tag; {@code bytes} null when it does not exist. */
  record StoredObject(byte[] bytes, String tag) {}
}
