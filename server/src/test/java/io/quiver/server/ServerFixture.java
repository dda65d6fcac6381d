package io.quiver.server;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A real Quiver server on a loopback port, and a channel to it. Close it when done. */
final class ServerFixture implements AutoCloseable {
  final QuiverServer server;
  final ManagedChannel channel;
  final GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub blocking;
  final GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async;

  ServerFixture(Path repository) throws Exception {
    this(repository, ControlMode.NONE, List.of());
  }

  ServerFixture(Path repository, ControlMode mode, List<String> models) throws Exception {
    this(repository, mode, models, ServerOptions.Limits.defaults());
  }

  ServerFixture(Path repository, ControlMode mode, List<String> models, ServerOptions.Limits limits) throws Exception {
    this(new ServerOptions("127.0.0.1", 0, repository, mode, models,
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, 0, 1024 * 1024, false).withLimits(limits));
  }

  ServerFixture(ServerOptions options) throws Exception {
    this(new QuiverServer(options));
  }

  /** Starts this (not yet started) server. */
  ServerFixture(QuiverServer unstarted) throws Exception {
    server = unstarted.start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port())
        .usePlaintext()
        .maxInboundMessageSize(ServerOptions.DEFAULT_MAX_MESSAGE_BYTES)
        .build();
    blocking = GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    async = GRPCInferenceServiceGrpc.newStub(channel);
  }

  GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub() {
    return GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.close();
  }
}
