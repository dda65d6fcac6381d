package io.quiver.cache;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.DefaultClientResources;
import io.lettuce.core.resource.Delay;
import io.quiver.core.Timers;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cache every replica shares: entries in a Redis server, through one Lettuce connection (commands
 * pipelined on it; replies on Lettuce's own I/O thread). Keys are {@code <key_prefix><model>/<version>/}
 * and the request's SHA-256 in base64url; values are {@link CachedAnswer#encode encoded answers} with the
 * configured TTL.
 *
 * <p>Redis is never in the way of an inference: while there is no connection (not yet made, or lost),
 * lookups are skipped at once and counted ({@link CacheMetrics.RedisError#UNAVAILABLE}); commands are
 * refused rather than queued while disconnected; a lookup slower than the timeout lets the request run
 * the model; stores are fire-and-forget. The connection is made in the background at start and retried
 * every second until it succeeds; after that Lettuce reconnects by itself (backing off up to a second).
 *
 * <p>Thread-safe. One daemon thread ({@code quiver-cache-redis}) connects and times the lookups of
 * requests that have no transport thread.
 */
final class RedisResponseCache extends ResponseCache {
  private static final Logger log = LoggerFactory.getLogger(RedisResponseCache.class);
  private static final long CONNECT_RETRY_MILLIS = 1000;

  private final CacheOptions.Redis redis;
  private final ClientResources resources;
  private final RedisClient client;
  private final RedisURI uri;
  private final ScheduledThreadPoolExecutor background;
  private final byte[] prefix;
  private volatile StatefulRedisConnection<byte[], byte[]> connection;
  private volatile boolean closed;
  private volatile boolean warnedDown;

  RedisResponseCache(CacheOptions options, CacheMetrics metrics) {
    super(options, metrics);
    this.redis = options.redis();
    this.prefix = redis.keyPrefix().getBytes(StandardCharsets.UTF_8);
    // Started now: a thread started by its first user (an event loop) would keep that thread's CPU policy.
    this.background = Timers.startedNow("quiver-cache-redis");
    // Small: one connection's I/O needs one thread; the machine's cores belong to the event loops and models.
    this.resources = DefaultClientResources.builder()
        .ioThreadPoolSize(1)
        .computationThreadPoolSize(1)
        .reconnectDelay(Delay.exponential(Duration.ofMillis(20), Duration.ofSeconds(1), 2, TimeUnit.MILLISECONDS))
        .build();
    RedisURI.Builder builder = RedisURI.builder()
        .withHost(redis.host())
        .withPort(redis.port())
        .withDatabase(redis.database())
        .withSsl(redis.tls())
        .withTimeout(Duration.ofMillis(Math.max(redis.timeoutMillis(), redis.connectTimeoutMillis())));
    if (redis.password() != null) {
      if (redis.user() != null) {
        builder.withAuthentication(redis.user(), redis.password());
      } else {
        builder.withPassword(redis.password().toCharArray());
      }
    }
    this.uri = builder.build();
    this.client = RedisClient.create(resources);
    ClientOptions.Builder clientOptions = ClientOptions.builder()
        .autoReconnect(true)
        // While disconnected, refuse commands at once instead of buffering them: a lookup must never wait for Redis.
        .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
        .requestQueueSize(65_536) // commands in flight on the connection; beyond it they fail fast
        .socketOptions(SocketOptions.builder().connectTimeout(Duration.ofMillis(redis.connectTimeoutMillis())).build())
        // Lettuce's own command timeout is the backstop for stores; lookups time out earlier on their own.
        .timeoutOptions(TimeoutOptions.enabled(Duration.ofMillis(Math.max(1000, redis.timeoutMillis() * 10))));
    if (redis.tls()) {
      SslOptions.Builder ssl = SslOptions.builder().jdkSslProvider();
      if (redis.caCert() != null) {
        ssl.trustManager(redis.caCert().toFile());
      }
      if (redis.clientCert() != null) {
        ssl.keyManager(redis.clientCert().toFile(), redis.clientKey().toFile(), null);
      }
      clientOptions.sslOptions(ssl.build());
    }
    client.setOptions(clientOptions.build());
    background.execute(this::connect);
  }

  private void connect() {
    if (closed) {
      return;
    }
    try {
      StatefulRedisConnection<byte[], byte[]> c = client.connect(ByteArrayCodec.INSTANCE, uri);
      if (closed) {
        c.closeAsync();
        return;
      }
      connection = c;
      warnedDown = false;
      log.info("response cache: connected to {}", redis);
    } catch (RuntimeException e) {
      if (!warnedDown) {
        warnedDown = true;
        log.warn("response cache: cannot reach {} ({}); requests run their models until it answers; retrying every {} ms",
            redis, e.getMessage(), CONNECT_RETRY_MILLIS);
      }
      if (!closed) {
        background.schedule(this::connect, CONNECT_RETRY_MILLIS, TimeUnit.MILLISECONDS);
      }
    }
  }

  @Override
  public String kind() {
    return "redis";
  }

  /** Whether a lookup can be tried now (connected). Cheap: a volatile read and a state check. */
  boolean available() {
    StatefulRedisConnection<byte[], byte[]> c = connection;
    return c != null && c.isOpen();
  }

  long timeoutNanos() {
    return TimeUnit.MILLISECONDS.toNanos(redis.timeoutMillis());
  }

  ScheduledThreadPoolExecutor background() {
    return background;
  }

  /** The Redis key of an entry. */
  byte[] key(String model, String version, byte[] digest) {
    byte[] path = (model + "/" + version + "/").getBytes(StandardCharsets.UTF_8);
    byte[] id = java.util.Base64.getUrlEncoder().withoutPadding().encode(digest);
    byte[] key = new byte[prefix.length + path.length + id.length];
    System.arraycopy(prefix, 0, key, 0, prefix.length);
    System.arraycopy(path, 0, key, prefix.length, path.length);
    System.arraycopy(id, 0, key, prefix.length + path.length, id.length);
    return key;
  }

  /** Looks an entry up; the stage completes on Lettuce's I/O thread (or at once, when the command is refused). */
  CompletionStage<byte[]> get(byte[] key) {
    StatefulRedisConnection<byte[], byte[]> c = connection;
    if (c == null) {
      return CompletableFuture.failedFuture(new IllegalStateException("not connected"));
    }
    try {
      return c.async().get(key);
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /** Stores an entry with the TTL, without waiting; a failure is counted and logged at debug level. */
  void put(byte[] key, CachedAnswer answer) {
    StatefulRedisConnection<byte[], byte[]> c = connection;
    if (c == null || !c.isOpen()) {
      return;
    }
    try {
      SetArgs args = redis.ttlSeconds() > 0 ? SetArgs.Builder.ex(redis.ttlSeconds()) : new SetArgs();
      c.async().set(key, answer.encode(), args).whenComplete((ok, error) -> {
        if (error != null) {
          metrics.redisError(CacheMetrics.RedisError.ERROR);
          log.debug("response cache: storing an entry in Redis failed: {}", error.toString());
        }
      });
    } catch (RuntimeException e) {
      metrics.redisError(CacheMetrics.RedisError.ERROR);
    }
  }

  @Override
  void invalidate(Object owner) {
    // Shared entries are left to their TTL: other replicas may still serve this version, and a replica's
    // restart must not empty everyone's cache. A version's keys hold its number and config digest, so a
    // new version or a changed config never reads them (docs/cache.md).
  }

  @Override
  public long entries() {
    return -1;
  }

  @Override
  public long bytes() {
    return -1;
  }

  @Override
  public long evictions() {
    return -1;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    background.shutdownNow();
    StatefulRedisConnection<byte[], byte[]> c = connection;
    if (c != null) {
      c.close();
    }
    client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
    resources.shutdown(0, 2, TimeUnit.SECONDS);
  }
}
