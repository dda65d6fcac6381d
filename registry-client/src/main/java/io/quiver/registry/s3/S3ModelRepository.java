package io.quiver.registry.s3;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.registry.LocalModelRepository;
import io.quiver.registry.ModelConfigParser;
import io.quiver.registry.ModelNames;
import io.quiver.registry.ModelSnapshot;
import io.quiver.registry.ParsedConfigs;
import io.quiver.registry.WritableModelRepository;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.CommonPrefix;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * A model repository in an S3 bucket (AWS or any S3-compatible store), in the same layout as
 * {@link LocalModelRepository}: {@code s3://bucket/prefix/<model>/config.pbtxt} and
 * {@code <model>/<version>/<files>}.
 *
 * <p>Listing and config.pbtxt are read afresh on each call. A version's files are fetched into
 * {@code cacheDir/<model>/<version>/} when {@link RepositoryModel#versionDirectory} is first asked for
 * them: each object is downloaded into a temporary directory, checked against the listing's size and,
 * when the ETag is a plain MD5 (single-part upload), against its MD5; the complete directory is then
 * moved into place with ATOMIC_MOVE. A cached copy whose recorded ETags still match the bucket is reused.
 *
 * <p>Every S3 call is retried with exponential backoff and jitter on retryable failures (endpoint
 * unreachable, 5xx, throttling). Errors are {@link InferenceException}s: NOT_FOUND for a missing
 * bucket or model, FAILED_PRECONDITION for denied access (naming the bucket), UNAVAILABLE when the
 * endpoint cannot be reached. Thread-safe; concurrent fetches of one version are serialized.
 */
public final class S3ModelRepository implements WritableModelRepository {
  private static final Logger log = LoggerFactory.getLogger(S3ModelRepository.class);
  private static final Pattern PLAIN_MD5_ETAG = Pattern.compile("\"?[0-9a-fA-F]{32}\"?");
  /** Records which objects (key, size, ETag) a cached version was fetched from. */
  static final String CACHE_RECORD = ".quiver-s3-source";
  /** Objects per version (bounds a listing a hostile or broken bucket could make endless). */
  private static final int MAX_OBJECTS_PER_VERSION = 10_000;

  private final S3Client client;
  private final boolean ownsClient;
  private final S3Location location;
  private final Path cacheDir;
  private final Map<String, Object> fetchLocks = new ConcurrentHashMap<>();
  private final ParsedConfigs parsed = new ParsedConfigs();
  private final S3Objects objects;

  /** Builds its own client from the options; {@link #close()} closes it. */
  public static S3ModelRepository create(S3RepositoryOptions options) {
    return new S3ModelRepository(buildClient(options), true, options);
  }

  /**
   * Uses the caller's client (which the caller closes). Build it with request checksum calculation
   * and response checksum validation WHEN_REQUIRED for S3-compatible servers that reject the SDK's
   * trailing checksums.
   */
  public static S3ModelRepository create(S3Client client, S3RepositoryOptions options) {
    return new S3ModelRepository(client, false, options);
  }

  private S3ModelRepository(S3Client client, boolean ownsClient, S3RepositoryOptions options) {
    this.client = client;
    this.ownsClient = ownsClient;
    this.location = S3Location.parse(options.url());
    this.cacheDir = options.cacheDir().toAbsolutePath().normalize();
    this.objects = new S3Objects(client, options);
    try {
      Files.createDirectories(cacheDir);
    } catch (IOException e) {
      throw InferenceException.internal("cannot create the S3 cache directory " + cacheDir + ": " + e, e);
    }
  }

  /** The client the options describe: our own retries (the SDK's are off), checksums only when required. */
  public static S3Client buildClient(S3RepositoryOptions options) {
    S3ClientBuilder builder = S3Client.builder()
        .httpClientBuilder(UrlConnectionHttpClient.builder()
            .connectionTimeout(options.timeout())
            .socketTimeout(options.timeout()))
        .region(Region.of(options.region() == null ? S3RepositoryOptions.DEFAULT_REGION : options.region()))
        .forcePathStyle(options.pathStyle())
        // Many S3-compatible servers reject the SDK's default trailing CRC checksums; we verify MD5 ourselves.
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
        .overrideConfiguration(c -> c.retryStrategy(AwsRetryStrategy.doNotRetry()))
        .credentialsProvider(credentials(options));
    if (options.endpoint() != null) {
      builder.endpointOverride(options.endpoint());
    }
    return builder.build();
  }

  private static AwsCredentialsProvider credentials(S3RepositoryOptions options) {
    if (options.accessKeyId() != null) {
      return StaticCredentialsProvider.create(AwsBasicCredentials.create(options.accessKeyId(), options.secretAccessKey()));
    }
    return DefaultCredentialsProvider.builder().build();
  }

  public S3Location s3Location() {
    return location;
  }

  public Path cacheDir() {
    return cacheDir;
  }

  @Override
  public String location() {
    return location.toString();
  }

  @Override
  public List<String> modelNames() {
    List<String> names = new ArrayList<>();
    for (ListObjectsV2Response page : listAll(location.prefix(), "/", "list models")) {
      for (CommonPrefix p : page.commonPrefixes()) {
        String name = p.prefix().substring(location.prefix().length(), p.prefix().length() - 1);
        if (name.isEmpty() || name.startsWith(".")) {
          continue;
        }
        String problem = ModelNames.problem(name);
        if (problem != null) {
          log.warn("ignoring prefix {} in {}: {}", ModelNames.printable(name), location, problem);
          continue;
        }
        names.add(name);
      }
    }
    Collections.sort(names);
    return names;
  }

  @Override
  public RepositoryModel model(String name) {
    ModelNames.requireValid(name);
    String modelPrefix = location.prefix() + name + "/";
    TreeSet<Long> versions = new TreeSet<>();
    S3Object configObject = null;
    boolean any = false;
    for (ListObjectsV2Response page : listAll(modelPrefix, "/", "list model '" + name + "'")) {
      for (CommonPrefix p : page.commonPrefixes()) {
        any = true;
        long v = LocalModelRepository.parseVersion(p.prefix().substring(modelPrefix.length(), p.prefix().length() - 1));
        if (v >= 0) {
          versions.add(v);
        }
      }
      for (S3Object o : page.contents()) {
        any = true;
        if (o.key().equals(modelPrefix + ModelConfigParser.CONFIG_FILENAME)) {
          configObject = o;
        }
      }
    }
    if (!any) {
      parsed.forget(name);
      throw InferenceException.notFound("model '%s' is not in repository %s", name, location);
    }
    ModelConfig declared;
    if (configObject != null) {
      if (configObject.size() > ModelConfigParser.MAX_CONFIG_BYTES) {
        throw InferenceException.invalidArgument("%s%s is %d bytes; at most %d are accepted", location, configObject.key()
            .substring(location.prefix().length()), configObject.size(), ModelConfigParser.MAX_CONFIG_BYTES);
      }
      String key = configObject.key();
      byte[] bytes = withRetries("read " + url(key), () -> client.getObjectAsBytes(
          GetObjectRequest.builder().bucket(location.bucket()).key(key).build()).asByteArray());
      declared = parsed.parse(name, new String(bytes, StandardCharsets.UTF_8), url(key));
    } else {
      parsed.forget(name);
      declared = ModelConfig.newBuilder().setName(name).build();
    }
    return new ModelSnapshot(name, declared, configObject != null, versions, location.toString(), this::fetchVersion);
  }

  // ---------------------------------------------------------------------------------------------
  // Fetching a version into the cache

  private Path fetchVersion(String model, long version) {
    String versionPrefix = location.prefix() + model + "/" + version + "/";
    Path target = cacheDir.resolve(model).resolve(Long.toString(version));
    Object lock = fetchLocks.computeIfAbsent(model + "/" + version, k -> new Object());
    synchronized (lock) {
      TreeMap<String, S3Object> objects = new TreeMap<>();
      for (ListObjectsV2Response page : listAll(versionPrefix, null, "list " + url(versionPrefix))) {
        for (S3Object o : page.contents()) {
          if (o.key().endsWith("/")) {
            continue; // a directory marker some stores list
          }
          String relative = o.key().substring(versionPrefix.length());
          if (!isSafeRelativePath(relative)) {
            throw InferenceException.invalidArgument("object %s has a name that would leave the version directory",
                url(o.key()));
          }
          objects.put(relative, o);
          if (objects.size() > MAX_OBJECTS_PER_VERSION) {
            throw InferenceException.invalidArgument("%s holds more than %d objects", url(versionPrefix),
                MAX_OBJECTS_PER_VERSION);
          }
        }
      }
      if (objects.isEmpty()) {
        throw InferenceException.notFound("model '%s' has no version %d in %s", model, version, location);
      }
      String record = sourceRecord(objects);
      if (Files.isDirectory(target) && record.equals(readQuietly(target.resolve(CACHE_RECORD)))) {
        log.debug("model '{}' version {}: cached copy in {} is current", model, version, target);
        return target;
      }
      long t0 = System.nanoTime();
      Path temp = cacheDir.resolve(model).resolve(".fetch-" + version + "-" + UUID.randomUUID());
      Path old = null;
      try {
        Files.createDirectories(temp);
        long bytes = 0;
        for (Map.Entry<String, S3Object> e : objects.entrySet()) {
          bytes += download(e.getValue(), temp.resolve(e.getKey()));
        }
        Files.writeString(temp.resolve(CACHE_RECORD), record);
        if (Files.exists(target)) {
          old = cacheDir.resolve(model).resolve(".old-" + version + "-" + UUID.randomUUID());
          Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
        log.info("fetched model '{}' version {} from {}: {} object(s), {} bytes in {} ms", model, version,
            url(versionPrefix), objects.size(), bytes, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        return target;
      } catch (IOException e) {
        throw InferenceException.internal("cannot write model '" + model + "' version " + version + " into the cache "
            + cacheDir + ": " + e, e);
      } finally {
        LocalModelRepository.deleteTree(temp);
        LocalModelRepository.deleteTree(old); // files a loaded session still has open stay readable until closed
      }
    }
  }

  /** Downloads one object to {@code dest}, verifying size and (for plain-MD5 ETags) the MD5. Returns the bytes written. */
  private long download(S3Object object, Path dest) throws IOException {
    Files.createDirectories(dest.getParent());
    String what = url(object.key());
    return withRetries("download " + what, () -> {
      MessageDigest md5 = md5();
      try (ResponseInputStream<GetObjectResponse> in = client.getObject(
              GetObjectRequest.builder().bucket(location.bucket()).key(object.key()).build());
          InputStream digesting = new DigestInputStream(in, md5);
          OutputStream out = Files.newOutputStream(dest)) {
        long n = digesting.transferTo(out);
        if (n != object.size()) {
          throw InferenceException.unavailable("%s: downloaded %d bytes but the listing says %d", what, n, object.size());
        }
        String etag = object.eTag();
        if (etag != null && PLAIN_MD5_ETAG.matcher(etag).matches()) {
          String expected = etag.replace("\"", "").toLowerCase(Locale.ROOT);
          String actual = HexFormat.of().formatHex(md5.digest());
          if (!expected.equals(actual)) {
            throw InferenceException.unavailable("%s: MD5 %s does not match its ETag %s", what, actual, expected);
          }
        }
        return n;
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  private static String sourceRecord(TreeMap<String, S3Object> objects) {
    StringBuilder sb = new StringBuilder();
    for (Map.Entry<String, S3Object> e : objects.entrySet()) {
      sb.append(e.getKey()).append('\t').append(e.getValue().size()).append('\t').append(e.getValue().eTag()).append('\n');
    }
    return sb.toString();
  }

  private static String readQuietly(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return null;
    }
  }

  static boolean isSafeRelativePath(String relative) {
    if (relative.isEmpty() || relative.startsWith("/") || relative.contains("\\")) {
      return false;
    }
    for (String segment : relative.split("/", -1)) {
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..") || segment.equals(CACHE_RECORD)) {
        return false;
      }
      for (int i = 0; i < segment.length(); i++) {
        if (Character.isISOControl(segment.charAt(i))) {
          return false;
        }
      }
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Writing (uploads through the control plane, the desired-state manifest)

  /**
   * Uploads the staged files under {@code <model>/<version>/}, model files first and config.pbtxt
   * (when given) last. S3 has no atomic directory rename: a poller may list a version while its upload
   * is still under way; a load of such a half-written version fails and leaves the serving version in
   * place, and the next poll retries it.
   */
  @Override
  public void putVersion(String model, long version, Path stagedDir, String configText) {
    ModelNames.requireValid(model);
    if (version < 0) {
      throw InferenceException.invalidArgument("version must be >= 0; was %d", version);
    }
    String versionPrefix = location.prefix() + model + "/" + version + "/";
    ListObjectsV2Response existing = withRetries("list " + url(versionPrefix), () -> client.listObjectsV2(
        ListObjectsV2Request.builder().bucket(location.bucket()).prefix(versionPrefix).maxKeys(1).build()));
    if (!existing.contents().isEmpty()) {
      throw new InferenceException(ErrorCode.ALREADY_EXISTS,
          "model '" + model + "' version " + version + " already exists in " + location);
    }
    List<Path> files;
    try (Stream<Path> walk = Files.walk(stagedDir)) {
      files = walk.filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw InferenceException.internal("cannot read staged upload " + stagedDir + ": " + e, e);
    }
    for (Path file : files) {
      String relative = stagedDir.relativize(file).toString().replace('\\', '/');
      String key = versionPrefix + relative;
      withRetries("upload " + url(key), () -> client.putObject(b -> b.bucket(location.bucket()).key(key),
          RequestBody.fromFile(file)));
    }
    if (configText != null) {
      String key = location.prefix() + model + "/" + ModelConfigParser.CONFIG_FILENAME;
      withRetries("upload " + url(key), () -> client.putObject(b -> b.bucket(location.bucket()).key(key),
          RequestBody.fromString(configText, StandardCharsets.UTF_8)));
    }
    log.info("uploaded model '{}' version {} to {}: {} file(s)", model, version, url(versionPrefix), files.size());
  }

  /**
   * Deletes every object under {@code <model>/<version>/}. S3 has no atomic rename: a reader listing
   * the version meanwhile may see part of it, load it, fail, and see it gone at its next listing.
   */
  @Override
  public void removeVersion(String model, long version) {
    ModelNames.requireValid(model);
    String versionPrefix = location.prefix() + model + "/" + version + "/";
    int removed = 0;
    for (ListObjectsV2Response page : listAll(versionPrefix, null, "list " + url(versionPrefix))) {
      for (S3Object o : page.contents()) {
        String key = o.key();
        withRetries("delete " + url(key), () -> client.deleteObject(b -> b.bucket(location.bucket()).key(key)));
        removed++;
      }
    }
    LocalModelRepository.deleteTree(cacheDir.resolve(model).resolve(Long.toString(version)));
    log.info("removed model '{}' version {} from {}: {} object(s)", model, version, url(versionPrefix), removed);
  }

  @Override
  public String readConfigText(String model) {
    ModelNames.requireValid(model);
    String key = location.prefix() + model + "/" + ModelConfigParser.CONFIG_FILENAME;
    return withRetries("read " + url(key), () -> {
      try {
        return client.getObjectAsBytes(GetObjectRequest.builder().bucket(location.bucket()).key(key).build())
            .asString(StandardCharsets.UTF_8);
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

  @Override
  public void writeConfigText(String model, String text) {
    ModelNames.requireValid(model);
    String key = location.prefix() + model + "/" + ModelConfigParser.CONFIG_FILENAME;
    if (text == null) {
      withRetries("delete " + url(key), () -> client.deleteObject(b -> b.bucket(location.bucket()).key(key)));
    } else {
      withRetries("write " + url(key), () -> client.putObject(b -> b.bucket(location.bucket()).key(key),
          RequestBody.fromString(text, StandardCharsets.UTF_8)));
    }
  }

  /** A GET conditional on the ETag: an unchanged manifest costs one 304 and no body. */
  @Override
  public StoredObject readDesiredState(String knownTag) {
    String key = location.prefix() + DESIRED_STATE_NAME;
    return withRetries("read " + url(key), () -> {
      GetObjectRequest.Builder request = GetObjectRequest.builder().bucket(location.bucket()).key(key);
      if (knownTag != null && !knownTag.equals("absent")) {
        request.ifNoneMatch(knownTag);
      }
      try {
        var response = client.getObjectAsBytes(request.build());
        String tag = response.response().eTag();
        if (tag != null && tag.equals(knownTag)) {
          return null; // a store that ignores If-None-Match
        }
        return new StoredObject(response.asByteArray(), tag);
      } catch (NoSuchKeyException e) {
        return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
      } catch (S3Exception e) {
        if (e.statusCode() == 304) {
          return null;
        }
        if (e.statusCode() == 404 && !isNoSuchBucket(e)) {
          return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
        }
        throw e;
      }
    });
  }

  @Override
  public void writeDesiredState(byte[] contents) {
    String key = location.prefix() + DESIRED_STATE_NAME;
    // A single PUT replaces an object atomically: readers get the old or the new bytes.
    withRetries("write " + url(key), () -> client.putObject(b -> b.bucket(location.bucket()).key(key),
        RequestBody.fromBytes(contents)));
  }

  @Override
  public StoredObject readState(String name) {
    String key = location.prefix() + WritableModelRepository.checkStateName(name);
    return withRetries("read " + url(key), () -> {
      try {
        var response = client.getObjectAsBytes(GetObjectRequest.builder().bucket(location.bucket()).key(key).build());
        return new StoredObject(response.asByteArray(), response.response().eTag());
      } catch (NoSuchKeyException e) {
        return new StoredObject(null, "absent");
      } catch (S3Exception e) {
        if (e.statusCode() == 404 && !isNoSuchBucket(e)) {
          return new StoredObject(null, "absent");
        }
        throw e;
      }
    });
  }

  /** A single PUT replaces an object atomically. */
  @Override
  public void writeState(String name, byte[] contents) {
    objects.put(location.bucket(), location.prefix() + WritableModelRepository.checkStateName(name), contents);
  }

  @Override
  public List<String> listState(String prefix) {
    String dirName = prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
    String keyPrefix = location.prefix() + WritableModelRepository.checkStateName(dirName) + "/";
    List<String> names = new ArrayList<>();
    for (S3Object o : objects.list(location.bucket(), keyPrefix, "/", 100_000)) {
      names.add(o.key().substring(location.prefix().length()));
    }
    Collections.sort(names);
    return names;
  }

  /** A GET conditional on the ETag, as for the desired state; the body is read only when it fits the limit. */
  @Override
  public StoredObject readVersionAttachment(String model, long version, String name, String knownTag) {
    String key = location.prefix() + model + "/" + WritableModelRepository.attachmentPath(model, version, name);
    return withRetries("read " + url(key), () -> {
      GetObjectRequest.Builder request = GetObjectRequest.builder().bucket(location.bucket()).key(key);
      if (knownTag != null && !knownTag.equals("absent")) {
        request.ifNoneMatch(knownTag);
      }
      try (ResponseInputStream<GetObjectResponse> in = client.getObject(request.build())) {
        String tag = in.response().eTag();
        if (tag != null && tag.equals(knownTag)) {
          return null; // a store that ignores If-None-Match
        }
        Long length = in.response().contentLength();
        if (length != null && length > MAX_ATTACHMENT_BYTES) {
          throw InferenceException.failedPrecondition("%s is %d bytes; at most %d are read", url(key), length,
              MAX_ATTACHMENT_BYTES);
        }
        byte[] bytes = in.readNBytes(MAX_ATTACHMENT_BYTES + 1);
        if (bytes.length > MAX_ATTACHMENT_BYTES) {
          throw InferenceException.failedPrecondition("%s is over %d bytes", url(key), MAX_ATTACHMENT_BYTES);
        }
        return new StoredObject(bytes, tag);
      } catch (NoSuchKeyException e) {
        return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
      } catch (S3Exception e) {
        if (e.statusCode() == 304) {
          return null;
        }
        if (e.statusCode() == 404 && !isNoSuchBucket(e)) {
          return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
        }
        throw e;
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  @Override
  public void writeVersionAttachment(String model, long version, String name, byte[] contents) {
    String key = location.prefix() + model + "/" + WritableModelRepository.attachmentPath(model, version, name);
    if (contents.length > MAX_ATTACHMENT_BYTES) {
      throw InferenceException.invalidArgument("attachment '%s' is %d bytes; at most %d are stored", name,
          contents.length, MAX_ATTACHMENT_BYTES);
    }
    // A single PUT replaces an object atomically.
    withRetries("write " + url(key), () -> client.putObject(b -> b.bucket(location.bucket()).key(key),
        RequestBody.fromBytes(contents)));
  }

  // ---------------------------------------------------------------------------------------------
  // Retries and error translation

  private List<ListObjectsV2Response> listAll(String prefix, String delimiter, String what) {
    return objects.listPages(location.bucket(), prefix, delimiter, what);
  }

  /** Runs an S3 call with the retries and error translation of {@link S3Objects}. */
  <T> T withRetries(String what, Supplier<T> call) {
    return objects.withRetries(location.bucket(), what, call);
  }

  private static boolean isNoSuchBucket(S3Exception e) {
    return S3Objects.isNoSuchBucket(e);
  }

  /** The object calls of this repository's client, with its retry settings. */
  public S3Objects objects() {
    return objects;
  }

  private String url(String key) {
    return "s3://" + location.bucket() + "/" + key;
  }

  private static MessageDigest md5() {
    try {
      return MessageDigest.getInstance("MD5");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no MD5", e);
    }
  }

  @Override
  public void close() {
    if (ownsClient) {
      client.close();
    }
  }

  @Override
  public String toString() {
    return "S3ModelRepository[" + location + " cache=" + cacheDir + "]";
  }

}
