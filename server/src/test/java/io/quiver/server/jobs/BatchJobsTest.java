package io.quiver.server.jobs;

import static io.quiver.server.jobs.JobTestSupport.assertResults;
import static io.quiver.server.jobs.JobTestSupport.readLines;
import static io.quiver.server.jobs.JobTestSupport.waitUntil;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.jobs.v1.BatchJobsGrpc;
import io.quiver.proto.jobs.v1.CancelJobRequest;
import io.quiver.proto.jobs.v1.ColumnList;
import io.quiver.proto.jobs.v1.GetJobRequest;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobOptions;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.server.Main;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.ipc.ArrowFileWriter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Batch jobs on local directories, against a real server (gRPC on the control port, REST on the REST
 * port) running mlp_classifier on ONNX Runtime; every result is checked against direct inference.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class BatchJobsTest {
  @TempDir static Path repository;
  @TempDir static Path data;
  @TempDir static Path outputs;
  @TempDir static Path outside;
  static QuiverServer server;
  static ManagedChannel control;
  static BatchJobsGrpc.BatchJobsBlockingStub jobs;
  static HttpClient http;
  static Path modelFile;

  @BeforeAll
  static void start() throws Exception {
    modelFile = ExampleModels.writeMlpClassifier(repository).resolve("1/model.onnx");
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, -1, 1024 * 1024, false)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0));
    server = new QuiverServer(options)
        .withJobs(JobsOptions.of(List.of(data.toString()), List.of(outputs.toString())))
        .start();
    control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
    jobs = BatchJobsGrpc.newBlockingStub(control);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.close();
  }

  private static BatchJobsGrpc.BatchJobsBlockingStub stub() {
    return jobs.withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  static Job awaitFinished(String id) throws InterruptedException {
    Job[] last = new Job[1];
    waitUntil(() -> {
      last[0] = stub().getJob(GetJobRequest.newBuilder().setId(id).build());
      JobState s = last[0].getState();
      return s == JobState.SUCCEEDED || s == JobState.FAILED || s == JobState.CANCELLED;
    }, 150_000, "job " + id + " to finish");
    return last[0];
  }

  private static SubmitJobRequest.Builder request(Path input, Path output) {
    return SubmitJobRequest.newBuilder().setModel("mlp_classifier").setInputUri(input.toString())
        .setOutputUri(output.toString());
  }

  @Test
  void job_of100000Records_producesExactlyOneCorrectOutputPerInput() throws Exception {
    int n = 100_000;
    Path input = data.resolve("requests.jsonl");
    JobTestSupport.writeJsonl(input, n, Map.of());
    Path output = outputs.resolve("big");
    Job submitted = stub().submitJob(request(input, output).build());
    assertThat(submitted.getId()).startsWith("job-");
    assertThat(submitted.getSubmittedBy()).isEqualTo("anonymous");

    Job done = awaitFinished(submitted.getId());
    assertThat(done.getState()).as(done.getMessage()).isEqualTo(JobState.SUCCEEDED);
    assertThat(done.getRecordsSucceeded()).isEqualTo(n);
    assertThat(done.getRecordsFailed()).isZero();
    assertThat(done.getRecordsTotal()).isEqualTo(n);
    assertThat(done.getRecordsCommitted()).isEqualTo(n);
    assertThat(done.getChunksCommitted()).isEqualTo(10); // the default 10,000 records per chunk
    assertThat(done.getOutputPartial()).isFalse();

    assertResults(readLines(output, "results-"), JobTestSupport.directInference(modelFile, n), Set.of());
    assertThat(readLines(output, "failures-")).isEmpty();
    JsonNode manifest = JobTestSupport.JSON.readTree(output.resolve("manifest.json").toFile());
    assertThat(manifest.get("state").asText()).isEqualTo("SUCCEEDED");
    assertThat(manifest.get("complete").asBoolean()).isTrue();
    assertThat(manifest.get("results")).hasSize(10);
    assertThat(Files.readString(repository.resolve(".quiver-jobs/" + submitted.getId() + ".json")))
        .contains("SUCCEEDED");

    // Metrics per job, in the server's registry.
    String scrape = scrape();
    assertThat(scrape).contains("quiver_job_records_total{job=\"" + submitted.getId()
        + "\",model=\"mlp_classifier\",outcome=\"succeeded\"} 100000.0");
    assertThat(scrape).contains("quiver_job_records_per_second{job=\"" + submitted.getId() + "\"");
    assertThat(scrape).contains("quiver_job_lag_records{job=\"" + submitted.getId() + "\",model=\"mlp_classifier\"} 0.0");
  }

  private static String scrape() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    new io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter(false)
        .write(out, server.metrics().registry().scrape());
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void badRecords_landInTheFailuresFile_whileTheJobContinues_overRest() throws Exception {
    int n = 3_000;
    Path input = data.resolve("with-bad.jsonl");
    JobTestSupport.writeJsonl(input, n, Map.of(
        10, "{not json",
        20, "{\"id\":\"wrong-type\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"INT32\",\"shape\":[1,16],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}",
        30, "{\"id\":\"wrong-shape\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[1,2,3]}]}",
        40, "   ",
        2_500, "[1,2,3]"));
    Path output = outputs.resolve("bad");
    String body = "{\"model\":\"mlp_classifier\",\"input_uri\":\"" + input + "\",\"output_uri\":\"file://" + output
        + "\",\"options\":{\"records_per_chunk\":1000}}";
    HttpResponse<String> submitted = post("/v2/jobs", body);
    assertThat(submitted.statusCode()).as(submitted.body()).isEqualTo(200);
    String id = JobTestSupport.JSON.readTree(submitted.body()).get("id").asText();

    Job done = awaitFinished(id);
    assertThat(done.getState()).as(done.getMessage()).isEqualTo(JobState.SUCCEEDED);
    assertThat(done.getRecordsSucceeded()).isEqualTo(n);
    assertThat(done.getRecordsFailed()).isEqualTo(4); // the blank line is not a record
    HttpResponse<String> status = get("/v2/jobs/" + id);
    assertThat(status.statusCode()).isEqualTo(200);
    assertThat(status.body()).contains("\"state\":\"SUCCEEDED\"", "\"records_failed\":\"4\"");

    assertResults(readLines(output, "results-"), JobTestSupport.directInference(modelFile, n), Set.of());
    List<JsonNode> failures = readLines(output, "failures-");
    assertThat(failures).extracting(f -> f.get("line").asInt()).containsExactly(11, 22, 33, 2505);
    assertThat(failures.get(0).get("id").asText()).isEqualTo("line-11");
    assertThat(failures.get(0).get("error").asText()).contains("line 11 is not valid JSON");
    assertThat(failures.get(1).get("id").asText()).isEqualTo("wrong-type");
    assertThat(failures.get(1).get("code").asText()).isEqualTo("INVALID_ARGUMENT");
    assertThat(failures.get(1).get("error").asText()).contains("features", "INT32");
    assertThat(failures.get(2).get("error").asText()).contains("shape");
    assertThat(failures.get(3).get("error").asText()).contains("must be a JSON object");
  }

  @Test
  void cancel_leavesAConsistentPartialOutput_andSaysSo() throws Exception {
    int n = 50_000;
    Path input = data.resolve("slow.jsonl");
    JobTestSupport.writeJsonl(input, n, Map.of());
    Path output = outputs.resolve("cancelled");
    Job submitted = stub().submitJob(request(input, output).setOptions(JobOptions.newBuilder()
        .setRecordsPerChunk(500).setMaxRecordsPerSecond(4000)).build());
    waitUntil(() -> stub().getJob(GetJobRequest.newBuilder().setId(submitted.getId()).build()).getChunksCommitted() >= 2,
        60_000, "two committed chunks");
    Job cancelling = stub().cancelJob(CancelJobRequest.newBuilder().setId(submitted.getId()).build());
    assertThat(cancelling.getState()).isIn(JobState.CANCELLING, JobState.CANCELLED);

    Job done = awaitFinished(submitted.getId());
    assertThat(done.getState()).isEqualTo(JobState.CANCELLED);
    assertThat(done.getOutputPartial()).isTrue();
    long committed = done.getRecordsCommitted();
    assertThat(committed).isPositive().isLessThan(n).isEqualTo(done.getChunksCommitted() * 500);
    assertThat(done.getMessage()).contains("cancelled", "first " + committed + " records");
    List<JsonNode> results = readLines(output, "results-");
    assertResults(results, JobTestSupport.directInference(modelFile, (int) committed), Set.of());
    JsonNode manifest = JobTestSupport.JSON.readTree(output.resolve("manifest.json").toFile());
    assertThat(manifest.get("state").asText()).isEqualTo("CANCELLED");
    assertThat(manifest.get("complete").asBoolean()).isFalse();
    assertThat(manifest.get("records_committed").asLong()).isEqualTo(committed);
    // A second cancel of a finished job changes nothing.
    assertThat(stub().cancelJob(CancelJobRequest.newBuilder().setId(submitted.getId()).build()).getState())
        .isEqualTo(JobState.CANCELLED);
  }

  @Test
  void submissions_thatCouldNotRun_areRefusedWithTheFieldNamed() throws Exception {
    Path input = data.resolve("small.jsonl");
    JobTestSupport.writeJsonl(input, 10, Map.of());
    Path secret = outside.resolve("secret.jsonl");
    JobTestSupport.writeJsonl(secret, 10, Map.of());

    assertRefused(request(secret, outputs.resolve("x")), Status.Code.PERMISSION_DENIED, "input_uri");
    assertRefused(request(input, outside.resolve("x")), Status.Code.PERMISSION_DENIED, "output_uri");
    assertRefused(request(data.resolve("../" + outside.getFileName() + "/secret.jsonl"), outputs.resolve("x")),
        Status.Code.PERMISSION_DENIED, "input_uri");
    assertRefused(request(input, outputs.resolve("x")).setInputUri("relative.jsonl"), Status.Code.INVALID_ARGUMENT,
        "absolute");
    assertRefused(request(input, outputs.resolve("x")).setInputUri("http://example.com/x.jsonl"),
        Status.Code.INVALID_ARGUMENT, "input_uri");
    assertRefused(request(input, outputs.resolve("x")).setModel("no_such_model"), Status.Code.NOT_FOUND, "no_such_model");
    assertRefused(request(data.resolve("missing.jsonl"), outputs.resolve("x")), Status.Code.NOT_FOUND, "does not exist");
    assertRefused(request(input, outputs.resolve("x")).setOptions(JobOptions.newBuilder().setMaxConcurrency(100_000)),
        Status.Code.INVALID_ARGUMENT, "options.max_concurrency");
    assertRefused(request(input, outputs.resolve("x")).setOptions(JobOptions.newBuilder().addOutputs("nope")),
        Status.Code.INVALID_ARGUMENT, "nope");

    Path wrongInput = data.resolve("wrong-input.jsonl");
    Files.writeString(wrongInput, "{\"inputs\":[{\"name\":\"pixels\",\"datatype\":\"FP32\",\"shape\":[1,1],\"data\":[1]}]}\n");
    assertRefused(request(wrongInput, outputs.resolve("x")), Status.Code.INVALID_ARGUMENT, "pixels");
    Path noExtension = data.resolve("requests.txt");
    Files.writeString(noExtension, JobTestSupport.requestLine(0) + "\n");
    assertRefused(request(noExtension, outputs.resolve("x")), Status.Code.INVALID_ARGUMENT, "input_format");

    Path used = outputs.resolve("used");
    Files.createDirectories(used);
    Files.writeString(used.resolve("results-000000.jsonl"), "{}\n");
    assertRefused(request(input, used), Status.Code.ALREADY_EXISTS, "output_uri");

    // Over REST the same refusals become HTTP statuses.
    HttpResponse<String> denied = post("/v2/jobs", "{\"model\":\"mlp_classifier\",\"input_uri\":\"" + secret
        + "\",\"output_uri\":\"" + outputs.resolve("y") + "\"}");
    assertThat(denied.statusCode()).isEqualTo(403);
    assertThat(denied.body()).contains("input_uri");
    assertThat(post("/v2/jobs", "{\"model\":\"mlp_classifier\",\"bogus\":1}").statusCode()).isEqualTo(400);
    assertThat(get("/v2/jobs/job-0000000000000000").statusCode()).isEqualTo(404);
    assertThat(get("/v2/jobs/../../etc").statusCode()).isIn(400, 404);
    assertThat(get("/v2/jobs?state=BOGUS").statusCode()).isEqualTo(400);
    // Nothing was written for any refused job.
    assertThat(Files.exists(outputs.resolve("x"))).isFalse();
  }

  private static void assertRefused(SubmitJobRequest.Builder request, Status.Code code, String mentioned) {
    assertThatThrownBy(() -> stub().submitJob(request.build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(code);
          assertThat(e.getStatus().getDescription()).contains(mentioned);
        });
  }

  @Test
  void arrowInput_scoresEveryRow_fromScalarColumns() throws Exception {
    int n = 2_000;
    Path input = data.resolve("table.arrow");
    try (RootAllocator allocator = new RootAllocator(); ArrowFileWriterHelper table = new ArrowFileWriterHelper(allocator, n)) {
      table.write(input, 777); // row 777's f3 is null: that row fails, the others run
    }
    Path output = outputs.resolve("arrow");
    Job submitted = stub().submitJob(request(input, output).setOptions(JobOptions.newBuilder().setRecordsPerChunk(500)).build());
    Job done = awaitFinished(submitted.getId());
    assertThat(done.getState()).as(done.getMessage()).isEqualTo(JobState.SUCCEEDED);
    assertThat(done.getRecordsFailed()).isEqualTo(1);

    float[][] expected = JobTestSupport.directInference(modelFile, n);
    List<JsonNode> results = readLines(output, "results-");
    assertThat(results).hasSize(n - 1);
    for (int i = 0, at = 0; i < n; i++) {
      if (i == 777) {
        continue;
      }
      JsonNode r = results.get(at++);
      assertThat(r.get("id").asText()).isEqualTo("row-" + (i + 1));
      for (int c = 0; c < 4; c++) {
        assertThat((float) r.get("outputs").get(0).get("data").get(c).asDouble())
            .isCloseTo(expected[i][c], org.assertj.core.data.Offset.offset(1e-5f));
      }
    }
    List<JsonNode> failures = readLines(output, "failures-");
    assertThat(failures).hasSize(1);
    assertThat(failures.get(0).get("line").asInt()).isEqualTo(778);
    assertThat(failures.get(0).get("error").asText()).contains("f3", "null");

    // A schema that cannot fill the model's input is refused before anything runs.
    assertRefused(request(input, outputs.resolve("arrow2")).setOptions(JobOptions.newBuilder()
        .putColumns("features", ColumnList.newBuilder().addNames("f0").addNames("f1").build())),
        Status.Code.INVALID_ARGUMENT, "needs 16 values");
  }

  /** A table of 16 float64 columns f0..f15 holding the features, written as an Arrow IPC file in batches of 300 rows. */
  static final class ArrowFileWriterHelper implements AutoCloseable {
    private final RootAllocator allocator;
    private final int rows;

    ArrowFileWriterHelper(RootAllocator allocator, int rows) {
      this.allocator = allocator;
      this.rows = rows;
    }

    void write(Path file, int nullRow) throws Exception {
      List<Float8Vector> columns = new java.util.ArrayList<>();
      for (int k = 0; k < 16; k++) {
        columns.add(new Float8Vector("f" + k, allocator));
      }
      try (VectorSchemaRoot root = new VectorSchemaRoot(List.copyOf(columns));
          var channel = Channels.newChannel(Files.newOutputStream(file));
          ArrowFileWriter writer = new ArrowFileWriter(root, null, channel)) {
        writer.start();
        for (int start = 0; start < rows; start += 300) {
          int count = Math.min(300, rows - start);
          for (int k = 0; k < 16; k++) {
            Float8Vector v = columns.get(k);
            v.allocateNew(count);
            for (int r = 0; r < count; r++) {
              if (start + r == nullRow && k == 3) {
                v.setNull(r);
              } else {
                v.set(r, JobTestSupport.features(start + r)[k]);
              }
            }
            v.setValueCount(count);
          }
          root.setRowCount(count);
          writer.writeBatch();
        }
        writer.end();
      }
    }

    @Override
    public void close() {}
  }

  @Test
  void cli_listsAndShowsJobs() throws Exception {
    Path input = data.resolve("cli.jsonl");
    JobTestSupport.writeJsonl(input, 20, Map.of());
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    PrintStream stdout = System.out;
    System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
    int submitExit;
    int listExit;
    try {
      String controlAddress = "127.0.0.1:" + server.controlPort();
      submitExit = new CommandLine(new Main()).execute("jobs", "--control", controlAddress, "submit", "mlp_classifier",
          "--input", input.toString(), "--output", outputs.resolve("cli").toString(), "--wait");
      listExit = new CommandLine(new Main()).execute("jobs", "--control", controlAddress, "list", "--state", "SUCCEEDED");
    } finally {
      System.setOut(stdout);
    }
    assertThat(submitExit).isZero();
    assertThat(listExit).isZero();
    assertThat(printed.toString(StandardCharsets.UTF_8)).contains("SUCCEEDED", "ok=20");
  }

  /**
   * A job's threads run at nice 19, and Linux hands a thread's nice value to every thread it starts: a
   * shared thread that a job thread happened to start first (the batcher's timer did) would serve every
   * online request at nice 19 from then on. After a job, only job threads may be niced.
   */
  @Test
  void afterAJob_onlyJobThreadsRunAtALowerPriority() throws Exception {
    assumeTrue(Files.isDirectory(Path.of("/proc/self/task")), "Linux only");
    Path input = data.resolve("priority.jsonl");
    JobTestSupport.writeJsonl(input, 5_000, Map.of());
    Job done = awaitFinished(stub().submitJob(request(input, outputs.resolve("priority")).build()).getId());
    assertThat(done.getState()).as(done.getMessage()).isEqualTo(JobState.SUCCEEDED);

    int own = niceOf(Path.of("/proc/thread-self"));
    Map<String, Integer> niced = new java.util.TreeMap<>();
    boolean jobThreadNiced = false;
    try (Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
      for (Path task : (Iterable<Path>) tasks::iterator) {
        String name;
        int nice;
        try {
          name = Files.readString(task.resolve("comm")).trim();
          nice = niceOf(task);
        } catch (java.io.IOException gone) {
          continue; // the thread ended meanwhile
        }
        if (name.startsWith("quiver-job-")) {
          jobThreadNiced |= nice > own;
        } else if (nice != own) {
          niced.put(name + " (" + task.getFileName() + ")", nice);
        }
      }
    }
    assertThat(jobThreadNiced).as("the job's own threads were lowered (setpriority)").isTrue();
    assertThat(niced).as("threads other than the jobs' with another nice value than this test's (%d)", own).isEmpty();
  }

  /** A thread's nice value: field 19 of /proc/.../stat, counted after the parenthesised name. */
  private static int niceOf(Path task) throws java.io.IOException {
    String stat = Files.readString(task.resolve("stat"));
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Integer.parseInt(fields[16]);
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.httpPort() + path))
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> get(String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.httpPort() + path)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }
}
