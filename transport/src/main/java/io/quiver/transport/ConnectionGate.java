package io.quiver.transport;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.SocketAddress;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of every accepted connection (REST, and gRPC through {@link GuardedNegotiator}): it
 * counts the connection with the {@link ConnectionLimiter} and closes it at once when a limit is reached,
 * and, when asked, closes it if its handshake has not finished in time. One instance per connection; runs
 * on the connection's event loop.
 */
public final class ConnectionGate extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(ConnectionGate.class);
  private static final RateLimitedLog REFUSED_LOG = new RateLimitedLog(log, 1, TimeUnit.SECONDS);

  private final ConnectionLimiter limiter;
  private final long handshakeTimeoutMillis;
  private final String port;
  private SocketAddress remote;
  private boolean admitted;
  private boolean refused;
  private ScheduledFuture<?> handshakeTimer;

  /**
   * @param handshakeTimeoutMillis close the connection this long after it opened unless
   *     {@link ConnectionLimiter#handshakeDone} is called for it first; 0 = no such timer
   * @param port what the connection is to ("gRPC", "REST", "control"), for the log
   */
  public ConnectionGate(ConnectionLimiter limiter, long handshakeTimeoutMillis, String port) {
    this.limiter = limiter;
    this.handshakeTimeoutMillis = handshakeTimeoutMillis;
    this.port = port;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    if (ctx.channel().isActive()) {
      admit(ctx);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) throws Exception {
    admit(ctx);
    if (!refused) {
      super.channelActive(ctx);
    }
  }

  private void admit(ChannelHandlerContext ctx) {
    if (admitted || refused) {
      return;
    }
    remote = ctx.channel().remoteAddress();
    if (!limiter.tryAcquire(remote)) {
      refused = true;
      REFUSED_LOG.warn("refused a {} connection from {}: connection limit reached ({} open; at most {} in all and {} per"
          + " address)", port, remote, limiter.open(), limiter.max(), limiter.maxPerAddress());
      ctx.close();
      return;
    }
    admitted = true;
    if (handshakeTimeoutMillis > 0) {
      handshakeTimer = ctx.executor().schedule(() -> {
        log.debug("closing a {} connection from {}: no handshake within {} ms", port, remote, handshakeTimeoutMillis);
        ctx.close();
      }, handshakeTimeoutMillis, TimeUnit.MILLISECONDS);
      limiter.awaitHandshake(remote, handshakeTimer);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    if (admitted) {
      admitted = false;
      limiter.release(remote);
      if (handshakeTimer != null) {
        handshakeTimer.cancel(false);
        limiter.forgetHandshake(remote, handshakeTimer);
      }
    }
    super.channelInactive(ctx);
  }
}
