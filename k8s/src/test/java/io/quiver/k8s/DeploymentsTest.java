package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPort;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.openshift.api.model.monitoring.v1.ServiceMonitor;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Deployments of every kustomization, as rendered, against the real server: the args parse with
 * the server's command line; every declared port is one those args open, and every port they open to
 * the network is declared; probes hit a served path on an opened port; the grace period covers preStop
 * plus the shutdown grace; Services, the NetworkPolicy, the ServiceMonitor, the HPA and the PDB refer to
 * ports and workloads that exist; the pod is locked down (non-root, read-only root, no capabilities)
 * and every path the server writes is a volume. Then the base's args start a server here and its probe
 * endpoints answer.
 */
class DeploymentsTest {
  static final List<String> KUSTOMIZATIONS = List.of("base", "overlays/canary", "overlays/gpu", "overlays/s3",
      "overlays/keda");
  static final Set<String> SERVED_HTTP_PATHS = Set.of("/v2/health/live", "/v2/health/ready");

  /** The server container of a pod spec (named quiver). */
  static Container server(PodSpec pod) {
    return pod.getContainers().stream().filter(c -> c.getName().equals("quiver")).findFirst().orElseThrow();
  }

  /** Ports the server opens beyond loopback, by number, from its parsed options. */
  static Map<Integer, String> openedPorts(ServerOptions options) {
    Map<Integer, String> ports = new HashMap<>();
    ports.put(options.grpcPort(), "grpc");
    if (options.httpPort() >= 0) {
      ports.put(options.httpPort(), "http");
    }
    if (options.metricsPort() >= 0) {
      ports.put(options.metricsPort(), "metrics");
    }
    if (options.controlPlane() != null && !isLoopback(options.controlPlane().bindAddress())) {
      ports.put(options.controlPlane().port(), "control");
    }
    return ports;
  }

  static boolean isLoopback(String address) {
    return address.equals("127.0.0.1") || address.equals("localhost") || address.equals("::1");
  }

  static int resolvePort(IntOrString port, Container container) {
    if (port.getIntVal() != null) {
      return port.getIntVal();
    }
    return container.getPorts().stream().filter(p -> port.getStrVal().equals(p.getName()))
        .map(ContainerPort::getContainerPort).findFirst()
        .orElseThrow(() -> new AssertionError("no container port named " + port.getStrVal() + " in " + container.getName()));
  }

  static List<Deployment> deployments(String kustomization) throws Exception {
    List<Deployment> out = new ArrayList<>();
    for (ObjectNode doc : Manifests.render(kustomization).values()) {
      if (doc.path("kind").asText().equals("Deployment")) {
        out.add(Manifests.as(doc, Deployment.class));
      }
    }
    return out;
  }

  @Test
  void serverContainers_declareExactlyThePortsTheirArgsOpen_andProbeServedEndpoints() throws Exception {
    int checked = 0;
    for (String k : KUSTOMIZATIONS) {
      for (Deployment d : deployments(k)) {
        PodSpec pod = d.getSpec().getTemplate().getSpec();
        if (pod.getContainers().stream().noneMatch(c -> c.getName().equals("quiver"))) {
          continue;
        }
        String where = k + " " + d.getMetadata().getName();
        Container quiver = server(pod);
        ServerArgs.requireEqualsForm(quiver.getArgs(), where);
        ServerOptions options = ServerArgs.parse(quiver.getArgs());
        Map<Integer, String> opened = openedPorts(options);
        Set<Integer> declared = new HashSet<>();
        for (ContainerPort port : quiver.getPorts()) {
          assertThat(opened).as(where + " declares port %s", port.getContainerPort()).containsKey(port.getContainerPort());
          assertThat(port.getName()).as(where).isEqualTo(opened.get(port.getContainerPort()));
          declared.add(port.getContainerPort());
        }
        assertThat(declared).as(where + ": every port the server opens to the network is declared")
            .containsExactlyInAnyOrderElementsOf(opened.keySet());
        // The control plane: loopback only, reached through Envoy.
        assertThat(options.controlPlane()).as(where).isNotNull();
        assertThat(options.controlPlane().bindAddress()).as(where).isEqualTo("127.0.0.1");

        checkProbe(quiver.getStartupProbe(), quiver, options, where + " startupProbe");
        checkProbe(quiver.getReadinessProbe(), quiver, options, where + " readinessProbe");
        checkProbe(quiver.getLivenessProbe(), quiver, options, where + " livenessProbe");
        assertThat(quiver.getReadinessProbe().getHttpGet().getPath()).as(where).isEqualTo("/v2/health/ready");
        // Model loading happens before the gRPC port opens: the startup probe must allow for it.
        Probe startup = quiver.getStartupProbe();
        assertThat(startup.getPeriodSeconds() * startup.getFailureThreshold()).as(where + " startup budget (s)")
            .isGreaterThanOrEqualTo(300);

        long preStop = quiver.getLifecycle().getPreStop().getSleep().getSeconds();
        assertThat(preStop).as(where + " preStop").isPositive();
        assertThat((long) pod.getTerminationGracePeriodSeconds()).as(where + " terminationGracePeriodSeconds")
            .isGreaterThan(TimeUnit.MILLISECONDS.toSeconds(options.shutdownGraceMillis()) + preStop);
        checkLockedDown(pod, where);
        checkWritablePaths(pod, quiver, options, where);
        checked++;
      }
    }
    assertThat(checked).as("server Deployments checked (base, canary x2, gpu, s3, keda)").isEqualTo(6);
  }

