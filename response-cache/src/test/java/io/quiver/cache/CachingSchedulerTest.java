package io.quiver.cache;

import static org.assertj.core.api.Assertions.assertThat;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelResponseCache;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;

/** The cache in front of a scheduler that really computes (OUT = IN × 2), local and on a real Redis server. */
class CachingSchedulerTest {
  static final ModelSignature SIGNATURE = new ModelSignature(8,
      List.of(new TensorSpec("IN", DataType.FP32, new long[] {-1})),
      List.of(new TensorSpec("OUT", DataType.FP32, new long[] {-1}), new TensorSpec("NEG", DataType.FP32, new long[] {-1})));
  static final ModelConfig CONFIG = ModelConfig.newBuilder().setName("doubler")
      .setResponseCache(ModelResponseCache.newBuilder().setEnable(true)).build();

  /** Computes OUT = 2 × IN and NEG = −IN into fresh direct buffers, then scribbles over them (buffer reuse). */
  static final class Doubler implements InferenceScheduler {
    final AtomicInteger runs = new AtomicInteger();
    final InferenceStats stats = new InferenceStats(8);

    @Override
    public void submit(InferRequest request) {
      runs.incrementAndGet();
      Tensor in = request.inputs()[0];
      Tensor[] all = new Tensor[2];
      for (int o = 0; o < 2; o++) {
        ByteBuffer src = in.data();
        ByteBuffer out = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        while (src.hasRemaining()) {
          float x = src.getFloat();
          out.putFloat(o == 0 ? 2 * x : -x);
        }
        all[o] = new Tensor(o == 0 ? "OUT" : "NEG", DataType.FP32, in.shape(), out.flip());
      }
      Tensor[] asked = new Tensor[request.outputIndices().length];
      for (int i = 0; i < asked.length; i++) {
        asked[i] = all[request.outputIndices()[i]];
      }
      request.recordTimings(5, 1, 10, 1, request.batchSize());
      request.callback().onSuccess(request, asked);
      for (Tensor t : all) {
        ByteBuffer b = t.data();
        while (b.hasRemaining()) {
          b.put((byte) 0x7f);
        }
      }
    }

    @Override public int queuedRequests() { return 0; }
    @Override public int inFlightRequests() { return 0; }
    @Override public InferenceStats stats() { return stats; }
    @Override public void close() {}
  }

  static final class Answer implements InferCallback {
    final CompletableFuture<float[][]> outputs = new CompletableFuture<>();

    @Override
    public void onSuccess(InferRequest request, Tensor[] out) {
      float[][] values = new float[out.length][];
      for (int i = 0; i < out.length; i++) {
        ByteBuffer b = out[i].data();
        values[i] = new float[b.remaining() / 4];
        for (int j = 0; j < values[i].length; j++) {
          values[i][j] = b.getFloat();
        }
      }
      outputs.complete(values);
    }

    @Override
    public void onFailure(InferRequest request, InferenceException error) {
      outputs.completeExceptionally(error);
    }

    float[][] get() throws Exception {
      return outputs.get(10, TimeUnit.SECONDS);
    }
  }

  static final class CountingMetrics implements CacheMetrics {
    final LongAdder hits = new LongAdder();
    final LongAdder misses = new LongAdder();
    final LongAdder[] errors = {new LongAdder(), new LongAdder(), new LongAdder(), new LongAdder()};

    @Override public void hit(long lookupNanos) { hits.increment(); }
    @Override public void miss(long lookupNanos) { misses.increment(); }
    @Override public void redisError(RedisError kind) { errors[kind.ordinal()].increment(); }

    long errors(RedisError kind) {
      return errors[kind.ordinal()].sum();
    }
  }

