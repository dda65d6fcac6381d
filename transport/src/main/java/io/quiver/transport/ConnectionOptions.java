package io.quiver.transport;

/**
 * Limits and timeouts of client connections, the same on every port (gRPC data plane, REST, control
 * plane): how many connections, how long each phase of a connection may take, and how much unsent
 * answer data one connection may hold. The defaults close slowloris and idle connections within
 * seconds to minutes and bound memory per connection; docs/hardening.md explains each one. Immutable.
 *
 * @param maxConnections most open connections over all ports together; past it new ones are closed at once
 * @param maxConnectionsPerAddress most open connections from one remote IP address (all ports); behind a
 *     proxy every connection has the proxy's address, so raise it there
 * @param handshakeTimeoutMillis a new connection must finish its TLS handshake (and, on gRPC ports, the
 *     HTTP/2 connection preface) within this
 * @param headerTimeoutMillis HTTP/1.1: a request's line and headers must arrive within this of its first byte
 * @param requestTimeoutMillis HTTP/1.1: a whole request (headers and body) must arrive within this of its
 *     first byte
 * @param idleTimeoutMillis a connection with no request in progress (gRPC: no open call) for this long is
 *     closed (gRPC: GOAWAY, max-connection-idle); also a REST connection whose answer has not drained
 *     for this long (a client that stopped reading)
 * @param keepAliveTimeMillis gRPC: the server pings a connection silent for this long ...
 * @param keepAliveTimeoutMillis ... and closes it when the ping is not answered within this
 * @param permitKeepAliveTimeMillis gRPC: clients may ping at most this often (faster pings get GOAWAY
 *     ENHANCE_YOUR_CALM)
 * @param maxConnectionAgeMillis gRPC: connections older than this are asked to go away (GOAWAY), so that
 *     clients re-balance; 0 = no limit
 * @param maxConnectionAgeGraceMillis gRPC: how long calls may still run after that GOAWAY
 * @param maxPendingAnswerBytesPerConnection gRPC: answer bytes a connection may hold given to the
 *     transport but not yet sent (its client is not reading); past it the connection's streams stop
 *     being read and new calls get RESOURCE_EXHAUSTED
 * @param maxPendingAnswerBytes gRPC: the same over all connections together
 * @param maxUnansweredPerStream ModelStreamInfer: requests read from one stream and not yet answered;
 *     the stream is read no further until answers drain
 */
