package io.quiver.transport;

import io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.InternalProtocolNegotiators;
import io.grpc.netty.NettyServerBuilder;
import io.netty.handler.ssl.SslContext;
import java.util.concurrent.TimeUnit;

/**
 * Applies {@link ConnectionOptions} to a gRPC server as it is built, the same way for the data plane and
 * the control plane: connection limits and the handshake timeout (through {@link GuardedNegotiator}),
 * HTTP/2 keep-alive pings, max-connection-idle and -age, the fastest client pings allowed, and the
 * per-connection object the {@link CallGuard} finds (through {@link GrpcConnectionTracker}).
 */
public final class GrpcTransports {
  private GrpcTransports() {}

  /**
   * @param ssl TLS for the port (built with GrpcSslContexts: ALPN h2), or null for plaintext
   * @param budget the answer bound the port's {@link CallGuard} uses, or null
   * @param port what the port is ("gRPC", "control"), for the log
   */
  public static NettyServerBuilder harden(NettyServerBuilder builder, ConnectionOptions options,
      ConnectionLimiter limiter, AnswerBudget budget, SslContext ssl, String port) {
    InternalProtocolNegotiator.ProtocolNegotiator negotiator = ssl == null
        ? InternalProtocolNegotiators.serverPlaintext()
        : InternalProtocolNegotiators.serverTls(ssl);
    builder.protocolNegotiator(new GuardedNegotiator(negotiator, limiter, options.handshakeTimeoutMillis(), port))
        .addTransportFilter(new GrpcConnectionTracker(limiter, budget))
        .keepAliveTime(options.keepAliveTimeMillis(), TimeUnit.MILLISECONDS)
        .keepAliveTimeout(options.keepAliveTimeoutMillis(), TimeUnit.MILLISECONDS)
        .maxConnectionIdle(options.idleTimeoutMillis(), TimeUnit.MILLISECONDS)
        .permitKeepAliveTime(options.permitKeepAliveTimeMillis(), TimeUnit.MILLISECONDS)
        .permitKeepAliveWithoutCalls(false);
    if (options.maxConnectionAgeMillis() > 0) {
      builder.maxConnectionAge(options.maxConnectionAgeMillis(), TimeUnit.MILLISECONDS)
          .maxConnectionAgeGrace(options.maxConnectionAgeGraceMillis(), TimeUnit.MILLISECONDS);
    }
    return builder;
  }
}
