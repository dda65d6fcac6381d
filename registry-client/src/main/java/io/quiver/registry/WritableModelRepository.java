package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.ModelRepository;
import java.nio.file.Path;
import java.util.List;

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
   * Takes a version back out of the repository (an upload that could not be loaded): removes
   * {@code <model>/<version>/} and its files. A reader sees the version complete or absent (a local
   * directory is renamed aside before it is deleted); absent already is not an error.
   *
   * @throws InferenceException INVALID_ARGUMENT for a bad name; UNAVAILABLE or INTERNAL when the store
   *     cannot be written
   */
  void removeVersion(String model, long version);

  /**
   * The text of {@code <model>/config.pbtxt}, or null when the model has none.
   *
   * @throws InferenceException INVALID_ARGUMENT for a bad name; UNAVAILABLE or INTERNAL when the store
   *     cannot be read
   */
  String readConfigText(String model);

  /**
   * Replaces {@code <model>/config.pbtxt} with {@code text} atomically (readers see the old or the new
   * file); null deletes it.
   */
  void writeConfigText(String model, String text);

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

  /**
   * Reads a small state object the server keeps beside the models (batch-job records, for instance).
   * {@code name} is a relative, '/'-separated path whose first segment starts with {@code ".quiver-"}
   * (hidden, so never taken for a model); see {@link #checkStateName}.
   *
   * @return the bytes and their change tag; null bytes when the object does not exist
   * @throws InferenceException INVALID_ARGUMENT for a bad name; UNAVAILABLE or INTERNAL when the store
   *     cannot be read
   */
  StoredObject readState(String name);

  /** Replaces (or creates) a state object atomically: readers see the old or the new bytes, never a mix. */
  void writeState(String name, byte[] contents);

  /** Names (as given to {@link #readState}) of the state objects directly under {@code prefix} ("…/"), sorted. */
  List<String> listState(String prefix);

  /** The longest state object name accepted. */
  int MAX_STATE_NAME_LENGTH = 512;

  /**
   * Checks a state object name: relative, '/'-separated, at most {@link #MAX_STATE_NAME_LENGTH}
   * characters, first segment starting with ".quiver-", no empty, '.' or '..' segment, no backslash or
   * control character. Returns it.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the problem
   */
  static String checkStateName(String name) {
    boolean ok = name != null && !name.isEmpty() && name.length() <= MAX_STATE_NAME_LENGTH
        && name.startsWith(".quiver-") && !name.contains("\\");
    if (ok) {
      for (String segment : name.split("/", -1)) {
        if (segment.isEmpty() || segment.equals(".") || segment.equals("..")
            || segment.chars().anyMatch(Character::isISOControl)) {
          ok = false;
          break;
        }
      }
    }
    if (!ok) {
      throw InferenceException.invalidArgument(
          "state object name must be a relative path under a '.quiver-' directory without empty, '.' or '..' parts; was '%s'",
          name == null ? "null" : ModelNames.printable(name.length() > 80 ? name.substring(0, 80) + "..." : name));
    }
    return name;
  }

  /** An object read from the store and its change tag; {@code bytes} null when it does not exist. */
  record StoredObject(byte[] bytes, String tag) {}

  /**
   * Folder beside a model's version directories holding small per-version attachments
   * ({@code <model>/.quiver/<version>/<name>}): hidden, so it is never taken for a version, and outside
   * the version directory, so it is not part of the version's files (uploads, S3 cache checks).
   */
  String ATTACHMENTS_DIR = ".quiver";

  /** Largest attachment read or written, in bytes. */
  int MAX_ATTACHMENT_BYTES = 64 << 20;

  /**
   * Reads a per-version attachment unless it is unchanged since {@code knownTag} (conditional, as for
   * the desired state): replicas poll it cheaply.
   *
   * @param name a plain file name: letters, digits, '.', '_', '-', not starting with '.'
   * @return null when unchanged since {@code knownTag}; otherwise the contents (null bytes when absent)
   * @throws InferenceException INVALID_ARGUMENT for a bad model or attachment name or a negative
   *     version; FAILED_PRECONDITION when the stored object exceeds {@link #MAX_ATTACHMENT_BYTES};
   *     UNAVAILABLE or INTERNAL when the store cannot be read
   */
  StoredObject readVersionAttachment(String model, long version, String name, String knownTag);

  /**
   * Replaces a per-version attachment atomically (readers see the old or the new contents).
   *
   * @throws InferenceException INVALID_ARGUMENT for a bad name or contents over {@link #MAX_ATTACHMENT_BYTES};
   *     UNAVAILABLE or INTERNAL when the store cannot be written
   */
  void writeVersionAttachment(String model, long version, String name, byte[] contents);

  /** Checks the arguments of the attachment methods; returns the relative path {@code .quiver/<version>/<name>}. */
  static String attachmentPath(String model, long version, String name) {
    ModelNames.requireValid(model);
    if (version < 0) {
      throw InferenceException.invalidArgument("version must be >= 0; was %d", version);
    }
    boolean plain = !name.isEmpty() && name.length() <= 128 && name.charAt(0) != '.';
    for (int i = 0; plain && i < name.length(); i++) {
      char c = name.charAt(i);
      plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    if (!plain) {
      throw InferenceException.invalidArgument("attachment name must be a plain file name (letters, digits, '.', '_', '-',"
          + " not starting with '.'); was '%s'", ModelNames.printable(name));
    }
    return ATTACHMENTS_DIR + "/" + version + "/" + name;
  }
}
