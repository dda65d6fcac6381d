package io.quiver.registry.s3;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.HeadObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Object calls on an S3-compatible store with the repository's retry and error rules: every call is
 * retried with exponential backoff and full jitter on retryable failures (endpoint unreachable, 5xx,
 * throttling), and failures become {@link InferenceException}s: NOT_FOUND for a missing bucket or
 * key, FAILED_PRECONDITION for denied access (naming the bucket), UNAVAILABLE when the endpoint cannot
 * be reached. {@link S3ModelRepository} and batch jobs' input and output use it. Thread-safe (the SDK
 * client is); calls block the caller for their I/O and their backoff sleeps.
 */
public final class S3Objects {
  private static final Logger log = LoggerFactory.getLogger(S3Objects.class);
  /** Pages read at most by one listing (1000 keys each). */
  static final int MAX_LIST_PAGES = 1_000;

  private final S3Client client;
  private final String endpointLabel;
  private final int maxAttempts;
  private final long initialBackoffMillis;

  /** @param options the connection and retry settings (its URL is not used here) */
  public S3Objects(S3Client client, S3RepositoryOptions options) {
    this.client = client;
    this.endpointLabel = options.endpoint() == null ? "AWS S3" : options.endpoint().toString();
    this.maxAttempts = options.maxAttempts();
    this.initialBackoffMillis = options.initialBackoff().toMillis();
  }

  public S3Client client() {
    return client;
  }

  /** Size of an object, or -1 when it does not exist (a missing bucket is NOT_FOUND). */
  public long size(String bucket, String key) {
    return withRetries(bucket, "read " + url(bucket, key), () -> {
      try {
        HeadObjectResponse head = client.headObject(b -> b.bucket(bucket).key(key));
        return head.contentLength();
      } catch (NoSuchKeyException e) {
        return -1L;
      } catch (S3Exception e) {
        if (e.statusCode() == 404 && !isNoSuchBucket(e)) {
          return -1L;
        }
        throw e;
      }
    });
  }

  /**
   * Opens an object for reading from byte {@code offset} (a ranged GET when it is not 0). The
   * stream's own reads are not retried; the caller closes it.
   */
  public InputStream open(String bucket, String key, long offset) {
    return withRetries(bucket, "read " + url(bucket, key), () -> {
      GetObjectRequest.Builder request = GetObjectRequest.builder().bucket(bucket).key(key);
      if (offset > 0) {
        request.range("bytes=" + offset + "-");
      }
      return client.getObject(request.build());
    });
  }

  /** Reads a whole (small) object; null when it does not exist. */
  public byte[] readIfExists(String bucket, String key) {
    return withRetries(bucket, "read " + url(bucket, key), () -> {
      try {
        return client.getObjectAsBytes(b -> b.bucket(bucket).key(key)).asByteArray();
      } catch (NoSuchKeyException e) {
        return null;
      } catch (S3Exception e) {
        if (e.statusCode() == 404 && !isNoSuchBucket(e)) {
          return null;
        }
        throw e;
      }
    });
  }

  /** One PUT: the object appears whole or not at all. */
  public void put(String bucket, String key, byte[] contents) {
    withRetries(bucket, "write " + url(bucket, key), () -> client.putObject(b -> b.bucket(bucket).key(key),
        RequestBody.fromBytes(contents)));
  }

  /** Deletes an object; deleting one that does not exist succeeds. */
  public void delete(String bucket, String key) {
    withRetries(bucket, "delete " + url(bucket, key), () -> client.deleteObject(b -> b.bucket(bucket).key(key)));
  }

  /**
   * Objects under {@code prefix}; with a {@code delimiter}, only those directly under it. At most
   * {@code limit} objects (directory markers, keys ending in '/', are left out).
   */
  public List<S3Object> list(String bucket, String prefix, String delimiter, int limit) {
    List<S3Object> out = new ArrayList<>();
    for (ListObjectsV2Response page : listPages(bucket, prefix, delimiter, "list " + url(bucket, prefix))) {
      for (S3Object o : page.contents()) {
        if (!o.key().endsWith("/")) {
          out.add(o);
          if (out.size() >= limit) {
            return out;
          }
        }
      }
    }
    return out;
  }

