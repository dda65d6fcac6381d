package io.quiver.cache;

/**
 * The server's one response cache, local or shared (docs/cache.md). Built once from the
 * {@link CacheOptions} by {@link #open}; models with {@code response_cache { enable: true }} use it
 * through their {@link CachingScheduler}. Thread-safe; {@link #close()} is idempotent.
 */
public abstract sealed class ResponseCache implements AutoCloseable permits LocalResponseCache, RedisResponseCache {
  private final CacheOptions options;
  final CacheMetrics metrics;

  ResponseCache(CacheOptions options, CacheMetrics metrics) {
    this.options = options;
    this.metrics = metrics;
  }

  /** Opens the cache the options describe; a Redis cache connects in the background (and serves without it meanwhile). */
  public static ResponseCache open(CacheOptions options, CacheMetrics metrics) {
    return switch (options.kind()) {
      case LOCAL -> new LocalResponseCache(options, metrics);
      case REDIS -> new RedisResponseCache(options, metrics);
    };
  }

  public CacheOptions options() {
    return options;
  }

  /** "local" or "redis", for metrics and logs. */
  public abstract String kind();

  /** Entries held now (-1 when the cache cannot tell: Redis). */
  public abstract long entries();

  /** Bytes the entries are charged now, data plus bookkeeping (-1 when the cache cannot tell). */
  public abstract long bytes();

  /** Entries evicted to stay within the bound, since start (-1 when the cache cannot tell). */
  public abstract long evictions();

  /** Drops every entry of one loaded version (it unloaded). */
  abstract void invalidate(Object owner);

  @Override
  public abstract void close();

  @Override
  public String toString() {
    return options.toString();
  }
}
