package io.quiver.k8s;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.VersionState;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.registry.s3.S3ProxyFixture;
import io.quiver.server.QuiverServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Two replicas of a Deployment on one repository (a shared directory, as base/ mounts it, or a bucket,
 * as overlays/s3 reads it): a load and a traffic split made through one replica's control plane reach
 * the other on its next poll of the desired state, with nothing but the repository between them.
 * The servers run with the manifests' flags apart from ports, repository and a short poll interval.
 */
class ReplicaConvergenceTest {
  private static final Logger log = LoggerFactory.getLogger(ReplicaConvergenceTest.class);
  static final long POLL_MS = 500;
  /** How long the other replica may take: the next poll, with room for a machine shared with other builds. */
  static final long CONVERGE_WITHIN_MS = POLL_MS + 20_000;

  @Test
  void aSharedDirectory_carriesLoadAndTrafficFromOneReplicaToTheOther(@TempDir Path repository, @TempDir Path cacheA,
      @TempDir Path cacheB) throws Exception {
    writeTwoVersions(repository);
    List<String> args = replicaArgs("--model-repository=" + repository);
    try (QuiverServer a = start(args, cacheA); QuiverServer b = start(args, cacheB)) {
      converge(a, b);
    }
  }

  @Test
  void aBucket_carriesLoadAndTrafficFromOneReplicaToTheOther(@TempDir Path local, @TempDir Path cacheA,
      @TempDir Path cacheB) throws Exception {
    writeTwoVersions(local);
    try (S3ProxyFixture s3 = S3ProxyFixture.start()) {
      s3.createBucket("models");
      s3.uploadTree("models", "repository/", local);
      List<String> args = replicaArgs("--model-repository=s3://models/repository", "--s3-endpoint=" + s3.endpoint(),
          "--s3-access-key=" + S3ProxyFixture.ACCESS_KEY, "--s3-secret-key=" + S3ProxyFixture.SECRET_KEY);
      try (QuiverServer a = start(args, cacheA); QuiverServer b = start(args, cacheB)) {
        converge(a, b);
      }
    }
  }

  /** The base Deployment's server flags, with the given repository flags and a short poll interval. */
  private static List<String> replicaArgs(String... repository) throws Exception {
    List<String> args = new ArrayList<>();
    for (String arg : DeploymentsTest.server(EnvoyConfigTest.pod("base", "quiver")).getArgs()) {
      if (!arg.startsWith("--model-repository=") && !arg.startsWith("--control-poll-ms=")) {
        args.add(arg);
      }
    }
    args.addAll(List.of(repository));
    args.add("--control-poll-ms=" + POLL_MS);
    return args;
  }

  private static QuiverServer start(List<String> args, Path cache) throws Exception {
    return new QuiverServer(ServerArgs.parse(ServerArgs.forTest(args, null, cache))).start();
  }

  private static void converge(QuiverServer a, QuiverServer b) throws Exception {
    ManagedChannel toA = NettyChannelBuilder.forAddress("127.0.0.1", a.controlPort()).usePlaintext().build();
    ManagedChannel toB = NettyChannelBuilder.forAddress("127.0.0.1", b.controlPort()).usePlaintext().build();
    try {
      var controlA = ModelControlGrpc.newBlockingStub(toA);
      var controlB = ModelControlGrpc.newBlockingStub(toB);
      // Both start on the config's policy (latest 1): version 2 only.
      assertThat(readyVersions(status(controlB))).containsExactly(2L);

      controlA.withDeadlineAfter(60, TimeUnit.SECONDS)
          .loadModel(LoadModelRequest.newBuilder().setName("simple").setAll(true).build());
      long loaded = await(controlB, s -> readyVersions(s).equals(List.of(1L, 2L)), "B loads versions 1 and 2");

      controlA.withDeadlineAfter(30, TimeUnit.SECONDS).setTraffic(SetTrafficRequest.newBuilder().setName("simple")
          .addWeights(TrafficWeight.newBuilder().setVersion(1).setWeight(90))
          .addWeights(TrafficWeight.newBuilder().setVersion(2).setWeight(10))
          .putLabels("stable", 1).putLabels("canary", 2).build());
      long split = await(controlB, s -> weights(s).equals(Map.of(1L, 90, 2L, 10)), "B routes 90/10");
      assertThat(labels(status(controlB))).containsEntry(1L, List.of("stable")).containsEntry(2L, List.of("canary"));
      log.info("replica B converged: load in {} ms, traffic split in {} ms (poll interval {} ms)", loaded, split, POLL_MS);
    } finally {
      toA.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      toB.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Milliseconds until {@code condition} held on the replica; fails after {@link #CONVERGE_WITHIN_MS}. */
  private static long await(ModelControlGrpc.ModelControlBlockingStub control, Predicate<ModelStatus> condition,
      String what) throws Exception {
    long start = System.nanoTime();
    ModelStatus last = null;
    while (System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(CONVERGE_WITHIN_MS)) {
      last = status(control);
      if (condition.test(last)) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      }
      Thread.sleep(50);
    }
    throw new AssertionError(what + ": not within " + CONVERGE_WITHIN_MS + " ms; last seen " + last);
  }

  private static ModelStatus status(ModelControlGrpc.ModelControlBlockingStub control) {
    return control.withDeadlineAfter(10, TimeUnit.SECONDS)
        .listModels(ListModelsRequest.newBuilder().setName("simple").build()).getModels(0);
  }

  private static List<Long> readyVersions(ModelStatus status) {
    return status.getVersionsList().stream().filter(v -> v.getState() == VersionState.READY)
        .map(VersionStatus::getVersion).sorted().toList();
  }

  private static Map<Long, Integer> weights(ModelStatus status) {
    Map<Long, Integer> weights = new TreeMap<>();
    status.getVersionsList().stream().filter(v -> v.getWeight() > 0).forEach(v -> weights.put(v.getVersion(), v.getWeight()));
    return weights;
  }

  private static Map<Long, List<String>> labels(ModelStatus status) {
    Map<Long, List<String>> labels = new TreeMap<>();
    status.getVersionsList().forEach(v -> labels.put(v.getVersion(), v.getLabelsList()));
    return labels;
  }

  /** simple/1 and simple/2 (the same model file twice). */
  private static void writeTwoVersions(Path repository) throws Exception {
    Path model = ExampleModels.writeSimple(repository);
    Path one = model.resolve("1");
    Path two = Files.createDirectories(model.resolve("2"));
    try (Stream<Path> files = Files.list(one)) {
      for (Path file : files.toList()) {
        Files.copy(file, two.resolve(file.getFileName()));
      }
    }
  }
}
