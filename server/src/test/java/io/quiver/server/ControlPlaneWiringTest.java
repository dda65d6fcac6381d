package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.lifecycle.ControlMode;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ListModelsResponse;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelReadyRequest;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The control plane as the server wires it: its own port, the same models, health kept in step. */
class ControlPlaneWiringTest {
  @TempDir Path repository;

  @Test
  void controlPlaneUnload_isSeenByTheDataPlaneAndHealth() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeSimple(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"));
    try (ServerFixture fixture = new ServerFixture(options)) {
      int controlPort = fixture.server.controlPort();
      assertThat(controlPort).isPositive();
      ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", controlPort).usePlaintext().build();
      try {
        var stub = ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(30, TimeUnit.SECONDS);
        ListModelsResponse models = stub.listModels(ListModelsRequest.getDefaultInstance());
        assertThat(models.getModelsList()).extracting(m -> m.getName()).contains("identity_fp32", "simple");

        stub.unloadModel(UnloadModelRequest.newBuilder().setName("simple").build());
        assertThat(fixture.stub().modelReady(ModelReadyRequest.newBuilder().setName("simple").build()).getReady())
            .isFalse();
        assertThat(HealthGrpc.newBlockingStub(fixture.channel)
            .check(HealthCheckRequest.newBuilder().setService("simple").build()).getStatus())
            .isEqualTo(HealthCheckResponse.ServingStatus.NOT_SERVING);
        // The other model is untouched.
        assertThat(fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_fp32")
            .addInputs(input("INPUT0", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build())
            .getRawOutputContentsCount()).isEqualTo(1);

        // The CLI, as `quiver models list` runs it, over the same port.
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        int exit;
        try {
          exit = new CommandLine(new Main()).execute("models", "--control", "127.0.0.1:" + controlPort, "list");
        } finally {
          System.setOut(stdout);
        }
        assertThat(exit).isZero();
        assertThat(printed.toString(StandardCharsets.UTF_8)).contains("identity_fp32");
      } finally {
        control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }
}
