package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.fabric8.openshift.api.model.monitoring.v1.PrometheusRule;
import io.fabric8.openshift.api.model.monitoring.v1.Rule;
import io.fabric8.openshift.api.model.monitoring.v1.RuleGroup;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model-monitoring alert rules (monitoring/prometheus-rules.yaml) read series a live server
 * exports: a rule over a misspelt metric would never fire. The server monitors mlp_classifier with a
 * 1 s window and a reference captured from its first rows; requests go in until a window has closed,
 * so that the per-window gauges exist.
 */
class MonitoringRulesTest {
  static final Path RULES = Manifests.K8S.resolve("monitoring/prometheus-rules.yaml");

  @Test
  void everySeriesTheAlertsRead_isExportedByAMonitoredServer(@TempDir Path repository) throws Exception {
    PrometheusRule rules = Manifests.as(Manifests.documents(RULES).get(0), PrometheusRule.class);
    Set<String> read = new HashSet<>();
    int alerts = 0;
    for (RuleGroup group : rules.getSpec().getGroups()) {
      for (Rule rule : group.getRules()) {
        assertThat(rule.getAlert()).isNotBlank();
        assertThat(rule.getAnnotations()).containsKeys("summary", "description");
        read.addAll(AdapterValues.metricNames(rule.getExpr().getStrVal()));
        alerts++;
      }
    }
    assertThat(alerts).isGreaterThanOrEqualTo(5);
    read.removeIf(name -> !name.startsWith("quiver_"));
    assertThat(read).contains("quiver_monitoring_feature_flagged", "quiver_monitoring_samples_total");

    ExampleModels.writeMlpClassifier(repository);
    Path config = repository.resolve("mlp_classifier/config.pbtxt");
    StringBuilder parameters = new StringBuilder(Files.readString(config));
    for (String[] p : List.of(new String[] {"quiver.monitoring", "true"}, new String[] {"quiver.monitoring.window_seconds", "1"},
        new String[] {"quiver.monitoring.min_window_rows", "1"}, new String[] {"quiver.monitoring.reference_rows", "8"})) {
      parameters.append("parameters { key: \"").append(p[0]).append("\" value { string_value: \"").append(p[1]).append("\" } }\n");
    }
    Files.writeString(config, parameters);
    ServerOptions options = ServerArgs.parse(List.of("serve", "--model-repository=" + repository, "--host=127.0.0.1",
        "--grpc-port=0", "--http-port=-1", "--metrics-port=0", "--control-port=-1"));
    try (QuiverServer server = new QuiverServer(options).start()) {
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      Set<String> exported = new HashSet<>();
      try {
        var stub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
        // Until the series exist: the first window closes once it is 1 s old (a bounded wait for an event).
        for (int i = 0; i < 400 && !exported.containsAll(read); i++) {
          stub.withDeadlineAfter(10, TimeUnit.SECONDS).modelInfer(request());
          Thread.sleep(25);
          exported = exported(server);
        }
      } finally {
        channel.shutdownNow();
      }
      assertThat(exported).as("series read by monitoring/prometheus-rules.yaml").containsAll(read);
    }
  }

  private static Set<String> exported(QuiverServer server) throws Exception {
    String text = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
        URI.create("http://127.0.0.1:" + server.metricsPort() + "/metrics")).GET().build(),
        HttpResponse.BodyHandlers.ofString()).body();
    Set<String> names = new HashSet<>();
    for (String line : text.split("\n")) {
      if (!line.isEmpty() && !line.startsWith("#")) {
        names.add(line.substring(0, line.indexOf(line.contains("{") ? '{' : ' ')));
      }
    }
    return names;
  }

  private static ModelInferRequest request() {
    ByteBuffer bytes = ByteBuffer.allocate(8 * 16 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 8 * 16; i++) {
      bytes.putFloat((i % 7) * 0.5f);
    }
    return ModelInferRequest.newBuilder().setModelName("mlp_classifier")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("features").setDatatype("FP32")
            .addShape(8).addShape(16))
        .addRawInputContents(ByteString.copyFrom(bytes.flip())).build();
  }
}