  private static void checkProbe(Probe probe, Container c, ServerOptions options, String where) {
    assertThat(probe).as(where).isNotNull();
    if (probe.getGrpc() != null) {
      assertThat(probe.getGrpc().getPort()).as(where + " gRPC probe port").isEqualTo(options.grpcPort());
      // "" = the server; the inference service's name is also served.
      assertThat(probe.getGrpc().getService() == null ? "" : probe.getGrpc().getService()).as(where)
          .isIn("", "inference.GRPCInferenceService");
    } else {
      assertThat(probe.getHttpGet()).as(where + ": gRPC or httpGet").isNotNull();
      assertThat(resolvePort(probe.getHttpGet().getPort(), c)).as(where + " port").isEqualTo(options.httpPort());
      assertThat(probe.getHttpGet().getPath()).as(where + " path").isIn(SERVED_HTTP_PATHS);
    }
  }

  private static void checkLockedDown(PodSpec pod, String where) {
    assertThat(pod.getSecurityContext().getRunAsNonRoot()).as(where).isTrue();
    assertThat(pod.getSecurityContext().getSeccompProfile().getType()).as(where).isEqualTo("RuntimeDefault");
    List<Container> all = new ArrayList<>(pod.getContainers());
    all.addAll(pod.getInitContainers());
    for (Container c : all) {
      String w = where + " " + c.getName();
      assertThat(c.getSecurityContext().getReadOnlyRootFilesystem()).as(w + " readOnlyRootFilesystem").isTrue();
      assertThat(c.getSecurityContext().getAllowPrivilegeEscalation()).as(w + " allowPrivilegeEscalation").isFalse();
      assertThat(c.getSecurityContext().getCapabilities().getDrop()).as(w + " capabilities").containsExactly("ALL");
      assertThat(c.getResources().getRequests()).as(w + " requests").containsKeys("cpu", "memory");
      assertThat(c.getResources().getLimits()).as(w + " memory limit").containsKey("memory");
    }
  }

  /** /tmp, the model cache and TensorFlow's native cache are on volumes (the root filesystem is read-only). */
  private static void checkWritablePaths(PodSpec pod, Container quiver, ServerOptions options, String where) {
    Map<String, Volume> volumes = new HashMap<>();
    pod.getVolumes().forEach(v -> volumes.put(v.getName(), v));
    List<String> writable = new ArrayList<>();
    for (VolumeMount mount : quiver.getVolumeMounts()) {
      Volume volume = volumes.get(mount.getName());
      assertThat(volume).as(where + " volume " + mount.getName()).isNotNull();
      if (volume.getEmptyDir() != null || volume.getPersistentVolumeClaim() != null) {
        writable.add(mount.getMountPath());
      }
    }
    List<String> mustWrite = new ArrayList<>(List.of("/tmp"));
    if (options.s3() != null) {
      mustWrite.add(options.s3().cacheDir().toString());
    } else {
      mustWrite.add(options.modelRepository().toString()); // the desired state and uploads are written there
    }
    quiver.getEnv().stream().filter(e -> e.getName().equals("QUIVER_JAVACPP_CACHEDIR"))
        .forEach(e -> mustWrite.add(e.getValue()));
    for (String path : mustWrite) {
      assertThat(writable).as(where + ": " + path + " on a writable volume")
          .anySatisfy(m -> assertThat(path.equals(m) || path.startsWith(m + "/")).isTrue());
    }
  }

