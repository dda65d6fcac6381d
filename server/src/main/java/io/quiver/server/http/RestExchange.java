package io.quiver.server.http;

import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.util.concurrent.EventExecutor;
import java.net.SocketAddress;

/**
 * Where one REST request is answered: an HTTP/1.1 connection (its requests are answered one after
 * another, in order) or one stream of an HTTP/2 connection (its one request). {@link RestHandler} and
 * the routes beside it ({@link HttpRoute}) read a request and answer it here, without knowing which.
 *
 * <p>{@link #write} may be called from any thread (it hops to the event loop); the rest on the event
 * loop, except where a method says otherwise. Each request gets exactly one {@link #write}.
 */
public abstract class RestExchange {
  /** The handler context the exchange's answers are written through (its connection's). */
  final ChannelHandlerContext ctx;

  RestExchange(ChannelHandlerContext ctx) { // the two kinds live in this package
    this.ctx = ctx;
  }

  /** Allocates the answer's buffers. Any thread. */
  public final ByteBufAllocator alloc() {
    return ctx.alloc();
  }

  /** The client's address, for logs and security decisions. Any thread. */
  public final SocketAddress remoteAddress() {
    return ctx.channel().remoteAddress();
  }

  /** The connection's event loop. */
  public final EventExecutor executor() {
    return ctx.executor();
  }

  /** Whether the answer can still reach the client (the connection, or the stream, is open). Event loop. */
  public abstract boolean isActive();

  /**
   * The request is worked on off the event loop: HTTP/1.1 reads nothing more from the connection until
   * {@link #resumeReading} (answers leave in request order); on HTTP/2 nothing changes, since a stream's
   * request was read whole and other streams are answered independently. Any thread.
   */
  public abstract void pauseReading();

  /** Lifts {@link #pauseReading}; nothing when it was not paused. Any thread. */
  public abstract void resumeReading();

  /**
   * Sends the answer (content type and length already set). {@code keepAlive} false ends the exchange
   * for good: HTTP/1.1 closes the connection once the answer is out, HTTP/2 resets the stream if the
   * client is still sending its request. Any thread.
   */
  public abstract void write(FullHttpResponse response, boolean keepAlive);

  /** An inference of this exchange was submitted; its answer comes later through {@link #write}. Event loop. */
  abstract void inferenceStarted(RestHandler.Inference inference);

  /** That inference was answered (written, or failed); requests waiting behind it may go. Event loop. */
  abstract void inferenceAnswered(RestHandler.Inference inference);
}
