package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.proto.inference.ModelConfig;
import java.nio.file.Path;
import java.util.Collections;
import java.util.SortedSet;

/**
 * An immutable snapshot of one model as a repository listed it: name, declared config, versions.
 * How a version's files reach local disk is the repository's business ({@link VersionFetcher}: a
 * path inside a local directory, or a download into a cache). Thread-safe.
 */
public final class ModelSnapshot implements RepositoryModel {
  /** Makes one listed version's files available on local disk; may block on I/O. */
  @FunctionalInterface
  public interface VersionFetcher {
    Path fetch(String model, long version);
  }

  private final String name;
  private final ModelConfig declared;
  private final boolean hasConfigFile;
  private final SortedSet<Long> versions;
  private final String location;
  private final VersionFetcher fetcher;

  /**
   * @param location where the model lives, for error messages
   * @param fetcher called only for versions in {@code versions}
   */
  public ModelSnapshot(String name, ModelConfig declared, boolean hasConfigFile, SortedSet<Long> versions,
      String location, VersionFetcher fetcher) {
    this.name = name;
    this.declared = declared;
    this.hasConfigFile = hasConfigFile;
    this.versions = Collections.unmodifiableSortedSet(versions);
    this.location = location;
    this.fetcher = fetcher;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public ModelConfig declaredConfig() {
    return declared;
  }

  @Override
  public boolean hasConfigFile() {
    return hasConfigFile;
  }

  @Override
  public SortedSet<Long> versions() {
    return versions;
  }

  /** @throws InferenceException NOT_FOUND for a version this snapshot does not hold */
  @Override
  public Path versionDirectory(long version) {
    if (!versions.contains(version)) {
      throw InferenceException.notFound("model '%s' has no version %d in %s (versions present: %s)",
          name, version, location, versions);
    }
    return fetcher.fetch(name, version);
  }

  @Override
  public String toString() {
    return "ModelSnapshot[" + name + " " + versions + " in " + location + "]";
  }
}