  static float[][] infer(InferenceScheduler scheduler, int[] outputs, float... values) throws Exception {
    Answer answer = new Answer();
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      data.putFloat(v);
    }
    scheduler.submit(new InferRequest("doubler", 1, "id", new Tensor[] {
        new Tensor("IN", DataType.FP32, new long[] {1, values.length}, data.flip())}, outputs, 1, 0, 0,
        InferRequest.NO_DEADLINE, answer));
    return answer.get();
  }

  static CachingScheduler cached(Doubler doubler, ResponseCache cache, long version) {
    return (CachingScheduler) new CachingSchedulerFactory((n, v, c, s, i) -> doubler, cache)
        .create("doubler", version, CONFIG, SIGNATURE, List.of());
  }

  @Test
  void local_secondRequestIsAHit_answeredWithoutTheScheduler_withTheSameValues() throws Exception {
    CountingMetrics metrics = new CountingMetrics();
    try (ResponseCache cache = ResponseCache.open(CacheOptions.local(1 << 20), metrics)) {
      Doubler doubler = new Doubler();
      CachingScheduler scheduler = cached(doubler, cache, 1);
      int[] all = SIGNATURE.allOutputIndices();
      float[][] miss = infer(scheduler, all, 1, 2, 3);
      float[][] hit = infer(scheduler, all, 1, 2, 3);

      assertThat(miss[0]).containsExactly(2, 4, 6);
      assertThat(hit).isDeepEqualTo(miss); // the copy was taken before the runner reused its buffers
      assertThat(doubler.runs.get()).isEqualTo(1);
      assertThat(doubler.stats.cacheHit().count()).isEqualTo(1);
      assertThat(doubler.stats.cacheMiss().count()).isEqualTo(1);
      assertThat(doubler.stats.success().count()).isEqualTo(1); // the hit; the doubler records its own runs
      assertThat(metrics.hits.sum()).isEqualTo(1);

      // Other inputs, or other outputs asked for, are other entries.
      assertThat(infer(scheduler, all, 1, 2, 4)[0]).containsExactly(2, 4, 8);
      assertThat(infer(scheduler, new int[] {1}, 1, 2, 3)).isDeepEqualTo(new float[][] {{-1, -2, -3}});
      assertThat(infer(scheduler, new int[] {1, 0}, 1, 2, 3)).isDeepEqualTo(new float[][] {{-1, -2, -3}, {2, 4, 6}});
      assertThat(doubler.runs.get()).isEqualTo(4);
    }
  }

  @Test
  void local_staysWithinItsByteBound_evictingOneOffsBeforeWhatIsAskedForAgain() throws Exception {
    try (ResponseCache cache = ResponseCache.open(CacheOptions.local(1 << 20), CacheMetrics.NONE)) {
      Doubler doubler = new Doubler();
      CachingScheduler scheduler = cached(doubler, cache, 1);
      float[] hot = new float[128]; // 512 B in, 1 KiB of answer
      for (int n = 0; n < 6000; n++) { // 6000 one-off answers of 1 KiB: 7 MiB with bookkeeping through 1 MiB
        float[] once = new float[128];
        once[0] = n + 1;
        infer(scheduler, SIGNATURE.allOutputIndices(), once);
        if (n == 2000) { // once the cache is full (its frequency sketch sized), one answer is asked for often
          for (int i = 0; i < 20; i++) {
            infer(scheduler, SIGNATURE.allOutputIndices(), hot);
          }
        }
      }
      ((LocalResponseCache) cache).cleanUp();
      assertThat(cache.bytes()).isLessThanOrEqualTo(1 << 20);
      assertThat(cache.evictions()).isGreaterThan(5000);
      int runs = doubler.runs.get();
      infer(scheduler, SIGNATURE.allOutputIndices(), hot);
      assertThat(doubler.runs.get()).as("the frequently asked answer survived the flood").isEqualTo(runs);
    }
  }

  @Test
  void local_versionsNeverShareEntries_andAnUnloadDropsItsOwn() throws Exception {
    try (ResponseCache cache = ResponseCache.open(CacheOptions.local(1 << 20), CacheMetrics.NONE)) {
      Doubler v1 = new Doubler();
      Doubler v2 = new Doubler();
      CachingScheduler first = cached(v1, cache, 1);
      CachingScheduler second = cached(v2, cache, 2);
      infer(first, SIGNATURE.allOutputIndices(), 5);
      infer(second, SIGNATURE.allOutputIndices(), 5);
      assertThat(v2.runs.get()).isEqualTo(1); // not answered from version 1's entry
      CachingScheduler reloaded = cached(new Doubler(), cache, 1); // the same version number loaded again
      infer(reloaded, SIGNATURE.allOutputIndices(), 5);
      assertThat(((Doubler) reloaded.inner()).runs.get()).isEqualTo(1);
      assertThat(cache.entries()).isEqualTo(3);
      first.close();
      assertThat(cache.entries()).isEqualTo(2);
    }
  }

  @Test
  void redis_isSharedByReplicas_andAnOutageIsBypassed_thenUsedAgain() throws Exception {
    try (RedisServer redis = RedisServer.start()) {
      CountingMetrics metricsA = new CountingMetrics();
      CacheOptions options = CacheOptions.redis("127.0.0.1", redis.port()).withRedis(
          new CacheOptions.Redis("127.0.0.1", redis.port(), null, null, 0, false, null, null, null, "test:", 60, 200, 500));
      try (ResponseCache replicaA = ResponseCache.open(options, metricsA);
           ResponseCache replicaB = ResponseCache.open(options, CacheMetrics.NONE)) {
        awaitConnected(replicaA);
        awaitConnected(replicaB);
        Doubler a = new Doubler();
        Doubler b = new Doubler();
        CachingScheduler onA = cached(a, replicaA, 1);
        CachingScheduler onB = cached(b, replicaB, 1);
        float[][] computed = infer(onA, SIGNATURE.allOutputIndices(), 1, 2, 3);
        awaitStored(redis, 1);
        assertThat(infer(onB, SIGNATURE.allOutputIndices(), 1, 2, 3)).isDeepEqualTo(computed);
        assertThat(b.runs.get()).as("replica B answered from A's entry").isZero();
        assertThat(b.stats.cacheHit().count()).isEqualTo(1);

        redis.stop(); // outage: every request still gets its answer, from the model
        for (int i = 0; i < 5; i++) {
          assertThat(infer(onA, SIGNATURE.allOutputIndices(), 7, 8, i)[0]).containsExactly(14, 16, 2 * i);
        }
        assertThat(metricsA.errors(CacheMetrics.RedisError.UNAVAILABLE) + metricsA.errors(CacheMetrics.RedisError.ERROR)
            + metricsA.errors(CacheMetrics.RedisError.TIMEOUT)).isPositive();

        redis.restart(); // empty again (no persistence); Lettuce reconnects by itself
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        int before = a.runs.get();
        while (System.nanoTime() < end) {
          infer(onA, SIGNATURE.allOutputIndices(), 42);
          if (((RedisResponseCache) replicaA).available() && a.runs.get() - before >= 1) {
            Thread.sleep(50); // let the store land
            int runs = a.runs.get();
            infer(onA, SIGNATURE.allOutputIndices(), 42);
            if (a.runs.get() == runs) {
              break; // a hit again
            }
          }
          Thread.sleep(50);
        }
        int runs = a.runs.get();
        infer(onA, SIGNATURE.allOutputIndices(), 42);
        assertThat(a.runs.get()).as("hits again after Redis came back").isEqualTo(runs);
      }
    }
  }

  @Test
  void redis_slowerThanTheTimeout_letsTheRequestRunTheModel() throws Exception {
    try (RedisServer redis = RedisServer.start()) {
      CountingMetrics metrics = new CountingMetrics();
      CacheOptions options = CacheOptions.redis("127.0.0.1", redis.port()).withRedis(
          new CacheOptions.Redis("127.0.0.1", redis.port(), null, null, 0, false, null, null, null, "test:", 60, 50, 500));
      try (ResponseCache cache = ResponseCache.open(options, metrics);
           RedisClient client = closeable(RedisClient.create("redis://127.0.0.1:" + redis.port()));
           StatefulRedisConnection<String, String> admin = client.connect()) {
        awaitConnected(cache);
        Doubler doubler = new Doubler();
        CachingScheduler scheduler = cached(doubler, cache, 1);
        admin.async().dispatch(io.lettuce.core.protocol.CommandType.DEBUG,
            new io.lettuce.core.output.StatusOutput<>(io.lettuce.core.codec.StringCodec.UTF8),
            new io.lettuce.core.protocol.CommandArgs<>(io.lettuce.core.codec.StringCodec.UTF8).add("SLEEP").add("1"));
        Thread.sleep(50); // Redis is now asleep for a second
        assertThat(infer(scheduler, SIGNATURE.allOutputIndices(), 3)[0]).containsExactly(6);
        assertThat(metrics.errors(CacheMetrics.RedisError.TIMEOUT)).isEqualTo(1);
        assertThat(doubler.runs.get()).isEqualTo(1);
      }
    }
  }

  @Test
  void redis_aValueThatIsNoAnswer_isRefused_andTheModelRuns() throws Exception {
    try (RedisServer redis = RedisServer.start()) {
      CountingMetrics metrics = new CountingMetrics();
      CacheOptions options = CacheOptions.redis("127.0.0.1", redis.port()).withRedis(
          new CacheOptions.Redis("127.0.0.1", redis.port(), null, null, 0, false, null, null, null, "test:", 60, 200, 500));
      try (ResponseCache cache = ResponseCache.open(options, metrics);
           RedisClient client = closeable(RedisClient.create("redis://127.0.0.1:" + redis.port()));
           StatefulRedisConnection<String, String> admin = client.connect()) {
        awaitConnected(cache);
        Doubler doubler = new Doubler();
        CachingScheduler scheduler = cached(doubler, cache, 1);
        infer(scheduler, SIGNATURE.allOutputIndices(), 9);
        awaitStored(redis, 1);
        for (String key : admin.sync().keys("test:*")) {
          admin.sync().set(key, "not an answer");
        }
        assertThat(infer(scheduler, SIGNATURE.allOutputIndices(), 9)[0]).containsExactly(18);
        assertThat(doubler.runs.get()).isEqualTo(2);
        assertThat(metrics.errors(CacheMetrics.RedisError.DECODE)).isEqualTo(1);
      }
    }
  }

  static RedisClient closeable(RedisClient client) {
    return client;
  }

  static void awaitConnected(ResponseCache cache) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!((RedisResponseCache) cache).available() && System.nanoTime() < end) {
      Thread.sleep(10);
    }
    assertThat(((RedisResponseCache) cache).available()).as("connected to Redis").isTrue();
  }

  static void awaitStored(RedisServer redis, int keys) throws InterruptedException {
    RedisClient client = RedisClient.create("redis://127.0.0.1:" + redis.port());
    try (StatefulRedisConnection<String, String> c = client.connect()) {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (c.sync().dbsize() < keys && System.nanoTime() < end) {
        Thread.sleep(5);
      }
      assertThat(c.sync().dbsize()).isGreaterThanOrEqualTo(keys);
    } finally {
      client.shutdown();
    }
  }
}
