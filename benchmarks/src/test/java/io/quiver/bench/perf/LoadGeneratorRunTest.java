package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.bench.echo.EchoServer;
import io.quiver.bench.perf.ArrivalSchedule.Distribution;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Short real runs (≈1 s each) over loopback against the echo baseline and a real QuiverServer: the
 * counts must add up whatever the speed. No assertion depends on how fast anything is.
 */
class LoadGeneratorRunTest {
  @TempDir
  static Path repository;

  private static EchoServer echo;
  private static QuiverServer quiver;

  @BeforeAll
  static void startServers() throws Exception {
    echo = EchoServer.create("127.0.0.1", 0, 1).start();
    ExampleModels.writeIdentityFp32(repository);
    quiver = new QuiverServer(ServerOptions.defaults(repository).withGrpcPort(0)).start();
  }

  @AfterAll
  static void stopServers() {
    if (echo != null) {
      echo.close();
    }
    if (quiver != null) {
      quiver.close();
    }
  }

  private static LoadGenerator.Settings settings(boolean streaming, int maxInflight) {
    return new LoadGenerator.Settings("identity_fp32", streaming, TimeUnit.MILLISECONDS.toNanos(200),
        TimeUnit.MILLISECONDS.toNanos(250), 3, 0.10, ProcessHandle.current().pid(), maxInflight,
        TimeUnit.SECONDS.toNanos(10), 2, 1, TimeUnit.SECONDS.toNanos(20));
  }

  private static PointResult run(int port, boolean streaming, double openRate, int concurrency) throws Exception {
    return run(port, streaming, openRate, concurrency, 64);
  }

  private static PointResult run(int port, boolean streaming, double openRate, int concurrency, int maxInflight)
      throws Exception {
    try (GrpcEndpoint endpoint = GrpcEndpoint.open("127.0.0.1:" + port)) {
      endpoint.awaitModelReady("identity_fp32", "", TimeUnit.SECONDS.toNanos(10));
      ModelMetadataResponse metadata = endpoint.metadata("identity_fp32", "");
      ModelInferRequest request = InputData.random(metadata, "identity_fp32", "", 2, Map.of(), 1, 16);
      try (LoadGenerator generator = new LoadGenerator(endpoint, List.of(request), 2, settings(streaming, maxInflight), null)) {
        return openRate > 0 ? generator.runOpen(openRate, Distribution.POISSON) : generator.runClosed(concurrency);
      }
    }
  }

  private static void assertCountsAddUp(PointResult r) {
    assertThat(r.firstError()).isEmpty();
    assertThat(r.errors()).isZero();
    assertThat(r.completed()).isPositive();
    assertThat(r.sent()).isEqualTo(r.completed() + r.errors());
    assertThat(r.latencyCount()).isEqualTo(r.completed());
    assertThat(r.windows()).isBetween(1, 3);
    assertThat(r.measured().completed()).isLessThanOrEqualTo(r.completed());
    assertThat(r.measured().latencyNanos().getTotalCount()).isEqualTo(r.measured().completed());
    assertThat(r.measured().rowsPerRequest()).isEqualTo(2);
    assertThat(r.inferencesPerSecond()).isEqualTo(2 * r.throughput());
    assertThat(r.clientCpuMicrosPerRequest()).isPositive();
  }

  @Test
  void closedLoopUnary_againstEcho_countsAddUp() throws Exception {
    PointResult r = run(echo.port(), false, 0, 4);
    assertCountsAddUp(r);
    assertThat(r.meanBatch()).isNaN(); // the echo has no ModelStatistics
  }

  @Test
  void closedLoopStreaming_againstEcho_countsAddUp() throws Exception {
    assertCountsAddUp(run(echo.port(), true, 0, 3));
  }

  @Test
  void openLoopUnary_againstEcho_countsAddUp() throws Exception {
    assertCountsAddUp(run(echo.port(), false, 400, 0));
  }

  @Test
  void openLoopStreaming_againstEcho_countsAddUp() throws Exception {
    assertCountsAddUp(run(echo.port(), true, 400, 0));
  }

  /**
   * An offered rate far above what one request in flight allows: the sender reaches its in-flight
   * limit, sleeps, and is resumed by each answer (no polling), so the level still completes, the
   * counts add up and the point says it was held back by the limit.
   */
  @Test
  void openLoop_atTheInflightLimit_isResumedByAnswers() throws Exception {
    for (boolean streaming : new boolean[] {false, true}) {
      PointResult r = run(echo.port(), streaming, 50_000, 0, 1);
      assertCountsAddUp(r);
      assertThat(r.inflightLimited()).as("streaming=%s: the limit held the sender back", streaming).isTrue();
      assertThat(r.clientBound()).as("a window held back by the limit is not client-bound").isFalse();
    }
  }

  @Test
  void closedLoopUnary_againstQuiver_countsAddUp_andReportsFormedBatches() throws Exception {
    PointResult r = run(quiver.port(), false, 0, 4);
    assertCountsAddUp(r);
    // ModelStatistics counts rows (2 per request) per execution: a mean formed batch of at least one request.
    assertThat(r.meanBatch()).isGreaterThanOrEqualTo(2.0);
  }

  @Test
  void openLoopStreaming_againstQuiver_countsAddUp() throws Exception {
    assertCountsAddUp(run(quiver.port(), true, 300, 0));
  }
}