public record ConnectionOptions(
    int maxConnections,
    int maxConnectionsPerAddress,
    long handshakeTimeoutMillis,
    long headerTimeoutMillis,
    long requestTimeoutMillis,
    long idleTimeoutMillis,
    long keepAliveTimeMillis,
    long keepAliveTimeoutMillis,
    long permitKeepAliveTimeMillis,
    long maxConnectionAgeMillis,
    long maxConnectionAgeGraceMillis,
    long maxPendingAnswerBytesPerConnection,
    long maxPendingAnswerBytes,
    int maxUnansweredPerStream) {

  public static final int DEFAULT_MAX_CONNECTIONS = 10_000;
  public static final int DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 1_000;
  public static final long DEFAULT_HANDSHAKE_TIMEOUT_MILLIS = 10_000;
  public static final long DEFAULT_HEADER_TIMEOUT_MILLIS = 20_000;
  public static final long DEFAULT_REQUEST_TIMEOUT_MILLIS = 120_000;
  public static final long DEFAULT_IDLE_TIMEOUT_MILLIS = 120_000;
  public static final long DEFAULT_KEEP_ALIVE_TIME_MILLIS = 60_000;
  public static final long DEFAULT_KEEP_ALIVE_TIMEOUT_MILLIS = 20_000;
  /** 10 s: below the typed client's and tritonclient's usual keep-alive settings, far above a ping flood. */
  public static final long DEFAULT_PERMIT_KEEP_ALIVE_TIME_MILLIS = 10_000;
  public static final long DEFAULT_MAX_CONNECTION_AGE_GRACE_MILLIS = 30_000;
  /** 64 MiB: dozens of large answers in flight to a slow reader, far from a heap's worth. */
  public static final long DEFAULT_MAX_PENDING_ANSWER_BYTES_PER_CONNECTION = 64L << 20;
  /** 512 MiB over all connections. */
  public static final long DEFAULT_MAX_PENDING_ANSWER_BYTES = 512L << 20;
  /** 64 requests per stream: deep enough for pipelining clients (perf_analyzer, tritonclient's stream). */
  public static final int DEFAULT_MAX_UNANSWERED_PER_STREAM = 64;

  public ConnectionOptions {
    if (maxConnections < 1 || maxConnectionsPerAddress < 1 || maxUnansweredPerStream < 1) {
      throw new IllegalArgumentException("connection limits must be >= 1; were max-connections " + maxConnections
          + ", per address " + maxConnectionsPerAddress + ", unanswered per stream " + maxUnansweredPerStream);
    }
    if (handshakeTimeoutMillis < 1 || headerTimeoutMillis < 1 || requestTimeoutMillis < 1 || idleTimeoutMillis < 1
        || keepAliveTimeMillis < 1 || keepAliveTimeoutMillis < 1 || permitKeepAliveTimeMillis < 0
        || maxConnectionAgeMillis < 0 || maxConnectionAgeGraceMillis < 0) {
      throw new IllegalArgumentException("connection timeouts must be positive (age and permit-keep-alive >= 0)");
    }
    if (maxPendingAnswerBytesPerConnection < 1 || maxPendingAnswerBytes < 1) {
      throw new IllegalArgumentException("pending answer bounds must be >= 1 byte; were "
          + maxPendingAnswerBytesPerConnection + ", " + maxPendingAnswerBytes);
    }
  }

  public static ConnectionOptions defaults() {
    return new ConnectionOptions(DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
        DEFAULT_HANDSHAKE_TIMEOUT_MILLIS, DEFAULT_HEADER_TIMEOUT_MILLIS, DEFAULT_REQUEST_TIMEOUT_MILLIS,
        DEFAULT_IDLE_TIMEOUT_MILLIS, DEFAULT_KEEP_ALIVE_TIME_MILLIS, DEFAULT_KEEP_ALIVE_TIMEOUT_MILLIS,
        DEFAULT_PERMIT_KEEP_ALIVE_TIME_MILLIS, 0, DEFAULT_MAX_CONNECTION_AGE_GRACE_MILLIS,
        DEFAULT_MAX_PENDING_ANSWER_BYTES_PER_CONNECTION, DEFAULT_MAX_PENDING_ANSWER_BYTES,
        DEFAULT_MAX_UNANSWERED_PER_STREAM);
  }

  public ConnectionOptions withConnectionLimits(int total, int perAddress) {
    return new ConnectionOptions(total, perAddress, handshakeTimeoutMillis, headerTimeoutMillis, requestTimeoutMillis,
        idleTimeoutMillis, keepAliveTimeMillis, keepAliveTimeoutMillis, permitKeepAliveTimeMillis, maxConnectionAgeMillis,
        maxConnectionAgeGraceMillis, maxPendingAnswerBytesPerConnection, maxPendingAnswerBytes, maxUnansweredPerStream);
  }

  /** Handshake, HTTP/1.1 header and request, and idle timeouts. */
  public ConnectionOptions withTimeouts(long handshake, long header, long request, long idle) {
    return new ConnectionOptions(maxConnections, maxConnectionsPerAddress, handshake, header, request, idle,
        keepAliveTimeMillis, keepAliveTimeoutMillis, permitKeepAliveTimeMillis, maxConnectionAgeMillis,
        maxConnectionAgeGraceMillis, maxPendingAnswerBytesPerConnection, maxPendingAnswerBytes, maxUnansweredPerStream);
  }

  /** gRPC keep-alive pings: the server's interval and timeout, and the fastest client pings allowed. */
  public ConnectionOptions withKeepAlive(long time, long timeout, long permitTime) {
    return new ConnectionOptions(maxConnections, maxConnectionsPerAddress, handshakeTimeoutMillis, headerTimeoutMillis,
        requestTimeoutMillis, idleTimeoutMillis, time, timeout, permitTime, maxConnectionAgeMillis,
        maxConnectionAgeGraceMillis, maxPendingAnswerBytesPerConnection, maxPendingAnswerBytes, maxUnansweredPerStream);
  }

  /** gRPC max connection age (0 = none) and its grace. */
  public ConnectionOptions withMaxConnectionAge(long age, long grace) {
    return new ConnectionOptions(maxConnections, maxConnectionsPerAddress, handshakeTimeoutMillis, headerTimeoutMillis,
        requestTimeoutMillis, idleTimeoutMillis, keepAliveTimeMillis, keepAliveTimeoutMillis, permitKeepAliveTimeMillis,
        age, grace, maxPendingAnswerBytesPerConnection, maxPendingAnswerBytes, maxUnansweredPerStream);
  }

  /** Bounds on unsent answers (per connection, in all) and on unanswered requests per stream. */
  public ConnectionOptions withAnswerBounds(long perConnection, long total, int unansweredPerStream) {
    return new ConnectionOptions(maxConnections, maxConnectionsPerAddress, handshakeTimeoutMillis, headerTimeoutMillis,
        requestTimeoutMillis, idleTimeoutMillis, keepAliveTimeMillis, keepAliveTimeoutMillis, permitKeepAliveTimeMillis,
        maxConnectionAgeMillis, maxConnectionAgeGraceMillis, perConnection, total, unansweredPerStream);
  }
}
