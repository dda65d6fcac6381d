package io.quiver.server;

import io.quiver.control.ControlMode;
import java.nio.file.Path;
import java.util.List;

/**
 * Everything the server needs to start, as data (the command line fills it in; tests build it
 * directly).
 *
 * @param grpcPort data-plane port; 0 picks a free one
 * @param maxMessageBytes largest gRPC message accepted or sent
 * @param eventLoopThreads Netty worker threads; 0 = one per available processor
 * @param shutdownGraceMillis how long SIGTERM waits for in-flight requests before cutting them off
 */
public record ServerOptions(
    String host,
    int grpcPort,
    Path modelRepository,
    ControlMode controlMode,
    List<String> startupModels,
    int maxMessageBytes,
    int eventLoopThreads,
    long shutdownGraceMillis) {

  public static final int DEFAULT_GRPC_PORT = 8001;
  /** 256 MiB: images, audio and large batches must fit (gRPC's own default is 4 MiB). */
  public static final int DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
  public static final long DEFAULT_SHUTDOWN_GRACE_MILLIS = 30_000;

  public static ServerOptions defaults(Path modelRepository) {
    return new ServerOptions("0.0.0.0", DEFAULT_GRPC_PORT, modelRepository, ControlMode.NONE,
        List.of(), DEFAULT_MAX_MESSAGE_BYTES, 0, DEFAULT_SHUTDOWN_GRACE_MILLIS);
  }

  public ServerOptions withGrpcPort(int port) {
    return new ServerOptions(host, port, modelRepository, controlMode, startupModels, maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis);
  }

  public ServerOptions withControl(ControlMode mode, List<String> models) {
    return new ServerOptions(host, grpcPort, modelRepository, mode, List.copyOf(models), maxMessageBytes,
        eventLoopThreads, shutdownGraceMillis);
  }

  public ServerOptions withMaxMessageBytes(int bytes) {
    return new ServerOptions(host, grpcPort, modelRepository, controlMode, startupModels, bytes,
        eventLoopThreads, shutdownGraceMillis);
  }
}
