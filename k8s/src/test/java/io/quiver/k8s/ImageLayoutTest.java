package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the image runs, without an image (no Docker engine here): the Dockerfile's entrypoint script
 * (k8s/image/quiver) started as a process over the layout the Dockerfile copies (quiver-server.jar
 * beside lib/, as the server module's build leaves them), with KServe's stock Triton args. The server
 * answers its probes, and SIGTERM stops it gracefully within the shutdown grace.
 */
class ImageLayoutTest {
  private static final Pattern SERVING = Pattern.compile("serving gRPC on [^,]*:(\\d+), REST on (\\d+), metrics on (\\d+)");

  @Test
  void entrypoint_startsTheServerJar_withTritonsArgs_andStopsOnSigterm(@TempDir Path models, @TempDir Path tmp)
      throws Exception {
    Path jar = Path.of(System.getProperty("quiver.serverJar", "../server/target/quiver-server.jar"));
    assumeTrue(Files.isRegularFile(jar) && Files.isDirectory(jar.resolveSibling("lib")),
        "needs the server module packaged (./mvnw verify builds it before this module)");
    String dockerfile = Files.readString(Manifests.K8S.resolve("Dockerfile"));
    assertThat(dockerfile).contains("cp server/target/quiver-server.jar /out/", "cp server/target/lib/*.jar /out/lib/",
        "cp k8s/image/quiver /out/bin/quiver", "ENTRYPOINT [\"/opt/quiver/bin/quiver\"]", "QUIVER_HOME=/opt/quiver");
    ExampleModels.writeSimple(models);

    List<String> command = new ArrayList<>(List.of(Manifests.K8S.resolve("image/quiver").toString()));
    command.addAll(ServerArgs.forTest(KServeTest.STOCK_TRITON_ARGS, models, tmp, "--shutdown-grace-ms=5000"));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().put("QUIVER_HOME", jar.getParent().toAbsolutePath().toString());
    builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
    builder.environment().put("QUIVER_JAVA_OPTS", "-Xmx512m -Djava.io.tmpdir=" + tmp);
    Process process = builder.start();
    StringBuilder output = new StringBuilder();
    CompletableFuture<int[]> ports = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = in.readLine()) != null; ) {
          synchronized (output) {
            output.append(line).append('\n');
          }
          Matcher m = SERVING.matcher(line);
          if (m.find()) {
            ports.complete(new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3))});
          }
        }
      } catch (Exception e) {
        ports.completeExceptionally(e);
      }
      ports.completeExceptionally(new AssertionError("the server exited before serving"));
    }, "entrypoint-output");
    reader.start();
    try {
      int[] p = ports.get(120, TimeUnit.SECONDS);
      HttpClient http = HttpClient.newHttpClient();
      assertThat(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + p[1] + "/v2/health/ready")).build(),
          HttpResponse.BodyHandlers.discarding()).statusCode()).isEqualTo(200);
      assertThat(http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + p[2] + "/metrics")).build(),
          HttpResponse.BodyHandlers.ofString()).body()).contains("nv_inference_request_success");

      // SIGTERM, as the kubelet sends after preStop (through the handle: Process.destroy also closes our pipes)
      process.toHandle().destroy();
      assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("stopped after SIGTERM").isTrue();
      reader.join(10_000);
      synchronized (output) {
        assertThat(output).as("exit " + process.exitValue()).contains("shutting down: NOT_SERVING").contains("stopped");
      }
      assertThat(process.exitValue()).as("exit status after SIGTERM (128 + 15)").isEqualTo(143);
    } catch (Throwable t) {
      synchronized (output) {
        throw new AssertionError("entrypoint output:\n" + output, t);
      }
    } finally {
      process.destroyForcibly();
    }
  }
}