  /** Every page of a listing (bounded by {@link #MAX_LIST_PAGES}). */
  public List<ListObjectsV2Response> listPages(String bucket, String prefix, String delimiter, String what) {
    List<ListObjectsV2Response> pages = new ArrayList<>();
    String token = null;
    do {
      ListObjectsV2Request.Builder request = ListObjectsV2Request.builder().bucket(bucket).prefix(prefix);
      if (delimiter != null) {
        request.delimiter(delimiter);
      }
      if (token != null) {
        request.continuationToken(token);
      }
      ListObjectsV2Request built = request.build();
      ListObjectsV2Response page = withRetries(bucket, what, () -> client.listObjectsV2(built));
      pages.add(page);
      token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
    } while (token != null && pages.size() < MAX_LIST_PAGES);
    return pages;
  }

  /** Runs an S3 call, retrying retryable failures with exponential backoff and full jitter. */
  public <T> T withRetries(String bucket, String what, Supplier<T> call) {
    for (int attempt = 1; ; attempt++) {
      try {
        return call.get();
      } catch (SdkException | InferenceException | java.io.UncheckedIOException e) {
        InferenceException translated = translate(e, bucket, what);
        if (translated.code() != ErrorCode.UNAVAILABLE || attempt >= maxAttempts) {
          if (attempt > 1) {
            log.warn("{} failed after {} attempt(s): {}", what, attempt, translated.getMessage());
          }
          throw translated;
        }
        long cap = initialBackoffMillis << Math.min(attempt - 1, 10);
        long sleep = ThreadLocalRandom.current().nextLong(cap / 2, cap + 1);
        log.debug("{} failed (attempt {} of {}), retrying in {} ms: {}", what, attempt, maxAttempts, sleep,
            translated.getMessage());
        try {
          Thread.sleep(sleep);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw translated;
        }
      }
    }
  }

  /** The one translation of S3 failures into the project's error type. */
  public InferenceException translate(RuntimeException e, String bucket, String what) {
    if (e instanceof InferenceException ie) {
      return ie;
    }
    if (e instanceof java.io.UncheckedIOException io) {
      return InferenceException.unavailable("%s in bucket '%s': %s", what, bucket, io.getCause());
    }
    if (e instanceof S3Exception s3) {
      int status = s3.statusCode();
      String code = s3.awsErrorDetails() == null ? null : s3.awsErrorDetails().errorCode();
      String detail = (code == null ? "HTTP " + status : code + ", HTTP " + status);
      if (isNoSuchBucket(s3)) {
        return InferenceException.notFound("%s: bucket '%s' does not exist at %s (%s)", what, bucket,
            endpointLabel, detail);
      }
      if (status == 404) {
        return InferenceException.notFound("%s: not found in bucket '%s' (%s)", what, bucket, detail);
      }
      if (status == 403 || status == 401) {
        return new InferenceException(ErrorCode.FAILED_PRECONDITION, what + ": access to bucket '" + bucket
            + "' at " + endpointLabel + " denied (" + detail + "); check the credentials and the bucket policy",
            null, 0L, e);
      }
      if (status >= 500 || status == 429) {
        return new InferenceException(ErrorCode.UNAVAILABLE, what + ": S3 at " + endpointLabel + " answered " + detail,
            null, 0L, e);
      }
      return new InferenceException(ErrorCode.INTERNAL, what + ": S3 at " + endpointLabel + " answered " + detail
          + ": " + s3.getMessage(), null, 0L, e);
    }
    if (e instanceof SdkClientException) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      return new InferenceException(ErrorCode.UNAVAILABLE, what + ": S3 endpoint " + endpointLabel
          + " is unreachable: " + root, null, 0L, e);
    }
    return new InferenceException(ErrorCode.INTERNAL, what + ": " + e, null, 0L, e);
  }

  static boolean isNoSuchBucket(S3Exception e) {
    return e.awsErrorDetails() != null && "NoSuchBucket".equals(e.awsErrorDetails().errorCode());
  }

  static String url(String bucket, String key) {
    return "s3://" + bucket + "/" + key;
  }
}
