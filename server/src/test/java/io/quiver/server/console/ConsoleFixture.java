package io.quiver.server.console;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.server.QuiverServer;
import io.quiver.server.ServerOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Quiver (as server ServerFixture starts one: loopback, ephemeral ports) serving the example models
 * plus {@code canary_demo} (an FP32 identity with versions 1 and 2, both loaded), with the control plane
 * on and the console on; gRPC channels to its data and control planes. Close it when done.
 */
final class ConsoleFixture implements AutoCloseable {
  static final String CANARY = "canary_demo";

  final QuiverServer server;
  final ManagedChannel data;
  final ManagedChannel control;
  final String base;

  /** @param security the security file, or null for none */
  ConsoleFixture(Path repository, Path security) throws Exception {
    writeRepository(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, -1, 8 * 1024 * 1024, false)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"));
    if (security != null) {
      options = options.withSecurityConfig(security);
    }
    server = new QuiverServer(options).start();
    data = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
    base = "http://127.0.0.1:" + server.httpPort();
  }

  static void writeRepository(Path repository) throws IOException {
    ExampleModels.writeExampleRepository(repository);
    Path scratch = Files.createTempDirectory("quiver-canary-");
    try {
      ExampleModels.writeIdentityFp32(scratch);
      Path model = repository.resolve(CANARY);
      Files.createDirectories(model.resolve("1"));
      Files.createDirectories(model.resolve("2"));
      Path onnx = scratch.resolve("identity_fp32").resolve("1").resolve(ExampleModels.MODEL_FILE);
      Files.copy(onnx, model.resolve("1").resolve(ExampleModels.MODEL_FILE));
      Files.copy(onnx, model.resolve("2").resolve(ExampleModels.MODEL_FILE));
      String config = Files.readString(scratch.resolve("identity_fp32").resolve(ExampleModels.CONFIG_FILE))
          .replace("name: \"identity_fp32\"", "name: \"" + CANARY + "\"");
      Files.writeString(model.resolve(ExampleModels.CONFIG_FILE), config + "version_policy: { all: {} }\n");
    } finally {
      io.quiver.registry.LocalModelRepository.deleteTree(scratch);
    }
  }

  GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub inference(String apiKey) {
    var stub = GRPCInferenceServiceGrpc.newBlockingStub(data).withDeadlineAfter(30, TimeUnit.SECONDS);
    return apiKey == null ? stub : stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(key(apiKey)));
  }

  ModelControlGrpc.ModelControlBlockingStub controlPlane(String apiKey) {
    var stub = ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(60, TimeUnit.SECONDS);
    return apiKey == null ? stub : stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(key(apiKey)));
  }

  private static Metadata key(String apiKey) {
    Metadata m = new Metadata();
    m.put(Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER), apiKey);
    return m;
  }

  @Override
  public void close() throws Exception {
    data.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.close();
  }
}
