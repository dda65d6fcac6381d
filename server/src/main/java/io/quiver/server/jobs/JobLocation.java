package io.quiver.server.jobs;

import io.quiver.core.InferenceException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/**
 * Where a job reads or writes: an absolute local path, or an S3 bucket and key. Parsed once from a
 * URI ({@code /abs/path}, {@code file:///abs/path}, {@code s3://bucket/key}), normalized, and checked
 * against the configured roots. Immutable.
 *
 * @param path the normalized absolute path (local), or null
 * @param bucket the bucket (S3), or null
 * @param key the key or prefix inside the bucket (S3; no leading '/'), or null
 */
public record JobLocation(Path path, String bucket, String key) {
  /** The longest URI accepted. */
  static final int MAX_URI_LENGTH = 2048;

  public boolean isS3() {
    return bucket != null;
  }

  /**
   * Parses a job's input or output URI.
   *
   * @param field the request field, named in errors ("input_uri", "output_uri")
   * @throws InferenceException INVALID_ARGUMENT naming the field
   */
  public static JobLocation parse(String field, String uri) {
    if (uri == null || uri.isBlank()) {
      throw InferenceException.invalidField(field, "%s is required: an absolute path, file:///path or s3://bucket/key", field);
    }
    if (uri.length() > MAX_URI_LENGTH) {
      throw InferenceException.invalidField(field, "%s is %d characters long; at most %d", field, uri.length(), MAX_URI_LENGTH);
    }
    for (int i = 0; i < uri.length(); i++) {
      if (Character.isISOControl(uri.charAt(i))) {
        throw InferenceException.invalidField(field, "%s contains a control character", field);
      }
    }
    if (uri.startsWith("s3://")) {
      String rest = uri.substring(5);
      int slash = rest.indexOf('/');
      String bucket = slash < 0 ? rest : rest.substring(0, slash);
      String key = slash < 0 ? "" : rest.substring(slash + 1);
      if (!bucket.matches("[a-z0-9][a-z0-9.\\-]{1,62}")) {
        throw InferenceException.invalidField(field, "%s names an invalid bucket '%s'", field, bucket);
      }
      for (String segment : key.split("/", -1)) {
        if (segment.equals(".") || segment.equals("..")) {
          throw InferenceException.invalidField(field, "%s must not contain '.' or '..' segments; was '%s'", field, uri);
        }
      }
      if (key.contains("//") || key.contains("\\")) {
        throw InferenceException.invalidField(field, "%s must not contain '//' or '\\'; was '%s'", field, uri);
      }
      return new JobLocation(null, bucket, key);
    }
    String pathText = uri;
    if (uri.startsWith("file:")) {
      try {
        URI parsed = URI.create(uri);
        if (parsed.getAuthority() != null && !parsed.getAuthority().isEmpty()) {
          throw InferenceException.invalidField(field, "%s: file URIs must be file:///absolute/path; was '%s'", field, uri);
        }
        pathText = parsed.getPath();
      } catch (IllegalArgumentException e) {
        throw InferenceException.invalidField(field, "%s is not a valid URI: %s", field, e.getMessage());
      }
    } else if (uri.contains("://")) {
      throw InferenceException.invalidField(field, "%s: only local paths, file:/// and s3:// are supported; was '%s'", field, uri);
    }
    Path path;
    try {
      path = Path.of(pathText);
    } catch (InvalidPathException e) {
      throw InferenceException.invalidField(field, "%s is not a valid path: %s", field, e.getMessage());
    }
    if (!path.isAbsolute()) {
      throw InferenceException.invalidField(field, "%s must be an absolute path; was '%s'", field, uri);
    }
    return new JobLocation(path.normalize(), null, null);
  }

  /** A configured root: as {@link #parse}, but a bad one is a startup error. */
  static JobLocation parseRoot(String flag, String root) {
    try {
      JobLocation location = parse(flag, root);
      return location.isS3() ? location.asPrefix() : location;
    } catch (InferenceException e) {
      throw new IllegalArgumentException(flag + ": " + e.getMessage(), e);
    }
  }

  /** The same location as a directory-like prefix: an S3 key ending in '/' (or empty); a path unchanged. */
  JobLocation asPrefix() {
    if (!isS3() || key.isEmpty() || key.endsWith("/")) {
      return this;
    }
    return new JobLocation(null, bucket, key + "/");
  }

  /**
   * Whether this location lies under {@code root} (a prefix form). Local paths are compared after
   * resolving symbolic links of the longest existing part of each, so a link inside a root cannot lead
   * outside it.
   */
  boolean isUnder(JobLocation root) {
    if (isS3() != root.isS3()) {
      return false;
    }
    if (isS3()) {
      // root.key is "" or ends with '/': "a/b" is under "a/", and so is "a" itself as a prefix ("a/").
      return bucket.equals(root.bucket) && (key.startsWith(root.key) || (key + "/").equals(root.key));
    }
    return realPath(path).startsWith(realPath(root.path));
  }

  /** The real path of the longest existing ancestor, with the rest appended. */
  static Path realPath(Path path) {
    Path existing = path;
    Path rest = null;
    while (existing != null && !Files.exists(existing)) {
      Path name = existing.getFileName();
      rest = rest == null ? name : name.resolve(rest);
      existing = existing.getParent();
    }
    if (existing == null) {
      return path;
    }
    try {
      Path real = existing.toRealPath();
      return rest == null ? real : real.resolve(rest).normalize();
    } catch (IOException e) {
      return path;
    }
  }

  /** The last part of the name (a file name or the key's last segment), for format detection. */
  String name() {
    if (isS3()) {
      int slash = key.lastIndexOf('/');
      return key.substring(slash + 1);
    }
    Path name = path.getFileName();
    return name == null ? "" : name.toString();
  }

  @Override
  public String toString() {
    return isS3() ? "s3://" + bucket + "/" + key : path.toString();
  }
}
