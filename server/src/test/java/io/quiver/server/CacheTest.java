package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.quiver.cache.CacheOptions;
import io.quiver.cache.RedisServer;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.InferStatistics;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelVersionPolicy;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The response cache on a real server, over real gRPC and REST, with models run by ONNX Runtime: a hit
 * answers bytes identical to the miss before it and counts in Triton's statistics; a new version (of
 * the model, or of a step model under an ensemble) never reads the old one's entries; and with Redis (a
 * real redis-server process) an outage only makes requests run their models.
 */
class CacheTest {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @TempDir Path repository;

  /** The example repository with response_cache on mlp_classifier and classify_and_score. */
  void writeRepository() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    for (String model : List.of("mlp_classifier", "classify_and_score")) {
      Files.writeString(repository.resolve(model + "/config.pbtxt"), "response_cache { enable: true }\n",
          StandardOpenOption.APPEND);
    }
  }

  ServerFixture start(CacheOptions cache) throws Exception {
    return new ServerFixture(new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, 0, 1024 * 1024, false)
        .withExecution(ServerOptions.Execution.defaults().withCache(cache)));
  }

  static ByteString features(long seed) {
    float[] values = new float[16];
    SplittableRandom random = new SplittableRandom(seed);
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextDouble(-2, 2);
    }
    return Tensors.floats(values);
  }

  static ModelInferResponse classify(ServerFixture fixture, ByteString features) {
    return fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("mlp_classifier").setId("c")
        .addInputs(input("features", "FP32", 1, 16)).addRawInputContents(features).build());
  }

  static ModelInferResponse classifyAndScore(ServerFixture fixture, byte[] pixels) {
    return fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("classify_and_score").setId("e")
        .addInputs(input("raw", "UINT8", 1, 16)).addRawInputContents(ByteString.copyFrom(pixels)).build());
  }

  static InferStatistics stats(ServerFixture fixture, String model, String version) {
    return fixture.stub().modelStatistics(ModelStatisticsRequest.newBuilder().setName(model).setVersion(version).build())
        .getModelStats(0).getInferenceStats();
  }

  static HttpResponse<byte[]> restInfer(ServerFixture fixture, String body) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + fixture.server.httpPort() + "/v2/models/mlp_classifier/infer"))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  static String scrape(ServerFixture fixture) throws Exception {
    return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + fixture.server.metricsPort() + "/metrics"))
        .GET().build(), HttpResponse.BodyHandlers.ofString()).body();
  }

  @Test
  void local_hitOverGrpcAndRest_isByteIdenticalToTheMiss_andCountsInTritonsStatistics() throws Exception {
    writeRepository();
    try (ServerFixture fixture = start(CacheOptions.local(64L << 20))) {
      ByteString x = features(1);
      ModelInferResponse miss = classify(fixture, x);
      ModelInferResponse hit = classify(fixture, x);
      assertThat(hit.getRawOutputContents(0)).isEqualTo(miss.getRawOutputContents(0));
      assertThat(hit).isEqualTo(miss); // the whole answer: name, version, id, outputs, bytes
      assertThat(classify(fixture, features(2)).getRawOutputContents(0)).isNotEqualTo(miss.getRawOutputContents(0));
      InferStatistics grpc = stats(fixture, "mlp_classifier", "1");
      assertThat(grpc.getCacheHit().getCount()).isEqualTo(1);
      assertThat(grpc.getCacheMiss().getCount()).isEqualTo(2);
      assertThat(grpc.getSuccess().getCount()).isEqualTo(3); // a hit is a success too, as in Triton
      assertThat(grpc.getCacheHit().getNs()).isPositive();

      // REST, binary outputs: the second answer is a hit with the same bytes.
      StringBuilder data = new StringBuilder();
      float[] values = Tensors.toFloats(features(3));
      for (int i = 0; i < values.length; i++) {
        data.append(i == 0 ? "" : ",").append(values[i]);
      }
      String body = "{\"id\":\"r\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":["
          + data + "]}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"binary_data\":true}}]}";
      HttpResponse<byte[]> restMiss = restInfer(fixture, body);
      HttpResponse<byte[]> restHit = restInfer(fixture, body);
      assertThat(restMiss.statusCode()).isEqualTo(200);
      assertThat(restHit.statusCode()).isEqualTo(200);
      assertThat(restHit.body()).isEqualTo(restMiss.body());
      HttpResponse<String> restStats = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
          + fixture.server.httpPort() + "/v2/models/mlp_classifier/versions/1/stats")).GET().build(),
          HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      JsonNode inference = JSON.readTree(restStats.body()).get("model_stats").get(0).get("inference_stats");
      assertThat(inference.get("cache_hit").get("count").asLong()).isEqualTo(2);
      assertThat(inference.get("cache_miss").get("count").asLong()).isEqualTo(3);

      String metrics = scrape(fixture);
      assertThat(metrics).contains("quiver_cache_lookups_total{backend=\"local\",result=\"hit\"} 2.0",
          "quiver_cache_lookups_total{backend=\"local\",result=\"miss\"} 3.0", "quiver_cache_entries");
    }
  }

  @Test
  void local_aNewVersion_neverReadsTheOldOnesEntries_andNeitherDoesAnEnsembleOverAStepSwap() throws Exception {
    writeRepository();
    try (ServerFixture fixture = start(CacheOptions.local(64L << 20))) {
      var models = fixture.server.models();
      ByteString x = features(7);
      byte[] pixels = new byte[16];
      new SplittableRandom(7).nextBytes(pixels);
      ModelInferResponse first = classify(fixture, x);
      classify(fixture, x);
      ModelInferResponse ensembleFirst = classifyAndScore(fixture, pixels);
      classifyAndScore(fixture, pixels);
      assertThat(stats(fixture, "mlp_classifier", "1").getCacheHit().getCount()).isEqualTo(1);
      assertThat(stats(fixture, "classify_and_score", "1").getCacheHit().getCount()).isEqualTo(1);

      Path versionTwo = repository.resolve("mlp_classifier/2"); // the same weights as a second version
      Files.createDirectories(versionTwo);
      Files.copy(repository.resolve("mlp_classifier/1/model.onnx"), versionTwo.resolve("model.onnx"));
      models.load("mlp_classifier", ModelVersionPolicy.newBuilder()
          .setSpecific(ModelVersionPolicy.Specific.newBuilder().addVersions(2)).build());
      assertThat(models.readyVersions("mlp_classifier")).containsExactly(2L);
      ModelInferResponse second = classify(fixture, x);
      assertThat(second.getModelVersion()).isEqualTo("2");
      assertThat(second.getRawOutputContents(0)).isEqualTo(first.getRawOutputContents(0)); // same weights
      InferStatistics v2 = stats(fixture, "mlp_classifier", "2");
      assertThat(v2.getCacheHit().getCount()).as("version 2 computed its own answer").isZero();
      assertThat(v2.getCacheMiss().getCount()).isEqualTo(1);

      // The ensemble itself did not change, but its step now routes to another version: a miss.
      long ensembleMisses = stats(fixture, "classify_and_score", "1").getCacheMiss().getCount();
      assertThat(classifyAndScore(fixture, pixels)).isEqualTo(ensembleFirst);
      InferStatistics ensemble = stats(fixture, "classify_and_score", "1");
      assertThat(ensemble.getCacheHit().getCount()).isEqualTo(1);
      assertThat(ensemble.getCacheMiss().getCount()).isEqualTo(ensembleMisses + 1);
      assertThat(classifyAndScore(fixture, pixels)).isEqualTo(ensembleFirst);
      assertThat(stats(fixture, "classify_and_score", "1").getCacheHit().getCount()).isEqualTo(2);

      // Version 1 loaded again is a new load: its old entries went with its unload.
      models.load("mlp_classifier", ModelVersionPolicy.newBuilder()
          .setSpecific(ModelVersionPolicy.Specific.newBuilder().addVersions(1)).build());
      classify(fixture, x);
      InferStatistics reloaded = stats(fixture, "mlp_classifier", "1");
      assertThat(reloaded.getCacheHit().getCount()).isZero();
      assertThat(reloaded.getCacheMiss().getCount()).isEqualTo(1);
    }
  }

  @Test
  void redis_sharedByTwoServers_andAnOutageOnlyMakesRequestsRunTheModel() throws Exception {
    writeRepository();
    try (RedisServer redis = RedisServer.start()) {
      CacheOptions options = CacheOptions.redis("127.0.0.1", redis.port());
      options = options.withRedis(new CacheOptions.Redis("127.0.0.1", redis.port(), null, null, 0, false, null, null,
          null, "cachetest:", 60, 500, 500));
      try (ServerFixture a = start(options); ServerFixture b = start(options)) {
        ByteString x = features(11);
        awaitRedisHit(a, b, x);
        ModelInferResponse fromA = classify(a, x);
        ModelInferResponse fromB = classify(b, x);
        assertThat(fromB.getRawOutputContents(0)).isEqualTo(fromA.getRawOutputContents(0));

        redis.stop(); // an outage: every request is still answered, by the model
        long successBefore = stats(b, "mlp_classifier", "1").getSuccess().getCount();
        for (int i = 0; i < 20; i++) {
          ModelInferResponse r = classify(b, features(100 + i));
          assertThat(r.getRawOutputContentsCount()).isEqualTo(1);
        }
        assertThat(classify(b, x).getRawOutputContents(0)).isEqualTo(fromA.getRawOutputContents(0));
        assertThat(stats(b, "mlp_classifier", "1").getSuccess().getCount()).isEqualTo(successBefore + 21);
        assertThat(scrape(b)).containsPattern("quiver_cache_redis_errors_total\\{[^}]*\\} [1-9]");

        redis.restart(); // back, empty: Lettuce reconnects, and answers are shared again
        awaitRedisHit(a, b, features(12));
      }
    }
  }

  /** Asks A until the answer is stored, then B until it is answered from Redis (B's cache_hit grows). */
  static void awaitRedisHit(ServerFixture a, ServerFixture b, ByteString x) throws Exception {
    long hitsBefore = stats(b, "mlp_classifier", "1").getCacheHit().getCount();
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < end) {
      classify(a, x);
      Thread.sleep(20);
      classify(b, x);
      if (stats(b, "mlp_classifier", "1").getCacheHit().getCount() > hitsBefore) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("server B never answered from the entry server A stored in Redis");
  }
}
