package io.quiver.lifecycle;

import java.nio.file.Path;

/**
 * Settings of a {@link ModelLifecycle} beyond its manager's.
 *
 * @param pollIntervalMillis how often the desired state (and, in POLL mode, the repository; in LAZY
 *     mode, its list of models) is read again; 0 = never
 * @param uploadStagingDir where uploads are staged before they go into the repository (swept at start)
 * @param persistDesiredState whether the desired state is written beside the repository (when it can
 *     be written); false keeps it in memory only (a repository mounted read-only, as KServe's)
 */
public record LifecycleOptions(long pollIntervalMillis, Path uploadStagingDir, boolean persistDesiredState) {
  public static final long DEFAULT_POLL_INTERVAL_MILLIS = 10_000;
  /** Name of the staging folder inside the model cache directory (hidden: never taken for a model). */
  public static final String STAGING_FOLDER = ".quiver-uploads";

  public LifecycleOptions {
    if (pollIntervalMillis < 0) {
      throw new IllegalArgumentException("pollIntervalMillis must be >= 0; was " + pollIntervalMillis);
    }
    if (pollIntervalMillis > 0 && pollIntervalMillis < 10) {
      throw new IllegalArgumentException("pollIntervalMillis must be 0 (off) or >= 10; was " + pollIntervalMillis);
    }
    uploadStagingDir = uploadStagingDir != null ? uploadStagingDir : defaultCacheDir().resolve(STAGING_FOLDER);
  }

  /** The form that persists the desired state. */
  public LifecycleOptions(long pollIntervalMillis, Path uploadStagingDir) {
    this(pollIntervalMillis, uploadStagingDir, true);
  }

  /** Poll every 10 s; uploads staged under the default cache directory; the desired state beside the repository. */
  public static LifecycleOptions defaults() {
    return new LifecycleOptions(DEFAULT_POLL_INTERVAL_MILLIS, null, true);
  }

  /** {@code $TMPDIR/quiver-model-cache}, the server's default {@code --model-cache-dir}. */
  public static Path defaultCacheDir() {
    return Path.of(System.getProperty("java.io.tmpdir"), "quiver-model-cache");
  }

  public LifecycleOptions withPollIntervalMillis(long millis) {
    return new LifecycleOptions(millis, uploadStagingDir, persistDesiredState);
  }

  /** Uploads staged under {@code cacheDir}/{@value #STAGING_FOLDER}. */
  public LifecycleOptions withModelCacheDir(Path cacheDir) {
    return new LifecycleOptions(pollIntervalMillis, cacheDir.resolve(STAGING_FOLDER), persistDesiredState);
  }

  /** The desired state written beside the repository (true) or kept in memory only. */
  public LifecycleOptions withPersistDesiredState(boolean persist) {
    return new LifecycleOptions(pollIntervalMillis, uploadStagingDir, persist);
  }
}
