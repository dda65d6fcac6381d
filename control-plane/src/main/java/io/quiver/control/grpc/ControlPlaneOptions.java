package io.quiver.control.grpc;

/**
 * Settings of a {@link ControlPlaneServer}: the transport only (the poll interval and the upload
 * staging directory belong to the lifecycle, {@code io.quiver.lifecycle.LifecycleOptions}).
 *
 * @param port TCP port (0 picks a free one, for tests)
 * @param bindAddress the address to listen on ("0.0.0.0" for all; "127.0.0.1" in tests)
 * @param maxUploadBytes the most bytes one UploadModel may carry, all files together
 */
public record ControlPlaneOptions(int port, String bindAddress, long maxUploadBytes) {
  public static final int DEFAULT_PORT = 8003;
  public static final long DEFAULT_MAX_UPLOAD_BYTES = 2L << 30;
  /** Largest gRPC message accepted: one upload chunk plus framing. */
  public static final int MAX_MESSAGE_BYTES = 8 << 20;

  public ControlPlaneOptions {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535; was " + port);
    }
    if (maxUploadBytes < 1) {
      throw new IllegalArgumentException("maxUploadBytes must be >= 1; was " + maxUploadBytes);
    }
    bindAddress = bindAddress == null ? "0.0.0.0" : bindAddress;
  }

  public static ControlPlaneOptions defaults() {
    return new ControlPlaneOptions(DEFAULT_PORT, "0.0.0.0", DEFAULT_MAX_UPLOAD_BYTES);
  }

  public ControlPlaneOptions withPort(int port) {
    return new ControlPlaneOptions(port, bindAddress, maxUploadBytes);
  }

  public ControlPlaneOptions withBindAddress(String address) {
    return new ControlPlaneOptions(port, address, maxUploadBytes);
  }

  public ControlPlaneOptions withMaxUploadBytes(long bytes) {
    return new ControlPlaneOptions(port, bindAddress, bytes);
  }
}
