package io.quiver.control.grpc;

import java.nio.file.Path;

/**
 * Settings of a {@link ControlPlaneServer}.
 *
 * @param port TCP port (0 picks a free one, for tests)
 * @param bindAddress the address to listen on ("0.0.0.0" for all; "127.0.0.1" in tests)
 * @param maxUploadBytes the most bytes one UploadModel may carry, all files together
 * @param stagingDir where uploads are staged before they go into the repository; null: the system temp dir
 * @param pollIntervalMillis how often the desired state (and, in POLL mode, the repository) is re-read; 0 = never
 */
public record ControlPlaneOptions(int port, String bindAddress, long maxUploadBytes, Path stagingDir,
    long pollIntervalMillis) {
  public static final int DEFAULT_PORT = 8003;
  public static final long DEFAULT_MAX_UPLOAD_BYTES = 2L << 30;
  public static final long DEFAULT_POLL_INTERVAL_MILLIS = 10_000;
  /** Largest gRPC message accepted: one upload chunk plus framing. */
  public static final int MAX_MESSAGE_BYTES = 8 << 20;

  public ControlPlaneOptions {
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535; was " + port);
    }
    if (maxUploadBytes < 1) {
      throw new IllegalArgumentException("maxUploadBytes must be >= 1; was " + maxUploadBytes);
    }
    if (pollIntervalMillis < 0) {
      throw new IllegalArgumentException("pollIntervalMillis must be >= 0; was " + pollIntervalMillis);
    }
    bindAddress = bindAddress == null ? "0.0.0.0" : bindAddress;
  }

  public static ControlPlaneOptions defaults() {
    return new ControlPlaneOptions(DEFAULT_PORT, "0.0.0.0", DEFAULT_MAX_UPLOAD_BYTES, null, DEFAULT_POLL_INTERVAL_MILLIS);
  }

  public ControlPlaneOptions withPort(int port) {
    return new ControlPlaneOptions(port, bindAddress, maxUploadBytes, stagingDir, pollIntervalMillis);
  }

  public ControlPlaneOptions withBindAddress(String address) {
    return new ControlPlaneOptions(port, address, maxUploadBytes, stagingDir, pollIntervalMillis);
  }

  public ControlPlaneOptions withMaxUploadBytes(long bytes) {
    return new ControlPlaneOptions(port, bindAddress, bytes, stagingDir, pollIntervalMillis);
  }

  public ControlPlaneOptions withStagingDir(Path dir) {
    return new ControlPlaneOptions(port, bindAddress, maxUploadBytes, dir, pollIntervalMillis);
  }

  public ControlPlaneOptions withPollIntervalMillis(long millis) {
    return new ControlPlaneOptions(port, bindAddress, maxUploadBytes, stagingDir, millis);
  }
}
