package io.quiver.server.jobs;

import static io.quiver.server.jobs.JobTestSupport.assertResults;
import static io.quiver.server.jobs.JobTestSupport.readLines;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.quiver.examples.ExampleModels;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server process killed with SIGKILL in the middle of a 40,000-record job, then started again on
 * the same repository: the new process resumes the job from its last committed chunk, and the output
 * holds exactly one result per input record (no duplicate, none missing), each equal to direct
 * inference. The servers are real child JVMs started from this build's classes.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class BatchJobsRestartTest {
  private static final Pattern REST_PORT = Pattern.compile("REST on (\\d+)");
  @TempDir Path dir;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** A running child server and its REST port. */
  private record Child(Process process, int restPort, List<String> log) {}

  private Child startServer(Path repository, Path data, Path out) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> command = List.of(java, "-Xmx512m", "--add-opens=java.base/java.nio=ALL-UNNAMED", "-cp", classpath,
        "io.quiver.server.Main", "serve", "--model-repository", repository.toString(), "--host", "127.0.0.1",
        "--grpc-port", "0", "--http-port", "0", "--metrics-port", "-1", "--control-port", "-1",
        "--jobs-input-root", data.toString(), "--jobs-output-root", out.toString(), "--shutdown-grace-ms", "1000");
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    List<String> log = Collections.synchronizedList(new ArrayList<>());
    CompletableFuture<Integer> port = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          log.add(line);
          Matcher m = REST_PORT.matcher(line);
          if (!port.isDone() && m.find()) {
            port.complete(Integer.parseInt(m.group(1)));
          }
        }
      } catch (Exception e) {
        // the process was killed
      }
      port.completeExceptionally(new IllegalStateException("the server exited before serving: " + String.join("\n", log)));
    }, "child-server-log");
    reader.setDaemon(true);
    reader.start();
    long t0 = System.nanoTime();
    Child child = new Child(process, port.get(90, TimeUnit.SECONDS), log);
    System.out.printf("child server serving after %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    return child;
  }

  private JsonNode job(Child child, String id) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + child.restPort() + "/v2/jobs/" + id)).GET().build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    return JobTestSupport.JSON.readTree(r.body());
  }

  @Test
  void killDashNine_midJob_thenRestart_completesWithNoDuplicateOrMissingRecord() throws Exception {
    int n = 40_000; // the 100,000-record check against direct inference is BatchJobsTest's; this one is about the kill
    Path repository = dir.resolve("repo");
    Path modelFile = ExampleModels.writeMlpClassifier(repository).resolve("1/model.onnx");
    Path data = Files.createDirectories(dir.resolve("data"));
    Path out = Files.createDirectories(dir.resolve("out"));
    Path input = data.resolve("requests.jsonl");
    JobTestSupport.writeJsonl(input, n, Map.of());
    Path output = out.resolve("run");

    Child first = startServer(repository, data, out);
    String id;
    long committedAtKill;
    try {
      // A rate limit makes the job last long enough to be killed in the middle (at least 4 s).
      String body = "{\"model\":\"mlp_classifier\",\"input_uri\":\"" + input + "\",\"output_uri\":\"" + output
          + "\",\"options\":{\"records_per_chunk\":2000,\"max_records_per_second\":10000}}";
      HttpResponse<String> submitted = http.send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + first.restPort() + "/v2/jobs")).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(submitted.statusCode()).as(submitted.body()).isEqualTo(200);
      id = JobTestSupport.JSON.readTree(submitted.body()).get("id").asText();
      JobTestSupport.waitUntil(() -> {
        try {
          return job(first, id).get("chunks_committed").asLong() >= 3;
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }, 120_000, "three committed chunks");
      System.out.printf("killing the server: %s%n", job(first, id));
    } finally {
      first.process().destroyForcibly(); // SIGKILL: no shutdown hook, no final state written
      first.process().waitFor(30, TimeUnit.SECONDS);
    }
    JsonNode stored = JobTestSupport.JSON.readTree(Files.readString(repository.resolve(".quiver-jobs/" + id + ".json")));
    assertThat(stored.get("job").get("state").asText()).isEqualTo("RUNNING");
    committedAtKill = stored.get("job").get("records_committed").asLong();
    assertThat(committedAtKill).isGreaterThanOrEqualTo(6_000).isLessThan(n);

    Child second = startServer(repository, data, out);
    try {
      JsonNode[] last = new JsonNode[1];
      JobTestSupport.waitUntil(() -> {
        try {
          last[0] = job(second, id);
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
        String state = last[0].get("state").asText();
        return state.equals("SUCCEEDED") || state.equals("FAILED") || state.equals("CANCELLED");
      }, 150_000, "the resumed job to finish");
      System.out.printf("resumed job finished: %s%n", last[0]);
      assertThat(last[0].get("state").asText()).as(last[0].toString()).isEqualTo("SUCCEEDED");
      assertThat(last[0].get("records_succeeded").asLong()).isEqualTo(n);
      assertThat(last[0].get("records_committed").asLong()).isEqualTo(n);
      assertThat(String.join("\n", second.log())).contains("from record " + committedAtKill);
    } finally {
      second.process().destroy();
      second.process().waitFor(30, TimeUnit.SECONDS);
    }
    List<JsonNode> results = readLines(output, "results-");
    assertResults(results, JobTestSupport.directInference(modelFile, n), Set.of());
    try (var files = Files.list(output)) {
      assertThat(files.map(p -> p.getFileName().toString()).filter(f -> f.startsWith("results-")).count()).isEqualTo(20); // 40,000 / 2,000
    }
  }
}
