package io.quiver.server.jobs;

import static io.quiver.server.jobs.JobTestSupport.assertResults;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.jobs.v1.BatchJobsGrpc;
import io.quiver.proto.jobs.v1.GetJobRequest;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobOptions;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.registry.s3.S3ProxyFixture;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Batch jobs on a real S3 API (S3Proxy on loopback): the model repository, the job's input and its
 * output all in buckets, the job's state stored beside the desired state in the repository bucket.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class BatchJobsS3Test {
  @TempDir Path local;

  @Test
  void job_readsAndWritesS3_andStoresItsStateInTheRepositoryBucket() throws Exception {
    int n = 20_000;
    try (S3ProxyFixture s3 = S3ProxyFixture.start()) {
      s3.createBucket("models");
      s3.createBucket("data");
      Path modelDir = ExampleModels.writeMlpClassifier(local.resolve("repo"));
      s3.uploadTree("models", "repo/mlp_classifier/", modelDir);
      Path jsonl = local.resolve("requests.jsonl");
      JobTestSupport.writeJsonl(jsonl, n, Map.of(5, "{\"inputs\": 3}"));
      s3.put("data", "in/requests.jsonl", Files.readAllBytes(jsonl));

      ServerOptions options = new ServerOptions("127.0.0.1", 0, local.resolve("cache"), ControlMode.NONE, List.of(),
          ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, -1, -1, 1024 * 1024, false)
          .withS3(s3.options("s3://models/repo", local.resolve("cache")))
          .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
          .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0));
      JobsOptions jobsOptions = JobsOptions.of(List.of("s3://data/in"), List.of("s3://data/out"))
          .withS3(s3.options("s3://data", local.resolve("unused")));
      try (QuiverServer server = new QuiverServer(options).withJobs(jobsOptions).start()) {
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
        try {
          BatchJobsGrpc.BatchJobsBlockingStub jobs = BatchJobsGrpc.newBlockingStub(channel).withDeadlineAfter(120, TimeUnit.SECONDS);
          assertThatThrownBy(() -> jobs.submitJob(SubmitJobRequest.newBuilder().setModel("mlp_classifier")
              .setInputUri("s3://models/repo/mlp_classifier/config.pbtxt").setOutputUri("s3://data/out/x").build()))
              .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);
                assertThat(e.getStatus().getDescription()).contains("input_uri");
              });

          Job submitted = jobs.submitJob(SubmitJobRequest.newBuilder().setModel("mlp_classifier")
              .setInputUri("s3://data/in/requests.jsonl").setOutputUri("s3://data/out/run1")
              .setOptions(JobOptions.newBuilder().setRecordsPerChunk(4_000)).build());
          Job[] last = new Job[1];
          JobTestSupport.waitUntil(() -> {
            last[0] = jobs.getJob(GetJobRequest.newBuilder().setId(submitted.getId()).build());
            return last[0].getState() == JobState.SUCCEEDED || last[0].getState() == JobState.FAILED;
          }, 150_000, "the S3 job");
          assertThat(last[0].getState()).as(last[0].getMessage()).isEqualTo(JobState.SUCCEEDED);
          assertThat(last[0].getRecordsSucceeded()).isEqualTo(n);
          assertThat(last[0].getRecordsFailed()).isEqualTo(1);

          List<String> keys = new ArrayList<>();
          for (S3Object o : s3.client().listObjectsV2(b -> b.bucket("data").prefix("out/run1/")).contents()) {
            keys.add(o.key());
          }
          assertThat(keys).contains("out/run1/manifest.json", "out/run1/results-000000.jsonl", "out/run1/results-000005.jsonl",
              "out/run1/failures-000000.jsonl").hasSize(8); // 20,001 records: 6 chunks
          List<JsonNode> results = new ArrayList<>();
          for (int c = 0; c < 6; c++) {
            String key = String.format("out/run1/results-%06d.jsonl", c);
            for (String line : s3.client().getObjectAsBytes(b -> b.bucket("data").key(key)).asUtf8String().split("\n")) {
              results.add(JobTestSupport.JSON.readTree(line));
            }
          }
          assertResults(results, JobTestSupport.directInference(modelDir.resolve("1/model.onnx"), n), Set.of());
          String failures = s3.client().getObjectAsBytes(b -> b.bucket("data").key("out/run1/failures-000000.jsonl"))
              .asUtf8String();
          assertThat(failures).contains("\"line\":6", "inputs");
          String state = s3.client().getObjectAsBytes(b -> b.bucket("models")
              .key("repo/.quiver-jobs/" + submitted.getId() + ".json")).asString(StandardCharsets.UTF_8);
          assertThat(state).contains("SUCCEEDED", "\"resume_record\":\"20001\"");
        } finally {
          channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      }
    }
  }
}
