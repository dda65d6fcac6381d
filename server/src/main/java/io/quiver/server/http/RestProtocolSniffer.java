package io.quiver.server.http;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.concurrent.ScheduledFuture;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of a REST connection after TLS: reads until it knows whether the client speaks
 * HTTP/2 with prior knowledge (its first bytes are the connection preface, RFC 9113 section 3.4) or
 * HTTP/1.1 (any other byte; an HTTP/1.1 request line cannot start with the whole preface), installs
 * that protocol's handlers behind itself and leaves, handing them every byte read so far. Most
 * connections are decided by their first one or two bytes.
 *
 * <p>Bounded in time like the rest of the connection: a connection that sends nothing is closed after
 * the idle timeout, one that has sent part of the preface and stalls after the handshake timeout (the
 * same bound the gRPC ports put on their preface). Event loop only; one instance per connection.
 */
final class RestProtocolSniffer extends ByteToMessageDecoder {
  private static final Logger log = LoggerFactory.getLogger(RestProtocolSniffer.class);
  static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  private final Consumer<ChannelHandlerContext> http1;
  private final Consumer<ChannelHandlerContext> http2;
  private final long idleMillis;
  private final long prefaceMillis;
  private ScheduledFuture<?> deadline;
  private boolean partial;

  /**
   * @param http1 adds the HTTP/1.1 handlers after {@code ctx} (called on the event loop, before this leaves)
   * @param http2 adds the HTTP/2 handlers after {@code ctx}
   */
  RestProtocolSniffer(Consumer<ChannelHandlerContext> http1, Consumer<ChannelHandlerContext> http2, long idleMillis,
      long prefaceMillis) {
    this.http1 = http1;
    this.http2 = http2;
    this.idleMillis = idleMillis;
    this.prefaceMillis = prefaceMillis;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    deadline = ctx.executor().schedule(() -> expire(ctx, "sent nothing"), idleMillis, TimeUnit.MILLISECONDS);
  }

  @Override
  protected void handlerRemoved0(ChannelHandlerContext ctx) {
    cancelDeadline();
  }

  @Override
  protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
    int seen = Math.min(in.readableBytes(), PREFACE.length);
    for (int i = 0; i < seen; i++) {
      if (in.getByte(in.readerIndex() + i) != PREFACE[i]) {
        decide(ctx, false);
        return;
      }
    }
    if (seen == PREFACE.length) {
      decide(ctx, true);
    } else if (seen > 0 && !partial) {
      partial = true; // part of the preface: the rest must follow within the handshake timeout
      cancelDeadline();
      deadline = ctx.executor().schedule(() -> expire(ctx, "did not finish the HTTP/2 preface"), prefaceMillis,
          TimeUnit.MILLISECONDS);
    }
  }

  private void decide(ChannelHandlerContext ctx, boolean h2) {
    cancelDeadline();
    (h2 ? http2 : http1).accept(ctx);
    ctx.pipeline().remove(this); // passes the bytes read so far to the handlers just added
  }

  private void expire(ChannelHandlerContext ctx, String what) {
    if (ctx.channel().isActive() && !ctx.isRemoved()) {
      log.debug("closing REST connection {}: it {} in time", ctx.channel().remoteAddress(), what);
      ctx.close();
    }
  }

  private void cancelDeadline() {
    if (deadline != null) {
      deadline.cancel(false);
      deadline = null;
    }
  }
}
