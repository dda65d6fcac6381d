package io.quiver.server;

import io.quiver.transport.ConnectionOptions;
import picocli.CommandLine.Option;

/**
 * The command-line flags of {@link ConnectionOptions}: connection limits, timeouts and the bounds on what
 * a client that does not read may make the server hold (docs/hardening.md). Where Triton has a flag of
 * the same meaning and unit ({@code --grpc-keepalive-time}, {@code --grpc-keepalive-timeout},
 * {@code --grpc-max-connection-age}, all milliseconds) it is accepted as an alias. Used once, on the
 * thread that parses the command line.
 */
final class ConnectionFlags {
  @Option(names = "--max-connections", defaultValue = "" + ConnectionOptions.DEFAULT_MAX_CONNECTIONS,
      description = "Most open client connections over all ports together; past it new ones are closed at once"
          + " (default ${DEFAULT-VALUE}).")
  int maxConnections;

  @Option(names = "--max-connections-per-address", defaultValue = "" + ConnectionOptions.DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      description = "Most open connections from one client IP address, all ports together; raise it behind a proxy"
          + " (default ${DEFAULT-VALUE}).")
  int maxConnectionsPerAddress;

  @Option(names = "--handshake-timeout-ms", defaultValue = "" + ConnectionOptions.DEFAULT_HANDSHAKE_TIMEOUT_MILLIS,
      description = "A new connection's TLS handshake (and, on gRPC ports, its HTTP/2 preface) must finish within this"
          + " (default ${DEFAULT-VALUE}).")
  long handshakeTimeoutMillis;

  @Option(names = "--http-header-timeout-ms", defaultValue = "" + ConnectionOptions.DEFAULT_HEADER_TIMEOUT_MILLIS,
      description = "REST: a request's line and headers must arrive within this of its first byte, else 408 and the"
          + " connection closes (slowloris; default ${DEFAULT-VALUE}).")
  long headerTimeoutMillis;

  @Option(names = "--http-request-timeout-ms", defaultValue = "" + ConnectionOptions.DEFAULT_REQUEST_TIMEOUT_MILLIS,
      description = "REST: a whole request, headers and body, must arrive within this of its first byte"
          + " (default ${DEFAULT-VALUE}).")
  long requestTimeoutMillis;

  @Option(names = "--idle-timeout-ms", defaultValue = "" + ConnectionOptions.DEFAULT_IDLE_TIMEOUT_MILLIS,
      description = "A connection with nothing in progress (gRPC: no open call) for this long is closed; also a REST"
          + " connection whose answer has not drained for this long (default ${DEFAULT-VALUE}).")
  long idleTimeoutMillis;

  @Option(names = {"--grpc-keepalive-time-ms", "--grpc-keepalive-time"},
      defaultValue = "" + ConnectionOptions.DEFAULT_KEEP_ALIVE_TIME_MILLIS,
      description = "gRPC: the server pings a connection silent for this long (default ${DEFAULT-VALUE}).")
  long keepAliveTimeMillis;

  @Option(names = {"--grpc-keepalive-timeout-ms", "--grpc-keepalive-timeout"},
      defaultValue = "" + ConnectionOptions.DEFAULT_KEEP_ALIVE_TIMEOUT_MILLIS,
      description = "gRPC: a ping not answered within this closes the connection (default ${DEFAULT-VALUE}).")
  long keepAliveTimeoutMillis;

  @Option(names = "--grpc-permit-keepalive-time-ms", defaultValue = "" + ConnectionOptions.DEFAULT_PERMIT_KEEP_ALIVE_TIME_MILLIS,
      description = "gRPC: clients may ping at most this often; faster pings get GOAWAY (default ${DEFAULT-VALUE}).")
  long permitKeepAliveTimeMillis;

  @Option(names = {"--grpc-max-connection-age-ms", "--grpc-max-connection-age"}, defaultValue = "0",
      description = "gRPC: connections older than this are asked to go away (GOAWAY) so clients re-balance; 0 = never"
          + " (default ${DEFAULT-VALUE}).")
  long maxConnectionAgeMillis;

  @Option(names = "--grpc-max-connection-age-grace-ms", defaultValue = "" + ConnectionOptions.DEFAULT_MAX_CONNECTION_AGE_GRACE_MILLIS,
      description = "gRPC: how long calls may still run after that GOAWAY (default ${DEFAULT-VALUE}).")
  long maxConnectionAgeGraceMillis;

  @Option(names = "--grpc-max-pending-answer-bytes-per-connection",
      defaultValue = "" + ConnectionOptions.DEFAULT_MAX_PENDING_ANSWER_BYTES_PER_CONNECTION,
      description = "gRPC: answer bytes one connection may hold unsent because its client does not read; past it its"
          + " streams are not read, new calls get RESOURCE_EXHAUSTED and further answers are dropped with their call"
          + " reset; REST over HTTP/2 counts its unanswered request bodies and unsent answers against it and answers 429"
          + " past it (default ${DEFAULT-VALUE} = 64 MiB).")
  long maxPendingAnswerBytesPerConnection;

  @Option(names = "--grpc-max-pending-answer-bytes", defaultValue = "" + ConnectionOptions.DEFAULT_MAX_PENDING_ANSWER_BYTES,
      description = "gRPC: the same over all connections together (default ${DEFAULT-VALUE} = 512 MiB).")
  long maxPendingAnswerBytes;

  @Option(names = "--grpc-max-unanswered-per-stream", defaultValue = "" + ConnectionOptions.DEFAULT_MAX_UNANSWERED_PER_STREAM,
      description = "ModelStreamInfer: requests read from one stream and not yet answered; the stream is read no further"
          + " until answers drain (default ${DEFAULT-VALUE}).")
  int maxUnansweredPerStream;

  /**
   * The options these flags describe.
   *
   * @throws IllegalArgumentException naming the values out of range
   */
  ConnectionOptions options() {
    return new ConnectionOptions(maxConnections, maxConnectionsPerAddress, handshakeTimeoutMillis, headerTimeoutMillis,
        requestTimeoutMillis, idleTimeoutMillis, keepAliveTimeMillis, keepAliveTimeoutMillis, permitKeepAliveTimeMillis,
        maxConnectionAgeMillis, maxConnectionAgeGraceMillis, maxPendingAnswerBytesPerConnection, maxPendingAnswerBytes,
        maxUnansweredPerStream);
  }
}
