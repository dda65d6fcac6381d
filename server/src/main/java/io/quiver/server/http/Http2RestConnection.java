package io.quiver.server.http;

import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.quiver.transport.ConnectionOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One REST connection that speaks HTTP/2 (cleartext with prior knowledge; {@link RestProtocolSniffer}
 * decides). Netty's frame codec and multiplexer give every stream its own child channel whose pipeline
 * turns frames into the same HTTP objects HTTP/1.1 produces (Netty's {@link Http2StreamFrameToHttpObjectCodec}),
 * so {@link RestHandler} serves both protocols unchanged: one request per stream, answered on it.
 *
 * <p>What differs from HTTP/1.1 is how answers leave: a batch's answers for this connection are written
 * to their streams and the connection is flushed once, after the batch's delivery task
 * ({@link #flushSoon}), as gRPC's transport does, instead of a write system call per answer.
 *
 * <p>What one connection may cost:
 * <ul>
 *   <li><b>Streams</b>: at most {@code maxConcurrentStreams} open at once (SETTINGS_MAX_CONCURRENT_STREAMS,
 *       the gRPC ports' per-connection call limit); header lists at most {@link #MAX_HEADER_LIST_BYTES}.</li>
 *   <li><b>Bytes held</b>: request bodies read and not yet answered, and answers not yet sent (their stream
 *       is still open), over all its streams,
 *       at most the per-connection pending-answer bound ({@code --grpc-max-pending-answer-bytes-per-connection});
 *       past it a new request is answered 429 and its stream reset, and an answer that would pass it is
 *       replaced by a 429 ("the answer was dropped"). Answers wait for the client's flow-control window,
 *       so a client that does not read holds at most the bound plus one small error per stream.</li>
 *   <li><b>Time</b>: a stream's request must arrive within the request timeout (else 408 and the stream is
 *       reset); a connection with no open stream for the idle timeout, or whose client leaves an answer
 *       unread that long, is closed (GOAWAY).</li>
 * </ul>
 * Netty's codec adds the protocol's own guards (rapid reset, CONTINUATION and empty-frame floods).
 *
 * <p>Event loop only: the connection and all its streams share one.
 */
final class Http2RestConnection {
  private static final Logger log = LoggerFactory.getLogger(Http2RestConnection.class);
  private static final AttributeKey<Http2RestConnection> KEY = AttributeKey.valueOf(Http2RestConnection.class, "h2");
  /** The most bytes of header fields one request may send (HPACK-decoded), as on the gRPC ports. */
  static final int MAX_HEADER_LIST_BYTES = 64 * 1024;
  private static final long MIN_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private final Channel channel;
  private final long maxHeldBytes;
  private final long requestNanos;
  private final long idleNanos;
  private final List<Stream> streams = new ArrayList<>();
  private final Runnable flushTask = this::flush;
  private long heldBytes;
  private long lastActivity = System.nanoTime();
  private boolean flushQueued;
  private ScheduledFuture<?> tick;

  private Http2RestConnection(Channel channel, ConnectionOptions options) {
    this.channel = channel;
    this.maxHeldBytes = options.maxPendingAnswerBytesPerConnection();
    this.requestNanos = TimeUnit.MILLISECONDS.toNanos(options.requestTimeoutMillis());
    this.idleNanos = TimeUnit.MILLISECONDS.toNanos(options.idleTimeoutMillis());
  }

  /**
   * Adds the HTTP/2 handlers after {@code ctx} (the sniffer's): the frame codec, the multiplexer and, per
   * stream, the HTTP object codec, this connection's stream guard, the body aggregator and {@code handler}.
   */
  static void install(ChannelHandlerContext ctx, ConnectionOptions options, int maxConcurrentStreams, int maxBodyBytes,
      RestHandler handler) {
    Channel channel = ctx.channel();
    Http2RestConnection connection = new Http2RestConnection(channel, options);
    channel.attr(KEY).set(connection);
    Http2FrameCodec codec = Http2FrameCodecBuilder.forServer()
        .initialSettings(Http2Settings.defaultSettings()
            .maxConcurrentStreams(maxConcurrentStreams)
            .maxHeaderListSize(MAX_HEADER_LIST_BYTES))
        .validateHeaders(true)
        .build();
    Http2MultiplexHandler streams = new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
      @Override
      protected void initChannel(Http2StreamChannel stream) {
        stream.pipeline().addLast(
            new Http2StreamFrameToHttpObjectCodec(true),
            connection.new Stream(),
            new HttpObjectAggregator(maxBodyBytes),
            handler);
      }
    });
    ctx.pipeline().addAfter(ctx.name(), "h2-codec", codec).addAfter("h2-codec", "h2-streams", streams);
    long tickNanos = Math.max(MIN_TICK_NANOS, Math.min(connection.requestNanos, connection.idleNanos) / 4);
    connection.tick = channel.eventLoop().scheduleAtFixedRate(connection::tick, tickNanos, tickNanos,
        TimeUnit.NANOSECONDS);
    channel.closeFuture().addListener(f -> connection.tick.cancel(false));
  }

  /** The HTTP/2 connection a stream channel belongs to, or null for an HTTP/1.1 channel. */
  static Http2RestConnection of(Channel channel) {
    return channel instanceof Http2StreamChannel ? channel.parent().attr(KEY).get() : null;
  }

  /**
   * Flushes the connection once the task running now is over: every answer written to its streams
   * until then (a whole batch's, delivered as one task) leaves in one write. Event loop only.
   */
  void flushSoon() {
    if (!flushQueued) {
      flushQueued = true;
      channel.eventLoop().execute(flushTask);
    }
  }

  private void flush() {
    flushQueued = false;
    channel.flush();
  }

  private void tick() {
    if (!channel.isActive()) {
      return;
    }
    long now = System.nanoTime();
    if (streams.isEmpty()) {
      if (now - lastActivity >= idleNanos) {
        log.debug("closing idle REST HTTP/2 connection {} ({} ms without a stream)", channel.remoteAddress(),
            TimeUnit.NANOSECONDS.toMillis(idleNanos));
        channel.close();
      }
      return;
    }
    for (Stream stream : List.copyOf(streams)) {
      if (stream.answeredAt != 0 && now - stream.answeredAt >= idleNanos) {
        log.debug("closing REST HTTP/2 connection {}: an answer not read by the client for {} ms",
            channel.remoteAddress(), TimeUnit.NANOSECONDS.toMillis(idleNanos));
        channel.close();
        return;
      }
      if (!stream.requestDone && stream.ctx.channel().config().isAutoRead() && now - stream.started >= requestNanos) {
        stream.refuse(HttpResponseStatus.REQUEST_TIMEOUT,
            "the request did not arrive within " + TimeUnit.NANOSECONDS.toMillis(requestNanos) + " ms");
      }
    }
  }

  /** One stream's guard: between the HTTP object codec and the aggregator. */
  private final class Stream extends ChannelDuplexHandler {
    ChannelHandlerContext ctx;
    long started;
    boolean requestDone;
    boolean refused;
    long answeredAt;
    long requestBytes;
    long answerBytes;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      this.ctx = ctx;
      started = System.nanoTime();
      streams.add(this);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (refused) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof HttpContent content) {
        int n = content.content().readableBytes();
        requestBytes += n;
        heldBytes += n;
        if (heldBytes > maxHeldBytes) {
          ReferenceCountUtil.release(msg);
          refuse(HttpResponseStatus.TOO_MANY_REQUESTS, "this connection holds more than " + maxHeldBytes
              + " bytes of requests and unsent answers; read the answers or use another connection");
          return;
        }
        if (msg instanceof LastHttpContent) {
          requestDone = true;
        }
      }
      ctx.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
      boolean last = HttpConnectionGuard.isFinalAnswer(msg);
      if (last) {
        heldBytes -= requestBytes; // answered: the request's buffers were released when it was handled
        requestBytes = 0;
      }
      if (msg instanceof FullHttpResponse answer && heldBytes + answer.content().readableBytes() > maxHeldBytes
          && answer.status().code() < 400) {
        // The client leaves earlier answers unread: this one is dropped rather than held, as on gRPC.
        answer.release();
        msg = RestHandler.errorResponse(ctx.alloc(), HttpResponseStatus.TOO_MANY_REQUESTS, "the answer was dropped: "
            + "this connection holds more than " + maxHeldBytes + " bytes of unsent answers; read them", 1, null, null);
      }
      if (msg instanceof HttpContent content) {
        int n = content.content().readableBytes();
        answerBytes += n;
        heldBytes += n;
      }
      if (last) {
        answeredAt = System.nanoTime();
      }
      super.write(ctx, msg, promise);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      streams.remove(this);
      heldBytes -= requestBytes + answerBytes;
      requestBytes = 0;
      answerBytes = 0;
      lastActivity = System.nanoTime();
      super.channelInactive(ctx);
    }

    /** Answers {@code status} on this stream and resets it; reads nothing more from it. */
    void refuse(HttpResponseStatus status, String message) {
      refused = true;
      requestDone = true;
      log.debug("REST HTTP/2 stream on {}: {}", channel.remoteAddress(), message);
      RestHandler.sendError(ctx, false, status, message, -1);
    }
  }
}
