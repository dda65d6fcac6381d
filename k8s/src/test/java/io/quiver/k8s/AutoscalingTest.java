package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The autoscaling chain holds together: the HPA asks for custom metrics that a Prometheus Adapter rule
 * provides; every series the rules and the KEDA query read is one a live server exports (Quiver's and
 * Triton's names); KEDA's overlay scales the server Deployment and drops the HPA; CPU stays as fallback.
 */
class AutoscalingTest {
  static final Path ADAPTER = Manifests.K8S.resolve("autoscaling/prometheus-adapter-values.yaml");

  @Test
  void hpa_asksForMetricsTheAdapterProvides_andKeepsCpuAsFallback() throws Exception {
    AdapterValues adapter = AdapterValues.read(ADAPTER);
    Set<String> provided = new HashSet<>();
    adapter.rules().custom().forEach(r -> provided.add(r.name().as()));
    HorizontalPodAutoscaler hpa = Manifests.as(Manifests.render("base").get("HorizontalPodAutoscaler/quiver"),
        HorizontalPodAutoscaler.class);
    boolean cpu = false;
    int custom = 0;
    for (MetricSpec metric : hpa.getSpec().getMetrics()) {
      if (metric.getPods() != null) {
        assertThat(provided).contains(metric.getPods().getMetric().getName());
        custom++;
      }
      cpu |= metric.getResource() != null && metric.getResource().getName().equals("cpu");
    }
    assertThat(custom).isPositive();
    assertThat(cpu).as("CPU fallback").isTrue();
    for (AdapterValues.Rule rule : adapter.rules().custom()) {
      assertThat(rule.resources().overrides()).containsKeys("namespace", "pod");
    }
  }

  @Test
  void kedaOverlay_scalesTheServerDeployment_insteadOfTheHpa() throws Exception {
    var resources = Manifests.render("overlays/keda");
    assertThat(resources).doesNotContainKey("HorizontalPodAutoscaler/quiver").containsKey("Deployment/quiver");
    ObjectNode scaled = resources.get("ScaledObject/quiver");
    assertThat(scaled.path("spec").path("scaleTargetRef").path("name").asText()).isEqualTo("quiver");
    List<String> types = new ArrayList<>();
    scaled.path("spec").path("triggers").forEach(t -> types.add(t.path("type").asText()));
    assertThat(types).containsExactly("prometheus", "cpu");
  }

  @Test
  void everySeriesTheScalersRead_isExportedByALiveServer(@TempDir Path repository) throws Exception {
    List<String> queries = new ArrayList<>();
    for (AdapterValues.Rule rule : AdapterValues.read(ADAPTER).rules().custom()) {
      queries.add(rule.seriesQuery());
      queries.add(rule.metricsQuery());
    }
    Manifests.render("overlays/keda").get("ScaledObject/quiver").path("spec").path("triggers")
        .forEach(t -> { if (t.has("metadata") && t.path("metadata").has("query")) queries.add(t.path("metadata").path("query").asText()); });
    Set<String> read = new HashSet<>();
    queries.forEach(q -> read.addAll(AdapterValues.metricNames(q)));
    assertThat(read).contains("quiver_inflight_requests", "nv_inference_pending_request_count");

    ExampleModels.writeSimple(repository);
    ServerOptions options = ServerArgs.parse(List.of("serve", "--model-repository=" + repository, "--host=127.0.0.1",
        "--grpc-port=0", "--http-port=-1", "--metrics-port=0", "--control-port=-1"));
    try (QuiverServer server = new QuiverServer(options).start()) {
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      try {
        // One request, so that the per-request series (success counts, durations) exist too.
        GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS).modelInfer(simple());
      } finally {
        channel.shutdownNow();
      }
      String text = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + server.metricsPort() + "/metrics")).GET().build(),
          HttpResponse.BodyHandlers.ofString()).body();
      Set<String> exported = new HashSet<>();
      for (String line : text.split("\n")) {
        if (!line.isEmpty() && !line.startsWith("#")) {
          exported.add(line.substring(0, line.indexOf(line.contains("{") ? '{' : ' ')));
        }
      }
      assertThat(exported).as("series read by the Prometheus Adapter rules and KEDA").containsAll(read);
    }
  }

  static ModelInferRequest simple() {
    ByteBuffer bytes = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName("simple");
    for (String name : List.of("INPUT0", "INPUT1")) {
      request.addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName(name).setDatatype("INT32")
          .addShape(1).addShape(16));
      request.addRawInputContents(com.google.protobuf.ByteString.copyFrom(bytes.array()));
    }
    return request.build();
  }
}
