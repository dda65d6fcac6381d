package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.bench.perf.ArrivalSchedule.Distribution;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Short real REST runs (about 1-2 s each) over loopback against a real QuiverServer with its REST
 * listener on: the counts must add up whatever the speed, in binary and JSON modes and over HTTP/1.1
 * and HTTP/2. No assertion
 * depends on how fast anything is.
 */
class HttpLoadGeneratorRunTest {
  @TempDir
  static Path repository;

  private static QuiverServer quiver;

  @BeforeAll
  static void startServer() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    quiver = new QuiverServer(ServerOptions.defaults(repository).withGrpcPort(0).withHttp(0, -1)).start();
  }

  @AfterAll
  static void stopServer() {
    if (quiver != null) {
      quiver.close();
    }
  }

  private static LoadGenerator.Settings settings() {
    return new LoadGenerator.Settings("identity_fp32", false, TimeUnit.MILLISECONDS.toNanos(300),
        TimeUnit.MILLISECONDS.toNanos(400), 3, 0.10, ProcessHandle.current().pid(), 64,
        TimeUnit.SECONDS.toNanos(10), 1, 1, TimeUnit.SECONDS.toNanos(20));
  }

  private static PointResult run(boolean json, boolean grpcMetadata, double openRate, int concurrency) throws Exception {
    return run(json, grpcMetadata, openRate, concurrency, false);
  }

  private static PointResult run(boolean json, boolean grpcMetadata, double openRate, int concurrency, boolean http2)
      throws Exception {
    GrpcEndpoint grpc = grpcMetadata ? GrpcEndpoint.open("127.0.0.1:" + quiver.port()) : null;
    try (HttpEndpoint http = HttpEndpoint.open("127.0.0.1:" + quiver.httpPort(), grpc, 8, false, http2)) {
      ModelMetadataResponse metadata;
      if (grpc != null) {
        grpc.awaitModelReady("identity_fp32", "", TimeUnit.SECONDS.toNanos(10));
        metadata = grpc.metadata("identity_fp32", "");
      } else {
        http.awaitModelReady("identity_fp32", "", TimeUnit.SECONDS.toNanos(10));
        metadata = http.metadata("identity_fp32", "");
      }
      assertThat(metadata.getInputsList()).isNotEmpty();
      ModelInferRequest request = InputData.random(metadata, "identity_fp32", "", 2, Map.of(), 1, 16);
      HttpInferRequest encoded = HttpInferRequest.encode(request, http.hostHeader(), json);
      try (LoadGenerator generator = new LoadGenerator(http, grpc, List.of(encoded), 2, settings(), null)) {
        return openRate > 0 ? generator.runOpen(openRate, Distribution.POISSON) : generator.runClosed(concurrency);
      }
    } finally {
      if (grpc != null) {
        grpc.close();
      }
    }
  }

  private static void assertCountsAddUp(PointResult r) {
    assertThat(r.firstError()).isEmpty();
    assertThat(r.errors()).isZero();
    assertThat(r.rejected()).isZero();
    assertThat(r.completed()).isPositive();
    assertThat(r.sent()).isEqualTo(r.completed() + r.errors());
    assertThat(r.latencyCount()).isEqualTo(r.completed());
    assertThat(r.windows()).isBetween(1, 3);
    assertThat(r.measured().latencyNanos().getTotalCount()).isEqualTo(r.measured().completed());
    assertThat(r.measured().rowsPerRequest()).isEqualTo(2);
    assertThat(r.clientCpuMicrosPerRequest()).isPositive();
    // Statistics come over REST (or gRPC): a mean formed batch of at least one 2-row request.
    assertThat(r.meanBatch()).isGreaterThanOrEqualTo(2.0);
  }

  @ParameterizedTest(name = "json={0}")
  @ValueSource(booleans = {false, true})
  void closedLoop_countsAddUp(boolean json) throws Exception {
    assertCountsAddUp(run(json, false, 0, 4));
  }

  @ParameterizedTest(name = "json={0}")
  @ValueSource(booleans = {false, true})
  void openLoop_countsAddUp(boolean json) throws Exception {
    assertCountsAddUp(run(json, false, 300, 0));
  }

  /** HTTP/2 with prior knowledge: every request a stream of one shared connection. */
  @ParameterizedTest(name = "open={0}")
  @ValueSource(booleans = {false, true})
  void http2_countsAddUp(boolean open) throws Exception {
    assertCountsAddUp(open ? run(false, false, 300, 0, true) : run(false, false, 0, 16, true));
  }

  @Test
  void closedLoop_withGrpcMetadataAndStatistics_countsAddUp() throws Exception {
    assertCountsAddUp(run(false, true, 0, 2));
  }

  @Test
  void encode_binary_hasHeaderLengthAndBinarySizes() {
    ModelMetadataResponse metadata = ModelMetadataResponse.newBuilder().setName("m")
        .addInputs(ModelMetadataResponse.TensorMetadata.newBuilder().setName("x").setDatatype("FP32").addShape(-1).addShape(3))
        .build();
    ModelInferRequest request = InputData.random(metadata, "m", "2", 1, Map.of(), 1, 16);
    HttpInferRequest binary = HttpInferRequest.encode(request, "h:1", false);
    assertThat(binary.path()).isEqualTo("/v2/models/m/versions/2/infer");
    int headerLength = Integer.parseInt(binary.header(HttpInferRequest.HEADER_LENGTH));
    byte[] body = binary.bodyBytes();
    assertThat(body.length).isEqualTo(headerLength + 12);
    String header = new String(body, 0, headerLength, StandardCharsets.UTF_8);
    assertThat(header).contains("\"binary_data_size\":12").contains("\"binary_data_output\":true").contains("\"shape\":[1,3]");

    HttpInferRequest json = HttpInferRequest.encode(request, "h:1", true);
    assertThat(json.header(HttpInferRequest.HEADER_LENGTH)).isNull();
    String text = new String(json.bodyBytes(), StandardCharsets.UTF_8);
    assertThat(text).startsWith("{\"inputs\":[{\"name\":\"x\"").contains("\"data\":[").doesNotContain("binary");
  }

  @Test
  void httpRejectionCodes() {
    assertThat(LoadGenerator.isHttpRejection(429)).isTrue();
    assertThat(LoadGenerator.isHttpRejection(503)).isTrue();
    assertThat(LoadGenerator.isHttpRejection(500)).isFalse();
    assertThat(LoadGenerator.isHttpRejection(400)).isFalse();
  }
}
