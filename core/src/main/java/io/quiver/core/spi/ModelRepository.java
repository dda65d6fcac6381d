package io.quiver.core.spi;

import io.quiver.core.InferenceException;
import java.util.List;

/**
 * Where models live (a local directory, later an S3 bucket), in Triton's layout:
 * {@code <model>/config.pbtxt} and {@code <model>/<version>/<files>}. Thread-safe.
 */
public interface ModelRepository extends AutoCloseable {
  /** Human-readable location, e.g. "/srv/models" or "s3://bucket/prefix". */
  String location();

  /** Names of the models present, sorted. */
  List<String> modelNames();

  /**
   * Reads one model's entry: its declared config and the versions present.
   *
   * @throws InferenceException NOT_FOUND when there is no such model; INVALID_ARGUMENT when its
   *     config.pbtxt does not parse (the message names the file, line and field)
   */
  RepositoryModel model(String name);

  @Override
  default void close() {}
}
