package io.quiver.core.spi;

import io.quiver.proto.inference.ModelConfig;
import java.nio.file.Path;
import java.util.SortedSet;

/**
 * One model as a repository holds it: the config as declared in config.pbtxt (empty apart from the
 * name when the file is absent), the numeric versions present, and access to a version's files on
 * local disk (fetched into a cache first for remote repositories).
 */
public interface RepositoryModel {
  String name();

  /** The parsed config.pbtxt, or a config holding only the name when there is none. */
  ModelConfig declaredConfig();

  /** Whether config.pbtxt existed. */
  boolean hasConfigFile();

  /** Version numbers present (numeric directory names), ascending. */
  SortedSet<Long> versions();

  /** A local directory holding the version's files. */
  Path versionDirectory(long version);
}