  @Test
  void servicesPoliciesMonitorsAndScalers_pointAtPortsAndWorkloadsThatExist() throws Exception {
    for (String k : KUSTOMIZATIONS) {
      Map<String, ObjectNode> resources = Manifests.render(k);
      List<Deployment> deployments = deployments(k);
      List<Service> services = new ArrayList<>();
      for (ObjectNode doc : resources.values()) {
        switch (doc.path("kind").asText()) {
          case "Service" -> services.add(Manifests.as(doc, Service.class));
          case "HorizontalPodAutoscaler" -> {
            var ref = Manifests.as(doc, HorizontalPodAutoscaler.class).getSpec().getScaleTargetRef();
            assertThat(resources).as(k + " HPA target").containsKey(ref.getKind() + "/" + ref.getName());
          }
          case "PodDisruptionBudget" -> assertThat(matchingPods(deployments,
              Manifests.as(doc, PodDisruptionBudget.class).getSpec().getSelector().getMatchLabels())).as(k + " PDB").isNotEmpty();
          case "NetworkPolicy" -> {
            NetworkPolicy policy = Manifests.as(doc, NetworkPolicy.class);
            List<PodSpec> pods = matchingPods(deployments, policy.getSpec().getPodSelector().getMatchLabels());
            assertThat(pods).as(k + " NetworkPolicy selects pods").isNotEmpty();
            for (var rule : policy.getSpec().getIngress()) {
              for (NetworkPolicyPort port : rule.getPorts()) {
                for (PodSpec pod : pods) {
                  assertThat(allContainers(pod).stream().flatMap(c -> c.getPorts().stream()).map(ContainerPort::getName))
                      .as(k + " NetworkPolicy port " + port.getPort().getStrVal()).contains(port.getPort().getStrVal());
                }
              }
            }
          }
          default -> { }
        }
      }
      for (Service service : services) {
        List<PodSpec> pods = matchingPods(deployments, service.getSpec().getSelector());
        assertThat(pods).as(k + " Service " + service.getMetadata().getName() + " selects pods").isNotEmpty();
        for (ServicePort port : service.getSpec().getPorts()) {
          for (PodSpec pod : pods) {
            assertThat(allContainers(pod).stream().flatMap(c -> c.getPorts().stream()).map(ContainerPort::getName))
                .as(k + " " + service.getMetadata().getName() + " targetPort").contains(port.getTargetPort().getStrVal());
          }
        }
      }
      for (ObjectNode doc : resources.values()) {
        if (doc.path("kind").asText().equals("ServiceMonitor")) {
          ServiceMonitor monitor = Manifests.as(doc, ServiceMonitor.class);
          List<Service> selected = services.stream().filter(s -> s.getMetadata().getLabels().entrySet()
              .containsAll(monitor.getSpec().getSelector().getMatchLabels().entrySet())).toList();
          assertThat(selected).as(k + " ServiceMonitor selects a Service").isNotEmpty();
          for (var endpoint : monitor.getSpec().getEndpoints()) {
            assertThat(selected.stream().flatMap(s -> s.getSpec().getPorts().stream()).map(ServicePort::getName))
                .as(k + " ServiceMonitor port").contains(endpoint.getPort());
            assertThat(endpoint.getPath()).isEqualTo("/metrics");
          }
        }
      }
    }
  }

  static List<PodSpec> matchingPods(List<Deployment> deployments, Map<String, String> selector) {
    return deployments.stream()
        .filter(d -> d.getSpec().getTemplate().getMetadata().getLabels().entrySet().containsAll(selector.entrySet()))
        .map(d -> d.getSpec().getTemplate().getSpec()).toList();
  }

  static List<Container> allContainers(PodSpec pod) {
    List<Container> all = new ArrayList<>(pod.getContainers());
    all.addAll(pod.getInitContainers());
    return all;
  }

  @Test
  void theBaseArgs_startAServerWhoseProbeEndpointsAnswer(@TempDir Path repository, @TempDir Path cache) throws Exception {
    ExampleModels.writeSimple(repository);
    Container quiver = server(deployments("base").get(0).getSpec().getTemplate().getSpec());
    ServerOptions options = ServerArgs.parse(ServerArgs.forTest(quiver.getArgs(), repository, cache));
    try (QuiverServer server = new QuiverServer(options).start()) {
      HttpClient http = HttpClient.newHttpClient();
      for (String path : SERVED_HTTP_PATHS) {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + server.httpPort() + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).as(path).isEqualTo(200);
      }
      HttpResponse<String> metrics = http.send(HttpRequest.newBuilder(
          URI.create("http://127.0.0.1:" + server.metricsPort() + "/metrics")).GET().build(), HttpResponse.BodyHandlers.ofString());
      assertThat(metrics.body()).contains("quiver_model_versions");
      ManagedChannel grpc = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
      try {
        // The kubelet's gRPC probe asks for service "" (Kubernetes' grpc probe without a service).
        assertThat(HealthGrpc.newBlockingStub(grpc).withDeadlineAfter(10, TimeUnit.SECONDS)
            .check(HealthCheckRequest.newBuilder().setService("").build()).getStatus())
            .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
        assertThat(ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(10, TimeUnit.SECONDS)
            .listModels(ListModelsRequest.getDefaultInstance()).getModelsList())
            .anySatisfy(m -> assertThat(m.getName()).isEqualTo("simple"));
      } finally {
        grpc.shutdownNow();
        control.shutdownNow();
      }
    }
  }
}
