package io.quiver.registry.s3;

import io.quiver.core.InferenceException;

/**
 * A parsed {@code s3://bucket[/prefix]} URL. {@code prefix} is "" or ends with '/', so keys are
 * {@code prefix + model + "/" + ...}.
 */
public record S3Location(String bucket, String prefix) {
  /** @throws InferenceException INVALID_ARGUMENT for anything but s3://bucket[/prefix] */
  public static S3Location parse(String url) {
    if (url == null || !url.startsWith("s3://")) {
      throw InferenceException.invalidArgument("S3 repository URL must look like s3://bucket/prefix; was '%s'", url);
    }
    String rest = url.substring("s3://".length());
    int slash = rest.indexOf('/');
    String bucket = slash < 0 ? rest : rest.substring(0, slash);
    String prefix = slash < 0 ? "" : rest.substring(slash + 1);
    if (bucket.isEmpty()) {
      throw InferenceException.invalidArgument("S3 repository URL names no bucket: '%s'", url);
    }
    while (prefix.startsWith("/")) {
      prefix = prefix.substring(1);
    }
    if (!prefix.isEmpty() && !prefix.endsWith("/")) {
      prefix = prefix + "/";
    }
    if (prefix.contains("//") || prefix.contains("../") || prefix.startsWith("./")) {
      throw InferenceException.invalidArgument("S3 repository prefix must not contain empty, '.' or '..' segments; was '%s'", prefix);
    }
    return new S3Location(bucket, prefix);
  }

  @Override
  public String toString() {
    return "s3://" + bucket + "/" + prefix;
  }
}
