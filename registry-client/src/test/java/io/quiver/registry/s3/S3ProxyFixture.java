package io.quiver.registry.s3;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/** A real S3 API for tests: S3Proxy in-process on a loopback ephemeral port over jclouds' in-memory blob store. */
public final class S3ProxyFixture implements AutoCloseable {
  public static final String ACCESS_KEY = "quiver-test";
  public static final String SECRET_KEY = "quiver-test-secret";

  private final BlobStoreContext context;
  private final S3Proxy proxy;
  private final URI endpoint;
  private final S3Client client;
  private boolean stopped;

  private S3ProxyFixture() throws Exception {
    context = ContextBuilder.newBuilder("transient").credentials("unused", "unused").build(BlobStoreContext.class);
    proxy = S3Proxy.builder()
        .blobStore(context.getBlobStore())
        .endpoint(URI.create("http://127.0.0.1:0"))
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
        .build();
    proxy.start();
    endpoint = URI.create("http://127.0.0.1:" + proxy.getPort());
    client = S3ModelRepository.buildClient(options("s3://unused", Files.createTempDirectory("s3fixture")));
  }

  public static S3ProxyFixture start() {
    try {
      return new S3ProxyFixture();
    } catch (Exception e) {
      throw new IllegalStateException("cannot start S3Proxy", e);
    }
  }

  public URI endpoint() {
    return endpoint;
  }

  public S3Client client() {
    return client;
  }

  /** Options for this endpoint with the right keys, path-style, and short retries. */
  public S3RepositoryOptions options(String url, Path cacheDir) {
    return S3RepositoryOptions.of(url, cacheDir)
        .withEndpoint(endpoint)
        .withCredentials(ACCESS_KEY, SECRET_KEY)
        .withRetries(3, Duration.ofMillis(20))
        .withTimeout(Duration.ofSeconds(5));
  }

  public void createBucket(String bucket) {
    client.createBucket(b -> b.bucket(bucket));
  }

  public void put(String bucket, String key, byte[] bytes) {
    client.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromBytes(bytes));
  }

  /** Uploads every file under {@code dir} to {@code prefix + relative path}. */
  public void uploadTree(String bucket, String prefix, Path dir) {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path file : walk.filter(Files::isRegularFile).toList()) {
        String key = prefix + dir.relativize(file).toString().replace('\\', '/');
        client.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromFile(file));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Stops the server (the blob store and its contents stay). Idempotent. */
  public void stop() {
    if (!stopped) {
      stopped = true;
      try {
        proxy.stop();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  @Override
  public void close() {
    stop();
    client.close();
    context.close();
  }
}
