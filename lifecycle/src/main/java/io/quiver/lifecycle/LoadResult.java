package io.quiver.lifecycle;

import java.util.List;
import java.util.StringJoiner;

/**
 * What one {@link ModelManager#load} did, version by version: loaded anew, reloaded (its files or
 * config changed since it loaded), unchanged (already serving the same content), failed (with the
 * reason), or unloaded (no longer selected by the version policy). Immutable.
 */
public record LoadResult(String model, List<VersionChange> changes) {
  public enum Change {
    LOADED, RELOADED, UNCHANGED, FAILED, UNLOADED;

    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** One version's outcome; {@code reason} says why for FAILED and RELOADED, else "". */
  public record VersionChange(long version, Change change, String reason) {}

  public LoadResult {
    changes = List.copyOf(changes);
  }

  /** Whether {@code version} failed to load in this operation. */
  public boolean failed(long version) {
    return changes.stream().anyMatch(c -> c.version() == version && c.change() == Change.FAILED);
  }

  /** The reason {@code version} failed, or "" when it did not. */
  public String failureReason(long version) {
    return changes.stream().filter(c -> c.version() == version && c.change() == Change.FAILED)
        .map(VersionChange::reason).findFirst().orElse("");
  }

  /** E.g. "version 1 unchanged, version 2 reloaded (model files changed)". */
  public String summary() {
    StringJoiner out = new StringJoiner(", ");
    for (VersionChange c : changes) {
      out.add("version " + c.version() + " " + c.change().label() + (c.reason().isEmpty() ? "" : " (" + c.reason() + ")"));
    }
    return changes.isEmpty() ? "nothing to do" : out.toString();
  }
}
