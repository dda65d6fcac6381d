package io.quiver.cache;

/**
 * Where the response cache reports what happens on the request path (the server records Prometheus
 * metrics; docs/metrics.md). Called on transport threads and Redis's I/O thread: implementations must
 * be quick, must not block and should not allocate. Entry counts, bytes and evictions are read from
 * the cache itself at scrape time ({@link ResponseCache#entries()} and the like).
 */
public interface CacheMetrics {
  /** Records nothing. */
  CacheMetrics NONE = new CacheMetrics() {
    @Override
    public void hit(long lookupNanos) {}

    @Override
    public void miss(long lookupNanos) {}

    @Override
    public void redisError(RedisError kind) {}
  };

  /** Why a Redis lookup or store did not happen or did not succeed; the request ran the model instead. */
  enum RedisError {
    /** No connection (Redis down or unreachable): lookups are skipped until it is back. */
    UNAVAILABLE,
    /** The lookup took longer than the timeout. */
    TIMEOUT,
    /** Redis answered with an error, or the connection failed during the command. */
    ERROR,
    /** The stored value was not a well-formed answer for this request. */
    DECODE;

    /** The metric label. */
    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** A lookup found an answer after {@code lookupNanos}. */
  void hit(long lookupNanos);

  /** A lookup found nothing after {@code lookupNanos}; the request runs the model. */
  void miss(long lookupNanos);

  void redisError(RedisError kind);
}
