package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.api.AnnotationsProto;
import com.google.api.HttpRule;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorSet;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.ExtensionRegistry;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor.MethodType;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Envoy configurations against the server and the pods they run in: clusters on the ports the
 * server's args open (HTTP/2 where Quiver speaks gRPC, HTTP/1.1 for its REST), listeners on the ports the
 * Envoy containers declare, mutual TLS on every listener but the probe's, files Envoy reads on the
 * volumes mounted where it looks, admin on loopback, retries only where the request cannot have run,
 * a timeout that honours grpc-timeout on unary gRPC routes, circuit breakers everywhere and outlier
 * detection on the edge. And the transcoder: its descriptor set is the one the build wrote from proto/,
 * it holds quiver.control.v1.ModelControl, and every google.api.http rule names an RPC the server
 * really answers.
 */
class EnvoyConfigTest {
  static final Path SIDECAR = Manifests.K8S.resolve("envoy/sidecar/envoy.yaml");
  static final Path EDGE = Manifests.K8S.resolve("envoy/edge/envoy.yaml");
  /** retry_on conditions under which the request was not run by Quiver (or never reached it). */
  static final Set<String> SAFE_RETRY_ON = Set.of("connect-failure", "refused-stream", "unavailable",
      "resource-exhausted", "retriable-status-codes");
  static final Set<Integer> SAFE_RETRY_STATUS = Set.of(429, 503);

  static PodSpec pod(String kustomization, String deployment) throws Exception {
    return DeploymentsTest.deployments(kustomization).stream()
        .filter(d -> d.getMetadata().getName().equals(deployment)).findFirst().orElseThrow()
        .getSpec().getTemplate().getSpec();
  }

  static Container envoyContainer(PodSpec pod) {
    return DeploymentsTest.allContainers(pod).stream().filter(c -> c.getName().equals("envoy")).findFirst().orElseThrow();
  }

  static List<HttpConnectionManager> managers(Listener listener) throws Exception {
    List<HttpConnectionManager> out = new ArrayList<>();
    for (FilterChain chain : listener.getFilterChainsList()) {
      for (Filter filter : chain.getFiltersList()) {
        out.add(filter.getTypedConfig().unpack(HttpConnectionManager.class));
      }
    }
    return out;
  }

  static List<Route> routes(HttpConnectionManager hcm) {
    List<Route> out = new ArrayList<>();
    for (VirtualHost host : hcm.getRouteConfig().getVirtualHostsList()) {
      out.addAll(host.getRoutesList());
    }
    return out;
  }

  @Test
  void bothConfigs_haveAdminOnLoopback_listenersOnDeclaredPorts_andMtlsEverywhereButTheProbe() throws Exception {
    checkListeners(EnvoyConfigs.bootstrap(SIDECAR), pod("base", "quiver"), "sidecar");
    checkListeners(EnvoyConfigs.bootstrap(EDGE), pod("overlays/canary", "quiver-edge"), "edge");
  }

