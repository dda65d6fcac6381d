package io.quiver.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.util.concurrent.atomic.LongAdder;

/**
 * The in-process cache: Caffeine bounded by the total weight of its entries in bytes (data plus
 * bookkeeping, {@link CachedAnswer#weight()}), evicting by W-TinyLFU (frequency and recency, so a burst
 * of one-off requests does not flush the answers asked for again and again). Its maintenance runs on
 * the calling threads ({@code executor(Runnable::run)}): no thread of its own and no wake-ups.
 * Thread-safe.
 */
final class LocalResponseCache extends ResponseCache {
  private final Cache<CacheKey, CachedAnswer> cache;
  private final LongAdder evictions = new LongAdder();

  LocalResponseCache(CacheOptions options, CacheMetrics metrics) {
    super(options, metrics);
    this.cache = Caffeine.newBuilder()
        .maximumWeight(options.localSizeBytes())
        .weigher((CacheKey key, CachedAnswer answer) -> (int) Math.min(Integer.MAX_VALUE, answer.weight()))
        .executor(Runnable::run)
        .evictionListener((CacheKey key, CachedAnswer answer, com.github.benmanes.caffeine.cache.RemovalCause cause) -> {
          if (cause.wasEvicted()) {
            evictions.increment();
          }
        })
        .build();
  }

  @Override
  public String kind() {
    return "local";
  }

  CachedAnswer get(CacheKey key) {
    return cache.getIfPresent(key);
  }

  void put(CacheKey key, CachedAnswer answer) {
    cache.put(key, answer);
  }

  @Override
  void invalidate(Object owner) {
    cache.asMap().keySet().removeIf(key -> key.owner == owner);
  }

  @Override
  public long entries() {
    return cache.estimatedSize();
  }

  @Override
  public long bytes() {
    return cache.policy().eviction().map(e -> e.weightedSize().orElse(-1)).orElse(-1L);
  }

  @Override
  public long evictions() {
    return evictions.sum();
  }

  /** Runs pending maintenance (evictions) now; for tests. */
  void cleanUp() {
    cache.cleanUp();
  }

  @Override
  public void close() {
    cache.invalidateAll();
  }
}
