package io.quiver.cache;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The server-wide response cache, as {@code --cache-config} describes it in Triton's syntax: one or more
 * {@code <cache>,<key>=<value>[,<key>=<value>...]} arguments naming one cache, {@code local} or
 * {@code redis} (docs/cache.md lists every key). Immutable; {@link #parse} checks every key and value and
 * names the one at fault.
 *
 * @param kind which cache
 * @param localSizeBytes LOCAL: the bound on what the entries hold, in bytes
 * @param redis REDIS: where the server is and how entries are kept; null for LOCAL
 * @param maxEntryBytes largest answer cached (bigger ones are served but not kept)
 */
public record CacheOptions(Kind kind, long localSizeBytes, Redis redis, long maxEntryBytes) {
  public enum Kind { LOCAL, REDIS }

  /** Default bound of the local cache: 256 MiB. */
  public static final long DEFAULT_LOCAL_SIZE_BYTES = 256L << 20;
  /** Default largest entry: 16 MiB. */
  public static final long DEFAULT_MAX_ENTRY_BYTES = 16L << 20;

  /**
   * @param host Redis host
   * @param port Redis port
   * @param user ACL user (null = the default user)
   * @param password password (null = none); {@code $QUIVER_REDIS_PASSWORD} when not given on the command line
   * @param database logical database number
   * @param tls whether to connect with TLS
   * @param caCert PEM CA certificates that the server's certificate must chain to (TLS; null = the JDK's)
   * @param clientCert PEM client certificate for mutual TLS (null = none)
   * @param clientKey PEM PKCS#8 key of the client certificate
   * @param keyPrefix prepended to every key, so several deployments can share one Redis
   * @param ttlSeconds how long an entry lives (0 = until Redis evicts it)
   * @param timeoutMillis how long a lookup may take before the request runs the model instead
   * @param connectTimeoutMillis how long a connection attempt may take
   */
  public record Redis(String host, int port, String user, String password, int database, boolean tls, Path caCert,
      Path clientCert, Path clientKey, String keyPrefix, long ttlSeconds, long timeoutMillis, long connectTimeoutMillis) {
    public static final int DEFAULT_PORT = 6379;
    public static final String DEFAULT_KEY_PREFIX = "quiver:cache:";
    public static final long DEFAULT_TTL_SECONDS = 3600;
    public static final long DEFAULT_TIMEOUT_MILLIS = 20;
    public static final long DEFAULT_CONNECT_TIMEOUT_MILLIS = 1000;

    @Override
    public String toString() { // never prints the password
      return "redis " + (tls ? "rediss" : "redis") + "://" + host + ":" + port + "/" + database + " prefix '" + keyPrefix
          + "' ttl " + ttlSeconds + " s timeout " + timeoutMillis + " ms";
    }
  }

  private static final Set<String> LOCAL_KEYS = Set.of("size", "max_entry_bytes");
  private static final Set<String> REDIS_KEYS = Set.of("host", "port", "user", "password", "db", "tls_enabled",
      "ca_cert_path", "cert_path", "key_path", "key_prefix", "ttl_secs", "socket_timeout", "connect_timeout",
      "max_entry_bytes");

  /** A local cache of {@code sizeBytes}. */
  public static CacheOptions local(long sizeBytes) {
    return new CacheOptions(Kind.LOCAL, sizeBytes, null, Math.min(DEFAULT_MAX_ENTRY_BYTES, Math.max(1, sizeBytes / 16)));
  }

  /** A Redis cache at host:port with the defaults. */
  public static CacheOptions redis(String host, int port) {
    return new CacheOptions(Kind.REDIS, 0, new Redis(host, port, null, null, 0, false, null, null, null,
        Redis.DEFAULT_KEY_PREFIX, Redis.DEFAULT_TTL_SECONDS, Redis.DEFAULT_TIMEOUT_MILLIS,
        Redis.DEFAULT_CONNECT_TIMEOUT_MILLIS), DEFAULT_MAX_ENTRY_BYTES);
  }

  public CacheOptions withRedis(Redis newRedis) {
    return new CacheOptions(kind, localSizeBytes, newRedis, maxEntryBytes);
  }

  /**
   * Reads {@code --cache-config} arguments: {@code local,size=268435456} or
   * {@code redis,host=cache.svc,port=6379,ttl_secs=600} (repeating the cache name per argument, as
   * Triton does, also works: {@code redis,host=a redis,port=1}).
   *
   * @return null when {@code specs} is empty (no cache)
   * @throws IllegalArgumentException naming the argument, key or value at fault
   */
  public static CacheOptions parse(List<String> specs) {
    if (specs == null || specs.isEmpty()) {
      return null;
    }
    String kind = null;
    Map<String, String> values = new LinkedHashMap<>();
    for (String spec : specs) {
      String[] parts = spec.split(",");
      String name = parts[0].trim().toLowerCase(Locale.ROOT);
      if (!name.equals("local") && !name.equals("redis")) {
        throw new IllegalArgumentException("--cache-config '" + spec + "': the cache must be 'local' or 'redis'; was '"
            + parts[0] + "'");
      }
      if (kind != null && !kind.equals(name)) {
        throw new IllegalArgumentException("--cache-config names two caches, '" + kind + "' and '" + name
            + "'; the server has one");
      }
      kind = name;
      for (int i = 1; i < parts.length; i++) {
        String part = parts[i].trim();
        int eq = part.indexOf('=');
        if (eq <= 0) {
          throw new IllegalArgumentException("--cache-config '" + spec + "': '" + part + "' is not key=value");
        }
        String key = part.substring(0, eq).trim().toLowerCase(Locale.ROOT);
        Set<String> allowed = name.equals("local") ? LOCAL_KEYS : REDIS_KEYS;
        if (!allowed.contains(key)) {
          throw new IllegalArgumentException("--cache-config: '" + key + "' is not a key of the " + name + " cache; the keys are "
              + new java.util.TreeSet<>(allowed));
        }
        if (values.put(key, part.substring(eq + 1).trim()) != null) {
          throw new IllegalArgumentException("--cache-config: '" + key + "' is given twice");
        }
      }
    }
    if (kind.equals("local")) {
      long size = bytes(values, "size", DEFAULT_LOCAL_SIZE_BYTES, 1L << 20, 1L << 40);
      long maxEntry = bytes(values, "max_entry_bytes", Math.min(DEFAULT_MAX_ENTRY_BYTES, size / 16), 1, size);
      return new CacheOptions(Kind.LOCAL, size, null, maxEntry);
    }
    String host = values.getOrDefault("host", "localhost");
    if (host.isEmpty()) {
      throw new IllegalArgumentException("--cache-config redis: host must not be empty");
    }
    String password = values.get("password");
    if (password == null) {
      password = System.getenv("QUIVER_REDIS_PASSWORD");
    }
    boolean tls = bool(values, "tls_enabled");
    Path ca = path(values, "ca_cert_path");
    Path cert = path(values, "cert_path");
    Path key = path(values, "key_path");
    if ((cert == null) != (key == null)) {
      throw new IllegalArgumentException("--cache-config redis: cert_path and key_path go together");
    }
    if (!tls && (ca != null || cert != null)) {
      throw new IllegalArgumentException("--cache-config redis: ca_cert_path, cert_path and key_path need tls_enabled=true");
    }
    Redis redis = new Redis(host, (int) number(values, "port", Redis.DEFAULT_PORT, 1, 65535), values.get("user"),
        password, (int) number(values, "db", 0, 0, 1 << 16), tls, ca, cert, key,
        values.getOrDefault("key_prefix", Redis.DEFAULT_KEY_PREFIX),
        number(values, "ttl_secs", Redis.DEFAULT_TTL_SECONDS, 0, 365L * 24 * 3600),
        number(values, "socket_timeout", Redis.DEFAULT_TIMEOUT_MILLIS, 1, 60_000),
        number(values, "connect_timeout", Redis.DEFAULT_CONNECT_TIMEOUT_MILLIS, 1, 600_000));
    long maxEntry = bytes(values, "max_entry_bytes", DEFAULT_MAX_ENTRY_BYTES, 1, 512L << 20);
    return new CacheOptions(Kind.REDIS, 0, redis, maxEntry);
  }

  @Override
  public String toString() {
    return kind == Kind.LOCAL ? "local cache of " + localSizeBytes + " bytes (entries up to " + maxEntryBytes + ")"
        : redis + " (entries up to " + maxEntryBytes + " bytes)";
  }

  private static long number(Map<String, String> values, String key, long defaultValue, long min, long max) {
    String value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    long parsed;
    try {
      parsed = Long.parseLong(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--cache-config: " + key + " must be an integer; was '" + value + "'");
    }
    if (parsed < min || parsed > max) {
      throw new IllegalArgumentException("--cache-config: " + key + " must be between " + min + " and " + max + "; was " + parsed);
    }
    return parsed;
  }

  /** A byte count, plain or with a K/M/G suffix (powers of 1024). */
  private static long bytes(Map<String, String> values, String key, long defaultValue, long min, long max) {
    String value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    String digits = value.toUpperCase(Locale.ROOT);
    long unit = 1;
    if (digits.endsWith("K") || digits.endsWith("M") || digits.endsWith("G")) {
      unit = switch (digits.charAt(digits.length() - 1)) {
        case 'K' -> 1L << 10;
        case 'M' -> 1L << 20;
        default -> 1L << 30;
      };
      digits = digits.substring(0, digits.length() - 1);
    }
    long parsed;
    try {
      parsed = Math.multiplyExact(Long.parseLong(digits), unit);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new IllegalArgumentException("--cache-config: " + key + " must be a byte count (e.g. 268435456 or 256M); was '"
          + value + "'");
    }
    if (parsed < min || parsed > max) {
      throw new IllegalArgumentException("--cache-config: " + key + " must be between " + min + " and " + max
          + " bytes; was " + parsed);
    }
    return parsed;
  }

  private static boolean bool(Map<String, String> values, String key) {
    String value = values.get(key);
    if (value == null) {
      return false;
    }
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "true", "1", "on" -> true;
      case "false", "0", "off" -> false;
      default -> throw new IllegalArgumentException("--cache-config: " + key + " must be true or false; was '" + value + "'");
    };
  }

  private static Path path(Map<String, String> values, String key) {
    String value = values.get(key);
    return value == null || value.isEmpty() ? null : Path.of(value);
  }
}