  private static void checkListeners(Bootstrap bootstrap, PodSpec pod, String where) throws Exception {
    assertThat(bootstrap.getAdmin().getAddress().getSocketAddress().getAddress()).as(where + " admin").isEqualTo("127.0.0.1");
    Container envoy = envoyContainer(pod);
    Map<Integer, String> declared = new HashMap<>();
    envoy.getPorts().forEach(p -> declared.put(p.getContainerPort(), p.getName()));
    Set<Integer> listened = new HashSet<>();
    Map<String, String> mounts = new HashMap<>();
    Map<String, Volume> volumes = new HashMap<>();
    pod.getVolumes().forEach(v -> volumes.put(v.getName(), v));
    for (VolumeMount m : envoy.getVolumeMounts()) {
      mounts.put(m.getMountPath(), m.getName());
    }
    for (Listener listener : bootstrap.getStaticResources().getListenersList()) {
      int port = listener.getAddress().getSocketAddress().getPortValue();
      listened.add(port);
      assertThat(declared).as(where + " listener " + listener.getName() + " port is a container port").containsKey(port);
      for (HttpConnectionManager hcm : managers(listener)) {
        List<HttpFilter> filters = hcm.getHttpFiltersList();
        assertThat(filters.get(filters.size() - 1).getName()).as(where + " router last").isEqualTo("envoy.filters.http.router");
      }
      if (listener.getName().equals("health")) {
        assertThat(declared.get(port)).isEqualTo("envoy-health");
        assertThat(envoy.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/healthz");
        continue;
      }
      for (FilterChain chain : listener.getFilterChainsList()) {
        DownstreamTlsContext tls = chain.getTransportSocket().getTypedConfig().unpack(DownstreamTlsContext.class);
        assertThat(tls.getRequireClientCertificate().getValue()).as(where + " " + listener.getName() + " mTLS").isTrue();
        List<SdsSecretConfig> sds = new ArrayList<>(tls.getCommonTlsContext().getTlsCertificateSdsSecretConfigsList());
        sds.add(tls.getCommonTlsContext().getValidationContextSdsSecretConfig());
        for (SdsSecretConfig secret : sds) {
          checkSdsFile(secret, mounts, volumes, where);
        }
      }
    }
    assertThat(listened).as(where + " every Envoy container port has a listener").containsExactlyInAnyOrderElementsOf(declared.keySet());
  }

  /** The SDS file is in the ConfigMap mounted where Envoy looks; the PEM files it names are in the TLS Secret's mount. */
  private static void checkSdsFile(SdsSecretConfig secret, Map<String, String> mounts, Map<String, Volume> volumes,
      String where) throws Exception {
    Path sdsPath = Path.of(secret.getSdsConfig().getPathConfigSource().getPath());
    String volume = mounts.get(sdsPath.getParent().toString());
    assertThat(volume).as(where + " " + sdsPath + " is on a mount").isNotNull();
    String configMap = volumes.get(volume).getConfigMap().getName();
    Path dir = configMap.equals("quiver-envoy-sidecar") ? SIDECAR.getParent() : EDGE.getParent();
    assertThat(configMap).isIn("quiver-envoy-sidecar", "quiver-envoy-edge");
    Path local = dir.resolve(sdsPath.getFileName().toString());
    assertThat(local).as(where + " ConfigMap file").exists();
    assertThat(Files.readString(dir.resolve("kustomization.yaml"))).contains(sdsPath.getFileName().toString());
    for (var any : EnvoyConfigs.discoveryResponse(local).getResourcesList()) {
      Secret s = any.unpack(Secret.class);
      assertThat(s.getName()).isEqualTo(secret.getName());
      List<String> files = new ArrayList<>();
      if (s.hasTlsCertificate()) {
        files.add(s.getTlsCertificate().getCertificateChain().getFilename());
        files.add(s.getTlsCertificate().getPrivateKey().getFilename());
        files.add(s.getTlsCertificate().getWatchedDirectory().getPath() + "/x");
      } else {
        files.add(s.getValidationContext().getTrustedCa().getFilename());
        files.add(s.getValidationContext().getWatchedDirectory().getPath() + "/x");
      }
      for (String file : files) {
        String tlsVolume = mounts.get(Path.of(file).getParent().toString());
        assertThat(tlsVolume).as(where + " " + file + " on a mount").isNotNull();
        assertThat(volumes.get(tlsVolume).getSecret().getSecretName()).isEqualTo("quiver-envoy-tls");
      }
    }
  }

  @Test
  void sidecarClusters_pointAtThePortsTheServerArgsOpen_withTheRightProtocol() throws Exception {
    Bootstrap bootstrap = EnvoyConfigs.bootstrap(SIDECAR);
    ServerOptions options = ServerArgs.parse(DeploymentsTest.server(pod("base", "quiver")).getArgs());
    Map<String, Integer> expected = Map.of("quiver_grpc", options.grpcPort(), "quiver_rest", options.httpPort(),
        "quiver_control", options.controlPlane().port());
    Set<String> http2 = Set.of("quiver_grpc", "quiver_control");
    assertThat(bootstrap.getStaticResources().getClustersList()).extracting(Cluster::getName)
        .containsExactlyInAnyOrderElementsOf(expected.keySet());
    for (Cluster cluster : bootstrap.getStaticResources().getClustersList()) {
      SocketAddress address = cluster.getLoadAssignment().getEndpoints(0).getLbEndpoints(0).getEndpoint()
          .getAddress().getSocketAddress();
      assertThat(address.getAddress()).as(cluster.getName()).isEqualTo("127.0.0.1");
      assertThat(address.getPortValue()).as(cluster.getName()).isEqualTo(expected.get(cluster.getName()));
      assertThat(speaksHttp2(cluster)).as(cluster.getName() + " HTTP/2").isEqualTo(http2.contains(cluster.getName()));
      assertThat(cluster.getCircuitBreakers().getThresholdsList()).as(cluster.getName() + " circuit breakers").isNotEmpty();
    }
    assertThat(options.controlPlane().bindAddress()).isEqualTo("127.0.0.1");
    checkRoutes(bootstrap, "sidecar");
  }

  static boolean speaksHttp2(Cluster cluster) throws Exception {
    var any = cluster.getTypedExtensionProtocolOptionsMap().get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    return any != null && any.unpack(HttpProtocolOptions.class).getExplicitHttpConfig().hasHttp2ProtocolOptions();
  }

  @Test
  void edgeClusters_reachTheTracksServerPorts_withOutlierDetectionAndHealthChecks() throws Exception {
    Bootstrap bootstrap = EnvoyConfigs.bootstrap(EDGE);
    Map<String, Service> services = new HashMap<>();
    for (var doc : Manifests.render("overlays/canary").values()) {
      if (doc.path("kind").asText().equals("Service")) {
        Service s = Manifests.as(doc, Service.class);
        services.put(s.getMetadata().getName(), s);
      }
    }
    List<Deployment> deployments = DeploymentsTest.deployments("overlays/canary");
    for (Cluster cluster : bootstrap.getStaticResources().getClustersList()) {
      assertThat(cluster.getType()).isEqualTo(Cluster.DiscoveryType.STRICT_DNS);
      SocketAddress address = cluster.getLoadAssignment().getEndpoints(0).getLbEndpoints(0).getEndpoint()
          .getAddress().getSocketAddress();
      Service service = services.get(address.getAddress());
      assertThat(service).as(cluster.getName() + " resolves a Service of the overlay").isNotNull();
      assertThat(service.getSpec().getClusterIP()).as("headless: one endpoint per pod").isEqualTo("None");
      ServicePort port = service.getSpec().getPorts().stream().filter(p -> p.getPort() == address.getPortValue())
          .findFirst().orElseThrow();
      List<PodSpec> pods = DeploymentsTest.matchingPods(deployments, service.getSpec().getSelector());
      assertThat(pods).as(service.getMetadata().getName()).hasSize(1);
      Container quiver = DeploymentsTest.server(pods.get(0));
      ServerOptions options = ServerArgs.parse(quiver.getArgs());
      int target = quiver.getPorts().stream().filter(p -> p.getName().equals(port.getTargetPort().getStrVal()))
          .map(ContainerPort::getContainerPort).findFirst().orElseThrow();
      boolean grpc = target == options.grpcPort();
      assertThat(grpc || target == options.httpPort()).as(cluster.getName()).isTrue();
      assertThat(speaksHttp2(cluster)).as(cluster.getName() + " HTTP/2 iff gRPC").isEqualTo(grpc);
      assertThat(cluster.hasOutlierDetection()).as(cluster.getName()).isTrue();
      assertThat(cluster.getCircuitBreakers().getThresholdsList()).as(cluster.getName()).isNotEmpty();
      var healthCheck = cluster.getHealthChecks(0);
      if (grpc) {
        assertThat(healthCheck.getGrpcHealthCheck().getServiceName()).isEqualTo("inference.GRPCInferenceService");
      } else {
        assertThat(healthCheck.getHttpHealthCheck().getPath()).isEqualTo("/v2/health/ready");
      }
    }
    checkRoutes(bootstrap, "edge");
  }

  /** Every route's clusters exist; retries only on safe conditions; unary gRPC honours grpc-timeout; no retries on streams or the control plane. */
  private static void checkRoutes(Bootstrap bootstrap, String where) throws Exception {
    Set<String> clusters = new HashSet<>();
    bootstrap.getStaticResources().getClustersList().forEach(c -> clusters.add(c.getName()));
    int unary = 0;
    for (Listener listener : bootstrap.getStaticResources().getListenersList()) {
      for (HttpConnectionManager hcm : managers(listener)) {
        for (Route route : routes(hcm)) {
          if (route.hasDirectResponse()) {
            continue;
          }
          RouteAction action = route.getRoute();
          List<String> targets = new ArrayList<>();
          if (action.hasWeightedClusters()) {
            for (WeightedCluster.ClusterWeight w : action.getWeightedClusters().getClustersList()) {
              targets.add(w.getName());
              assertThat(w.getWeight().getValue()).isPositive();
            }
          } else {
            targets.add(action.getCluster());
          }
          assertThat(clusters).as(where + " route " + route.getMatch()).containsAll(targets);
          String match = route.getMatch().getPath() + route.getMatch().getPrefix();
          boolean stream = match.contains("ModelStreamInfer");
          boolean control = match.startsWith("/quiver.control.v1.ModelControl/");
          if (action.hasRetryPolicy()) {
            assertThat(stream || control).as(where + " " + match + ": streams and control calls are never retried").isFalse();
            for (String condition : action.getRetryPolicy().getRetryOn().split(",")) {
              assertThat(condition).as(where + " " + match + " retry_on").isIn(SAFE_RETRY_ON);
            }
            assertThat(action.getRetryPolicy().getRetriableStatusCodesList()).isSubsetOf(SAFE_RETRY_STATUS);
          }
          if (match.startsWith("/inference.GRPCInferenceService/") && !stream) {
            unary++;
            assertThat(action.getMaxStreamDuration().hasGrpcTimeoutHeaderMax()).as(where + " " + match + " grpc-timeout").isTrue();
            assertThat(action.getTimeout().getSeconds()).as(where + " " + match + " default timeout").isPositive();
          }
          if (stream || control) {
            assertThat(action.hasTimeout() && action.getTimeout().getSeconds() == 0).as(where + " " + match + " no timeout on streams").isTrue();
          }
        }
      }
    }
    assertThat(unary).as(where + " has a unary gRPC route").isPositive();
  }

  // ---- the gRPC-JSON transcoder and the descriptor set the build writes ----------------------------

  static FileDescriptorSet descriptorSet() throws Exception {
    Path path = Path.of(System.getProperty("quiver.descriptorSet", "target/descriptor-sets/quiver-proto-descriptor-set.protobin"));
    assertThat(path).as("the descriptor set the proto module's build writes (run through Maven)").exists();
    ExtensionRegistry registry = ExtensionRegistry.newInstance();
    AnnotationsProto.registerAllExtensions(registry);
    return FileDescriptorSet.parseFrom(Files.readAllBytes(path), registry);
  }

  /** The set's files, built with their imports in order (include_imports puts dependencies first). */
  static Map<String, FileDescriptor> files(FileDescriptorSet set) throws Exception {
    Map<String, FileDescriptor> built = new HashMap<>();
    for (FileDescriptorProto proto : set.getFileList()) {
      FileDescriptor[] deps = proto.getDependencyList().stream().map(built::get).toArray(FileDescriptor[]::new);
      assertThat(deps).as(proto.getName() + " imports are in the set (include_imports)").doesNotContainNull();
      built.put(proto.getName(), FileDescriptor.buildFrom(proto, deps));
    }
    return built;
  }

  static GrpcJsonTranscoder transcoder() throws Exception {
    for (Listener listener : EnvoyConfigs.bootstrap(SIDECAR).getStaticResources().getListenersList()) {
      for (HttpConnectionManager hcm : managers(listener)) {
        for (HttpFilter filter : hcm.getHttpFiltersList()) {
          if (filter.getTypedConfig().is(GrpcJsonTranscoder.class)) {
            return filter.getTypedConfig().unpack(GrpcJsonTranscoder.class);
          }
        }
      }
    }
    throw new AssertionError("no grpc_json_transcoder in the sidecar");
  }

  @Test
  void transcoder_readsTheBuildsDescriptorSet_fromWhereTheInitContainerPutsIt() throws Exception {
    GrpcJsonTranscoder transcoder = transcoder();
    PodSpec pod = pod("base", "quiver");
    Path descriptor = Path.of(transcoder.getProtoDescriptor());
    Container envoy = envoyContainer(pod);
    String volume = envoy.getVolumeMounts().stream().filter(m -> m.getMountPath().equals(descriptor.getParent().toString()))
        .map(VolumeMount::getName).findFirst().orElseThrow(() -> new AssertionError(descriptor + " is not on a mount"));
    Container copier = pod.getInitContainers().stream().filter(c -> c.getName().equals("envoy-descriptors")).findFirst().orElseThrow();
    assertThat(pod.getInitContainers().indexOf(copier)).as("copied before Envoy starts")
        .isLessThan(pod.getInitContainers().indexOf(envoy));
    VolumeMount copierMount = copier.getVolumeMounts().stream().filter(m -> m.getName().equals(volume)).findFirst().orElseThrow();
    List<String> command = copier.getCommand();
    assertThat(command).hasSize(3).first().isEqualTo("cp");
    assertThat(Path.of(command.get(2))).isEqualTo(Path.of(copierMount.getMountPath()).resolve(descriptor.getFileName()));
    // The image puts the build's descriptor set where the init container copies it from.
    Path shipped = Path.of(command.get(1));
    String dockerfile = Files.readString(Manifests.K8S.resolve("Dockerfile"));
    assertThat(dockerfile).contains("cp proto/target/generated-resources/protobuf/descriptor-sets/" + shipped.getFileName()
        + " /out/share/").contains("COPY --from=build --chmod=a+rX /out /opt/quiver");
    assertThat(shipped.getParent()).isEqualTo(Path.of("/opt/quiver/share"));
    assertThat(Files.readString(Manifests.K8S.resolveSibling("proto/pom.xml")))
        .contains("<descriptorSetFileName>" + shipped.getFileName() + "</descriptorSetFileName>");
  }

  private static final Pattern VARIABLE = Pattern.compile("\\{([a-z_][a-z0-9_.]*)(=[^}]*)?}");

  @Test
  void theDescriptorSet_holdsModelControl_andEveryHttpRuleMapsToARealRpc(@TempDir Path repository) throws Exception {
    GrpcJsonTranscoder transcoder = transcoder();
    Map<String, FileDescriptor> files = files(descriptorSet());
    Map<String, ServiceDescriptor> services = new HashMap<>();
    files.values().forEach(f -> f.getServices().forEach(s -> services.put(s.getFullName(), s)));
    assertThat(transcoder.getServicesList()).containsExactly("quiver.control.v1.ModelControl");
    ServiceDescriptor control = services.get("quiver.control.v1.ModelControl");
    assertThat(control).as("quiver.control.v1.ModelControl in the descriptor set").isNotNull();
    // The same RPCs as the service the server binds (its generated stubs).
    Set<String> served = new HashSet<>();
    ModelControlGrpc.getServiceDescriptor().getMethods().forEach(m -> served.add(m.getBareMethodName()));
    Set<String> described = new HashSet<>();
    control.getMethods().forEach(m -> described.add(m.getName()));
    assertThat(described).isEqualTo(served);

    Map<String, DynamicMessage> requests = new HashMap<>();
    int rules = 0;
    for (MethodDescriptor method : control.getMethods()) {
      if (!method.getOptions().hasExtension(AnnotationsProto.http)) {
        continue;
      }
      HttpRule rule = method.getOptions().getExtension(AnnotationsProto.http);
      rules++;
      String template = switch (rule.getPatternCase()) {
        case GET -> rule.getGet();
        case POST -> rule.getPost();
        case PUT -> rule.getPut();
        case DELETE -> rule.getDelete();
        case PATCH -> rule.getPatch();
        default -> throw new AssertionError(method.getName() + ": unsupported pattern " + rule.getPatternCase());
      };
      assertThat(template).as(method.getName()).startsWith("/v1/");
      Descriptor input = method.getInputType();
      DynamicMessage.Builder request = DynamicMessage.newBuilder(input);
      Matcher m = VARIABLE.matcher(template);
      while (m.find()) {
        var field = input.findFieldByName(m.group(1));
        assertThat(field).as(method.getName() + " path variable {" + m.group(1) + "} is a field of " + input.getName()).isNotNull();
        request.setField(field, "simple");
      }
      if (!rule.getBody().isEmpty() && !rule.getBody().equals("*")) {
        assertThat(input.findFieldByName(rule.getBody())).as(method.getName() + " body field").isNotNull();
      }
      requests.put(method.getName(), request.build());
    }
    assertThat(rules).as("every RPC is annotated").isEqualTo(control.getMethods().size());

    // Each rule's RPC, called on a live server exactly as the transcoder would (the descriptor set's own
    // message types, the path variables filled in), is answered by the server: never UNIMPLEMENTED.
    ExampleModels.writeSimple(repository);
    ServerOptions options = ServerArgs.parse(List.of("serve", "--model-repository=" + repository, "--host=127.0.0.1",
        "--grpc-port=0", "--http-port=-1", "--metrics-port=-1", "--control-port=0"));
    try (QuiverServer server = new QuiverServer(options).start()) {
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
      try {
        for (MethodDescriptor method : control.getMethods()) {
          Status status = call(channel, method, requests.get(method.getName()));
          assertThat(status.getCode()).as(method.getName() + ": " + status).isNotEqualTo(Status.Code.UNIMPLEMENTED);
        }
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  /** Calls one method with dynamic messages; returns how it ended (OK, or the error). */
  private static Status call(ManagedChannel channel, MethodDescriptor method, DynamicMessage request) throws Exception {
    MethodType type = method.isClientStreaming() ? (method.isServerStreaming() ? MethodType.BIDI_STREAMING
        : MethodType.CLIENT_STREAMING) : method.isServerStreaming() ? MethodType.SERVER_STREAMING : MethodType.UNARY;
    io.grpc.MethodDescriptor<DynamicMessage, DynamicMessage> grpcMethod =
        io.grpc.MethodDescriptor.<DynamicMessage, DynamicMessage>newBuilder()
            .setType(type)
            .setFullMethodName(io.grpc.MethodDescriptor.generateFullMethodName(
                method.getService().getFullName(), method.getName()))
            .setRequestMarshaller(ProtoUtils.marshaller(DynamicMessage.getDefaultInstance(method.getInputType())))
            .setResponseMarshaller(ProtoUtils.marshaller(DynamicMessage.getDefaultInstance(method.getOutputType())))
            .build();
    var call = channel.newCall(grpcMethod, CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS));
    CompletableFuture<Status> done = new CompletableFuture<>();
    StreamObserver<DynamicMessage> responses = new StreamObserver<>() {
      @Override
      public void onNext(DynamicMessage value) {
        if (method.isServerStreaming()) {
          call.cancel("one event is enough", null); // WatchModels streams until cancelled
          done.complete(Status.OK);
        }
      }

      @Override
      public void onError(Throwable t) {
        done.complete(Status.fromThrowable(t));
      }

      @Override
      public void onCompleted() {
        done.complete(Status.OK);
      }
    };
    try {
      if (method.isClientStreaming()) {
        StreamObserver<DynamicMessage> requests = ClientCalls.asyncClientStreamingCall(call, responses);
        requests.onNext(request);
        requests.onCompleted();
      } else if (method.isServerStreaming()) {
        ClientCalls.asyncServerStreamingCall(call, request, responses);
      } else {
        ClientCalls.asyncUnaryCall(call, request, responses);
      }
    } catch (StatusRuntimeException e) {
      return e.getStatus();
    }
    return done.get(20, TimeUnit.SECONDS);
  }
}
