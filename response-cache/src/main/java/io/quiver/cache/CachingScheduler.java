package io.quiver.cache;

import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelHandle;
import io.quiver.core.spi.ModelRouter;
import io.quiver.core.spi.SchedulerDecorator;
import io.quiver.core.spi.TransportExecutor;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelEnsembling;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiConsumer;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The response cache in front of one loaded version's scheduler ({@code response_cache { enable: true }}).
 *
 * <p><b>Local cache.</b> {@link #submit} hashes the request ({@link RequestDigest}) and looks it up on
 * the calling thread: a hit is answered right there, inside {@code submit}, on the event loop that read
 * the request, without touching the batcher; the answer goes through the same callback, and so the same
 * encoders, as a computed one, so its bytes are the same. A miss goes to the wrapped scheduler as a
 * request of its own, whose answer is given to the caller first and then copied once into the cache.
 *
 * <p><b>Redis.</b> The lookup is asynchronous: the request is accepted at once, and answered when Redis
 * replies (a hit, delivered on the request's transport thread) or sent to the wrapped scheduler (a miss,
 * an error, or no reply within the timeout: whichever comes first wins, the other is ignored). Without a
 * connection the request goes straight to the scheduler. Refusals by the scheduler after a Redis lookup
 * reach the caller through the callback rather than as an exception from {@code submit}.
 *
 * <p><b>Ensembles.</b> An ensemble's answer also depends on the versions its steps route to; for an
 * ensemble the key also holds the version each step model (and each step of a nested ensemble) routes
 * this request to now, so a hot swap of a step model never serves the old step's answers.
 *
 * <p>Statistics: Triton's {@code cache_hit} (count and lookup time; hits also count as successes) and
 * {@code cache_miss} (count, lookup plus insertion time) in the version's {@link InferenceStats}.
 * Thread-safe; {@link #close()} closes the wrapped scheduler and drops the version's local entries.
 */
public final class CachingScheduler implements InferenceScheduler, SchedulerDecorator {
  private static final Logger log = LoggerFactory.getLogger(CachingScheduler.class);
  /** How deep the key follows ensembles of ensembles for their step versions. */
  private static final int MAX_NESTING = 8;

  private final InferenceScheduler inner;
  private final ResponseCache cache;
  private final LocalResponseCache local; // null for Redis
  private final RedisResponseCache redis; // null for local
  private final RequestDigest digests;
  private final String model;
  private final String versionLabel;
  private final ModelSignature signature;
  private final ModelConfig config;
  private final ModelRouter router; // for ensembles' step versions; null when the model is no ensemble
  private final long maxEntryBytes;

  CachingScheduler(InferenceScheduler inner, ResponseCache cache, String model, long version, ModelConfig config,
      ModelSignature signature, ModelRouter router) {
    this.inner = inner;
    this.cache = cache;
    this.local = cache instanceof LocalResponseCache l ? l : null;
    this.redis = cache instanceof RedisResponseCache r ? r : null;
    this.model = model;
    this.versionLabel = Long.toString(version);
    this.signature = signature;
    this.config = config;
    this.router = config.hasEnsembleScheduling() ? router : null;
    this.digests = new RequestDigest(model, version, config);
    this.maxEntryBytes = cache.options().maxEntryBytes();
  }

  @Override
  public InferenceScheduler inner() {
    return inner;
  }

  @Override
  public void submit(InferRequest request) {
    long start = System.nanoTime();
    byte[] digest = digest(request);
    if (digest == null) {
      inner.submit(request); // a step model of the ensemble is not routable: the ensemble reports it
      return;
    }
    if (local != null) {
      CacheKey key = new CacheKey(this, digest);
      CachedAnswer hit = local.get(key);
      long lookup = System.nanoTime() - start;
      if (hit != null) {
        answerHit(request, hit, start, lookup);
        return;
      }
      cache.metrics.miss(lookup);
      inner.submit(forwarded(request, new StoreOnAnswer(request, key, null, lookup)));
      return;
    }
    if (!redis.available()) {
      cache.metrics.redisError(CacheMetrics.RedisError.UNAVAILABLE);
      inner.submit(request);
      return;
    }
    RedisLookup lookup = new RedisLookup(request, redis.key(model, versionLabel, digest), start);
    TransportExecutor transport = request.transport();
    if (transport != null) {
      transport.schedule(lookup, redis.timeoutNanos());
    } else {
      redis.background().schedule(lookup, redis.timeoutNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
    }
    redis.get(lookup.key).whenComplete(lookup);
  }

  /** The request's key digest, or null when an ensemble's step model cannot be routed now. */
  private byte[] digest(InferRequest request) {
    RequestDigest.Hasher hasher = digests.begin();
    if (router != null && !stepVersions(config, request.id(), hasher, 0)) {
      return null;
    }
    return hasher.request(request).finish();
  }

  /** Feeds the version each step model of an ensemble routes this request to (and so on into nested ensembles). */
  private boolean stepVersions(ModelConfig ensemble, String requestId, RequestDigest.Hasher hasher, int depth) {
    if (depth > MAX_NESTING) {
      return false;
    }
    for (ModelEnsembling.Step step : ensemble.getEnsembleScheduling().getStepList()) {
      ModelHandle handle;
      try {
        handle = router.acquire(step.getModelName(),
            step.getModelVersion() < 0 ? "" : Long.toString(step.getModelVersion()), requestId);
      } catch (InferenceException e) {
        return false;
      }
      try {
        hasher.putLong(handle.version());
        if (handle.config().hasEnsembleScheduling() && !stepVersions(handle.config(), requestId, hasher, depth + 1)) {
          return false;
        }
      } finally {
        handle.release();
      }
    }
    return true;
  }

  private void answerHit(InferRequest request, CachedAnswer hit, long start, long lookupNanos) {
    cache.metrics.hit(lookupNanos);
    request.setEnqueueNanos(start);
    request.recordTimings(0, 0, 0, 0, 0);
    inner.stats().recordCacheHit(lookupNanos, System.nanoTime() - start);
    TransportExecutor transport = request.transport();
    if (transport == null || transport.inTransportThread()) {
      deliverHit(request, hit);
      return;
    }
    try {
      transport.execute(() -> deliverHit(request, hit));
    } catch (RejectedExecutionException e) {
      log.debug("model '{}': cache hit for request '{}' not delivered, its transport has shut down", model, request.id());
    }
  }

  private void deliverHit(InferRequest request, CachedAnswer hit) {
    try {
      request.callback().onSuccess(request, hit.outputs());
    } catch (RuntimeException e) {
      log.warn("model '{}': the answer callback of request '{}' failed", model, request.id(), e);
    }
  }

  /** A request of its own for the wrapped scheduler, answered through {@code callback} and cancelled with the original. */
  private static InferRequest forwarded(InferRequest request, StoreOnAnswer callback) {
    return new InferRequest(request.modelName(), request.modelVersion(), request.id(), request.inputs(),
        request.outputIndices(), request.batchSize(), request.priority(), request.timeoutMicros(),
        request.deadlineNanos(), callback, request.transport()).cancelledWith(callback);
  }

  /**
   * Whether a decoded Redis entry answers this request: the outputs it asked for, by name and datatype,
   * in order (a defence against foreign or stale values; the key already makes a mismatch unlikely).
   */
  private boolean fits(CachedAnswer answer, InferRequest request) {
    int[] indices = request.outputIndices();
    Tensor[] outputs = answer.outputs();
    if (outputs.length != indices.length) {
      return false;
    }
    for (int i = 0; i < indices.length; i++) {
      var spec = signature.outputs().get(indices[i]);
      if (!outputs[i].name().equals(spec.name()) || outputs[i].dataType() != spec.dataType()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Early admission never refuses here: a request may be answered from the cache however full the model's
   * queue is, so only {@link #submit} (after the lookup) may refuse it.
   */
  @Override
  public long admit(int priority) {
    return 0;
  }

  @Override
  public int queuedRequests() {
    return inner.queuedRequests();
  }

  @Override
  public int inFlightRequests() {
    return inner.inFlightRequests();
  }

  @Override
  public InferenceStats stats() {
    return inner.stats();
  }

  /** Closes the wrapped scheduler, then drops this version's entries from the local cache. */
  @Override
  public void close() {
    try {
      inner.close();
    } finally {
      cache.invalidate(this);
    }
  }

  /**
   * The callback of a miss sent to the wrapped scheduler: answers the original request, then keeps a
   * copy of the answer (its outputs are valid only during this call) and records the miss.
   */
  private final class StoreOnAnswer implements InferCallback, BooleanSupplier {
    private final InferRequest original;
    private final CacheKey localKey;
    private final byte[] redisKey;
    private final long lookupNanos;

    StoreOnAnswer(InferRequest original, CacheKey localKey, byte[] redisKey, long lookupNanos) {
      this.original = original;
      this.localKey = localKey;
      this.redisKey = redisKey;
      this.lookupNanos = lookupNanos;
    }

    @Override
    public boolean getAsBoolean() {
      return original.isCancelled();
    }

    @Override
    public void onSuccess(InferRequest forwarded, Tensor[] outputs) {
      original.setEnqueueNanos(forwarded.enqueueNanos());
      original.recordTimings(forwarded.queueNanos(), forwarded.computeInputNanos(), forwarded.computeInferNanos(),
          forwarded.computeOutputNanos(), forwarded.executedBatchRows());
      try {
        original.callback().onSuccess(original, outputs);
      } finally {
        long t0 = System.nanoTime();
        CachedAnswer answer = CachedAnswer.copyOf(outputs, maxEntryBytes);
        if (answer != null) {
          if (local != null) {
            local.put(localKey, answer);
          } else if (redisKey != null) {
            redis.put(redisKey, answer);
          }
        }
        inner.stats().recordCacheMiss(lookupNanos + (System.nanoTime() - t0));
      }
    }

    @Override
    public void onFailure(InferRequest forwarded, InferenceException error) {
      inner.stats().recordCacheMiss(lookupNanos);
      original.callback().onFailure(original, error);
    }
  }

  /**
   * One Redis lookup racing its timeout: the first of the reply ({@link #accept}, on Lettuce's I/O
   * thread, or at once when the command is refused) and the timer ({@link #run}, on the request's
   * transport thread) settles the request; the other does nothing.
   */
  private final class RedisLookup implements BiConsumer<byte[], Throwable>, Runnable {
    private final InferRequest request;
    final byte[] key;
    private final long start;
    private final AtomicBoolean settled = new AtomicBoolean();

    RedisLookup(InferRequest request, byte[] key, long start) {
      this.request = request;
      this.key = key;
      this.start = start;
    }

    @Override
    public void accept(byte[] value, Throwable error) {
      if (!settled.compareAndSet(false, true)) {
        return;
      }
      long lookup = System.nanoTime() - start;
      if (error != null) {
        cache.metrics.redisError(CacheMetrics.RedisError.ERROR);
        log.debug("model '{}': Redis lookup failed, running the model: {}", model, error.toString());
        forward(lookup, false);
        return;
      }
      if (value != null) {
        CachedAnswer answer = null;
        try {
          answer = CachedAnswer.decode(value);
        } catch (IllegalArgumentException e) {
          log.debug("model '{}': Redis entry refused: {}", model, e.getMessage());
        }
        if (answer != null && fits(answer, request)) {
          answerHit(request, answer, start, lookup);
          return;
        }
        cache.metrics.redisError(CacheMetrics.RedisError.DECODE);
      } else {
        cache.metrics.miss(lookup);
      }
      forward(lookup, true);
    }

    /** The timeout: Redis did not answer in time, the request runs the model. */
    @Override
    public void run() {
      if (!settled.compareAndSet(false, true)) {
        return;
      }
      cache.metrics.redisError(CacheMetrics.RedisError.TIMEOUT);
      forward(System.nanoTime() - start, true);
    }

    /** Sends the request to the wrapped scheduler, from its transport thread; a refusal answers it. */
    private void forward(long lookupNanos, boolean store) {
      InferRequest forwarded = forwarded(request, new StoreOnAnswer(request, null, store ? key : null, lookupNanos));
      TransportExecutor transport = request.transport();
      if (transport == null || transport.inTransportThread()) {
        submitForwarded(forwarded);
        return;
      }
      try {
        transport.execute(() -> submitForwarded(forwarded));
      } catch (RejectedExecutionException e) {
        log.debug("model '{}': request '{}' dropped, its transport has shut down", model, request.id());
      }
    }

    private void submitForwarded(InferRequest forwarded) {
      try {
        inner.submit(forwarded);
      } catch (InferenceException e) {
        request.callback().onFailure(request, e);
      } catch (RuntimeException e) {
        request.callback().onFailure(request, InferenceException.internal("model '" + model + "': " + e, e));
      }
    }
  }
}
