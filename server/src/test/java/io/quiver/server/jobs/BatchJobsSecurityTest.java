package io.quiver.server.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.jobs.v1.BatchJobsGrpc;
import io.quiver.proto.jobs.v1.CancelJobRequest;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.ListJobsRequest;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** With security on, jobs need the admin permission on both transports, and submit and cancel are audited. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BatchJobsSecurityTest {
  @TempDir Path dir;

  static String sha256(String key) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void unauthorisedSubmissions_areRefused_andAdminOnesAudited() throws Exception {
    Path repository = dir.resolve("repo");
    ExampleModels.writeMlpClassifier(repository);
    Path data = Files.createDirectories(dir.resolve("data"));
    Path out = Files.createDirectories(dir.resolve("out"));
    Path input = data.resolve("requests.jsonl");
    JobTestSupport.writeJsonl(input, 50, Map.of());
    Path security = dir.resolve("security.json");
    Files.writeString(security, """
        {
          "api_keys": [
            {"name": "scorer", "sha256": "%s", "roles": ["scorer"]},
            {"name": "operator", "sha256": "%s", "roles": ["admin"]}
          ],
          "roles": {
            "scorer": {"models": {"*": ["infer", "metadata"]}},
            "admin": {"models": {"*": ["infer", "metadata"]}, "admin": true}
          }
        }
        """.formatted(sha256("scorer-key"), sha256("admin-key")));
    ListAppender<ILoggingEvent> audit = new ListAppender<>();
    audit.start();
    Logger auditLogger = (Logger) LoggerFactory.getLogger("io.quiver.control.audit");
    auditLogger.addAppender(audit);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 2_000, 0, -1, 1024 * 1024, false)
        .withSecurityConfig(security)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0));
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    try (QuiverServer server = new QuiverServer(options)
        .withJobs(JobsOptions.of(List.of(data.toString()), List.of(out.toString()))).start()) {
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
      try {
        SubmitJobRequest request = SubmitJobRequest.newBuilder().setModel("mlp_classifier").setInputUri(input.toString())
            .setOutputUri(out.resolve("a").toString()).build();
        assertThatThrownBy(() -> stub(channel, null).submitJob(request)).isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED));
        assertThatThrownBy(() -> stub(channel, "scorer-key").submitJob(request))
            .isInstanceOfSatisfying(StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED));
        assertThatThrownBy(() -> stub(channel, "scorer-key").listJobs(ListJobsRequest.getDefaultInstance()))
            .isInstanceOfSatisfying(StatusRuntimeException.class,
                e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED));

        Job job = stub(channel, "admin-key").submitJob(request);
        assertThat(job.getSubmittedBy()).isEqualTo("operator");
        stub(channel, "admin-key").cancelJob(CancelJobRequest.newBuilder().setId(job.getId()).build());

        String body = "{\"model\":\"mlp_classifier\",\"input_uri\":\"" + input + "\",\"output_uri\":\"" + out.resolve("b") + "\"}";
        String base = "http://127.0.0.1:" + server.httpPort();
        assertThat(http.send(HttpRequest.newBuilder(URI.create(base + "/v2/jobs")).POST(HttpRequest.BodyPublishers.ofString(body))
            .build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(401);
        assertThat(http.send(HttpRequest.newBuilder(URI.create(base + "/v2/jobs")).header("x-api-key", "scorer-key")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()).statusCode())
            .isEqualTo(403);
        assertThat(http.send(HttpRequest.newBuilder(URI.create(base + "/v2/jobs")).header("x-api-key", "scorer-key").GET()
            .build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(403);
        HttpResponse<String> accepted = http.send(HttpRequest.newBuilder(URI.create(base + "/v2/jobs"))
            .header("x-api-key", "admin-key").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
            HttpResponse.BodyHandlers.ofString());
        assertThat(accepted.statusCode()).as(accepted.body()).isEqualTo(200);
        assertThat(accepted.body()).contains("\"submitted_by\":\"operator\"");
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    } finally {
      auditLogger.detachAppender(audit);
    }
    List<String> lines = audit.list.stream().map(ILoggingEvent::getFormattedMessage).toList();
    assertThat(lines).anySatisfy(l -> assertThat(l).contains("principal=operator", "op=SubmitJob", "result=OK"));
    assertThat(lines).anySatisfy(l -> assertThat(l).contains("principal=operator", "op=CancelJob", "result=OK"));
  }

  private static BatchJobsGrpc.BatchJobsBlockingStub stub(ManagedChannel channel, String apiKey) {
    BatchJobsGrpc.BatchJobsBlockingStub stub = BatchJobsGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    if (apiKey == null) {
      return stub;
    }
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER), apiKey);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
  }
}
