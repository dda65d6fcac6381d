package io.quiver.transport;

import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalProtocolNegotiator;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerAdapter;
import io.netty.channel.ChannelHandlerContext;
import io.netty.util.AsciiString;

/**
 * grpc-netty's protocol negotiator (plaintext or TLS) with a {@link ConnectionGate} put in front of it,
 * the only hook grpc-netty offers into a new connection's pipeline: connection limits and the handshake
 * timeout (TLS and the HTTP/2 preface, until the transport filter sees the client's SETTINGS) apply to
 * gRPC ports as to REST. Uses grpc-netty's {@code Internal*} API, stable across the versions we pin.
 */
final class GuardedNegotiator implements InternalProtocolNegotiator.ProtocolNegotiator {
  private final InternalProtocolNegotiator.ProtocolNegotiator delegate;
  private final ConnectionLimiter limiter;
  private final long handshakeTimeoutMillis;
  private final String port;

  GuardedNegotiator(InternalProtocolNegotiator.ProtocolNegotiator delegate, ConnectionLimiter limiter,
      long handshakeTimeoutMillis, String port) {
    this.delegate = delegate;
    this.limiter = limiter;
    this.handshakeTimeoutMillis = handshakeTimeoutMillis;
    this.port = port;
  }

  @Override
  public AsciiString scheme() {
    return delegate.scheme();
  }

  @Override
  public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
    return new Installer(delegate.newHandler(grpcHandler), new ConnectionGate(limiter, handshakeTimeoutMillis, port));
  }

  @Override
  public void close() {
    delegate.close();
  }

  /** Puts the gate first and the negotiation handler after it, then steps out. */
  private static final class Installer extends ChannelHandlerAdapter {
    private final ChannelHandler negotiation;
    private final ConnectionGate gate;

    Installer(ChannelHandler negotiation, ConnectionGate gate) {
      this.negotiation = negotiation;
      this.gate = gate;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      ctx.pipeline().addAfter(ctx.name(), null, negotiation);
      ctx.pipeline().replace(this, null, gate);
    }
  }
}
