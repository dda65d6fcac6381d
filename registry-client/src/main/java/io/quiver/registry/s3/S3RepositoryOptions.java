package io.quiver.registry.s3;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * Where an S3 repository lives and how to reach it. Immutable; start from {@link #of(String, Path)}.
 *
 * @param url {@code s3://bucket[/prefix]}
 * @param endpoint an S3-compatible endpoint (MinIO, Ceph, S3Proxy...); null for AWS itself
 * @param region the signing region; {@link #DEFAULT_REGION} when null
 * @param pathStyle path-style addressing ({@code endpoint/bucket/key}), which most S3-compatible servers need
 * @param accessKeyId static credentials; both null means the SDK's default credential chain
 *     (environment, system properties, profile, container or instance role)
 * @param cacheDir where versions are downloaded to ({@code cacheDir/<model>/<version>/})
 * @param maxAttempts tries per S3 call on retryable failures (unreachable endpoint, 5xx, throttling)
 * @param initialBackoff the wait before the second try; doubled (with jitter) for each further try
 * @param timeout connect and socket-read timeout of each HTTP call
 */
public record S3RepositoryOptions(String url, URI endpoint, String region, boolean pathStyle, String accessKeyId,
    String secretAccessKey, Path cacheDir, int maxAttempts, Duration initialBackoff, Duration timeout) {
  public static final String DEFAULT_REGION = "us-east-1";
  public static final int DEFAULT_MAX_ATTEMPTS = 4;
  public static final Duration DEFAULT_INITIAL_BACKOFF = Duration.ofMillis(200);
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

  public S3RepositoryOptions {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(cacheDir, "cacheDir");
    S3Location.parse(url); // fail early on a malformed URL
    if ((accessKeyId == null) != (secretAccessKey == null)) {
      throw new IllegalArgumentException("give both accessKeyId and secretAccessKey, or neither (default credential chain)");
    }
    if (maxAttempts < 1 || maxAttempts > 20) {
      throw new IllegalArgumentException("maxAttempts must be between 1 and 20; was " + maxAttempts);
    }
    Objects.requireNonNull(initialBackoff, "initialBackoff");
    Objects.requireNonNull(timeout, "timeout");
  }

  /** AWS itself, default region and credential chain, virtual-host addressing, default retries. */
  public static S3RepositoryOptions of(String url, Path cacheDir) {
    return new S3RepositoryOptions(url, null, null, false, null, null, cacheDir, DEFAULT_MAX_ATTEMPTS,
        DEFAULT_INITIAL_BACKOFF, DEFAULT_TIMEOUT);
  }

  /** An S3-compatible endpoint, with path-style addressing. */
  public S3RepositoryOptions withEndpoint(URI endpoint) {
    return new S3RepositoryOptions(url, endpoint, region, true, accessKeyId, secretAccessKey, cacheDir, maxAttempts,
        initialBackoff, timeout);
  }

  public S3RepositoryOptions withPathStyle(boolean pathStyle) {
    return new S3RepositoryOptions(url, endpoint, region, pathStyle, accessKeyId, secretAccessKey, cacheDir,
        maxAttempts, initialBackoff, timeout);
  }

  public S3RepositoryOptions withRegion(String region) {
    return new S3RepositoryOptions(url, endpoint, region, pathStyle, accessKeyId, secretAccessKey, cacheDir,
        maxAttempts, initialBackoff, timeout);
  }

  public S3RepositoryOptions withCredentials(String accessKeyId, String secretAccessKey) {
    return new S3RepositoryOptions(url, endpoint, region, pathStyle, accessKeyId, secretAccessKey, cacheDir,
        maxAttempts, initialBackoff, timeout);
  }

  public S3RepositoryOptions withRetries(int maxAttempts, Duration initialBackoff) {
    return new S3RepositoryOptions(url, endpoint, region, pathStyle, accessKeyId, secretAccessKey, cacheDir,
        maxAttempts, initialBackoff, timeout);
  }

  public S3RepositoryOptions withTimeout(Duration timeout) {
    return new S3RepositoryOptions(url, endpoint, region, pathStyle, accessKeyId, secretAccessKey, cacheDir,
        maxAttempts, initialBackoff, timeout);
  }

  @Override
  public String toString() { // never print the secret
    return "S3RepositoryOptions[" + url + (endpoint == null ? "" : " endpoint=" + endpoint) + " region="
        + (region == null ? DEFAULT_REGION : region) + (pathStyle ? " path-style" : "")
        + (accessKeyId == null ? " default-credentials" : " static-credentials") + " cache=" + cacheDir + "]";
  }
}
