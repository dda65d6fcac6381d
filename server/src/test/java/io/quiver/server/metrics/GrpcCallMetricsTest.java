package io.quiver.server.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.Empty;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Server time per call by method and code, over a real loopback server; unknown method names stay "other". */
class GrpcCallMetricsTest {
  private static final MethodDescriptor<Empty, Empty> SLOW_REFUSAL = MethodDescriptor.<Empty, Empty>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY)
      .setFullMethodName("test.Refuser/SlowRefusal")
      .setRequestMarshaller(ProtoUtils.marshaller(Empty.getDefaultInstance()))
      .setResponseMarshaller(ProtoUtils.marshaller(Empty.getDefaultInstance()))
      .build();
  private static final MethodDescriptor<Empty, Empty> NOT_SERVED = SLOW_REFUSAL.toBuilder()
      .setFullMethodName("attacker.Chosen/Name" + System.nanoTime()).build();

  @Test
  void callsAreTimedByMethodAndCode_fromHeadersToClose() throws Exception {
    HealthStatusManager health = new HealthStatusManager();
    ServerServiceDefinition refuser = ServerServiceDefinition.builder("test.Refuser")
        .addMethod(SLOW_REFUSAL, ServerCalls.asyncUnaryCall((request, out) -> {
          try {
            Thread.sleep(30); // a refusal that takes 30 ms inside the server
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          out.onError(Status.RESOURCE_EXHAUSTED.withDescription("full").asRuntimeException());
        }))
        .build();
    List<ServerServiceDefinition> services = List.of(health.getHealthService().bindService(), refuser);
    PrometheusRegistry registry = new PrometheusRegistry();
    NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0));
    services.forEach(builder::addService);
    Server server = builder.addStreamTracerFactory(new GrpcCallMetrics(registry, services)).build().start();
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
    try {
      var stub = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
      stub.check(HealthCheckRequest.getDefaultInstance());
      stub.check(HealthCheckRequest.getDefaultInstance());
      assertThatThrownBy(() -> stub.check(HealthCheckRequest.newBuilder().setService("nope").build()))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
      assertThatThrownBy(() -> ClientCalls.blockingUnaryCall(channel, SLOW_REFUSAL, CallOptions.DEFAULT,
          Empty.getDefaultInstance()))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
      assertThatThrownBy(() -> ClientCalls.blockingUnaryCall(channel, NOT_SERVED, CallOptions.DEFAULT,
          Empty.getDefaultInstance()))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNIMPLEMENTED));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    String text = scrape(registry);
    String name = "quiver_grpc_server_call_duration_seconds";
    assertThat(text)
        .contains(name + "_count{code=\"OK\",method=\"Check\"} 2")
        .contains(name + "_count{code=\"NOT_FOUND\",method=\"Check\"} 1")
        .contains(name + "_count{code=\"UNIMPLEMENTED\",method=\"other\"} 1")
        .doesNotContain("attacker.Chosen")
        // The 30 ms inside the handler are counted: not within 25 ms, within 50 ms.
        .contains(name + "_bucket{code=\"RESOURCE_EXHAUSTED\",method=\"SlowRefusal\",le=\"0.025\"} 0")
        .contains(name + "_bucket{code=\"RESOURCE_EXHAUSTED\",method=\"SlowRefusal\",le=\"0.05\"} 1");
  }

  private static String scrape(PrometheusRegistry registry) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    new PrometheusTextFormatWriter(false).write(out, registry.scrape());
    return out.toString(StandardCharsets.UTF_8);
  }
}
