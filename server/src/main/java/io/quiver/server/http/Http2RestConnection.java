package io.quiver.server.http;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2FrameStream;
import io.netty.handler.codec.http2.Http2FrameStreamEvent;
import io.netty.handler.codec.http2.Http2FrameStreamException;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.concurrent.ScheduledFuture;
import io.quiver.transport.ConnectionOptions;
import java.util.ArrayList;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One REST connection that speaks HTTP/2 (cleartext with prior knowledge; {@link RestProtocolSniffer}
 * decides). It sits on the connection's own pipeline behind Netty's frame codec: a stream's HEADERS and
 * DATA frames become one request (Netty's {@link HttpConversionUtil} for the headers), which
 * {@link RestHandler} serves with the stream as its {@link RestExchange}; the answer goes back as a
 * HEADERS and a DATA frame on that stream. No channel or pipeline per stream: a request costs its frames,
 * its request object and a small state object, as a gRPC call does in grpc-java's transport.
 *
 * <p>A batch's answers for this connection are written to their streams and the connection is flushed
 * once, after the batch's delivery task ({@link #flushSoon}), as gRPC's transport does, instead of a write
 * system call per answer.
 *
 * <p>What one connection may cost:
 * <ul>
 *   <li><b>Streams</b>: at most {@code maxConcurrentStreams} open at once (SETTINGS_MAX_CONCURRENT_STREAMS,
 *       the gRPC ports' per-connection call limit); header lists at most {@link #MAX_HEADER_LIST_BYTES};
 *       a body at most the REST body limit (else 413 and the stream is reset).</li>
 *   <li><b>Bytes held</b>: request bodies read and not yet answered, and answers not yet sent, over all
 *       its streams, at most the per-connection pending-answer bound
 *       ({@code --grpc-max-pending-answer-bytes-per-connection}); past it a new request is answered 429 and
 *       its stream reset, and an answer that would pass it is replaced by a 429 ("the answer was
 *       dropped"). Answers wait for the client's flow-control window, so a client that does not read
 *       holds at most the bound plus one small error per stream. Request bytes are returned to the
 *       client's flow-control window as they are read: the bound, not the window, limits them.</li>
 *   <li><b>Time</b>: a stream's request must arrive within the request timeout (else 408 and the stream is
 *       reset); a connection with no open stream for the idle timeout, or whose client leaves an answer
 *       unread that long, is closed (GOAWAY).</li>
 * </ul>
 * Netty's codec adds the protocol's own guards (rapid reset, CONTINUATION and empty-frame floods).
 * Trailers a client sends after a request body end the request and are not read.
 *
 * <p>Event loop only (the connection and its streams), except {@link Stream}'s methods that
 * {@link RestExchange} allows from any thread.
 */
final class Http2RestConnection extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(Http2RestConnection.class);
  /** The most bytes of header fields one request may send (HPACK-decoded), as on the gRPC ports. */
  static final int MAX_HEADER_LIST_BYTES = 64 * 1024;
  private static final long MIN_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  /** The most a body's buffer is given up front for its declared length; past it the buffer grows as bytes come. */
  private static final int MAX_PRESIZED_BODY = 1 << 20;

  private final RestHandler handler;
  private final long maxHeldBytes;
  private final int maxBodyBytes;
  private final long requestNanos;
  private final long idleNanos;
  private final IntObjectHashMap<Stream> streams = new IntObjectHashMap<>();
  private final Runnable flushTask = this::flush;
  private ChannelHandlerContext ctx;
  private long heldBytes;
  private long lastActivity = System.nanoTime();
  private boolean flushQueued;
  private ScheduledFuture<?> tick;

  private Http2RestConnection(ConnectionOptions options, int maxBodyBytes, RestHandler handler) {
    this.handler = handler;
    this.maxHeldBytes = options.maxPendingAnswerBytesPerConnection();
    this.maxBodyBytes = maxBodyBytes;
    this.requestNanos = TimeUnit.MILLISECONDS.toNanos(options.requestTimeoutMillis());
    this.idleNanos = TimeUnit.MILLISECONDS.toNanos(options.idleTimeoutMillis());
  }

  /** Adds the HTTP/2 handlers after {@code ctx} (the sniffer's): Netty's frame codec, then this connection. */
  static void install(ChannelHandlerContext ctx, ConnectionOptions options, int maxConcurrentStreams, int maxBodyBytes,
      RestHandler handler) {
    Http2FrameCodec codec = Http2FrameCodecBuilder.forServer()
        .initialSettings(Http2Settings.defaultSettings()
            .maxConcurrentStreams(maxConcurrentStreams)
            .maxHeaderListSize(MAX_HEADER_LIST_BYTES))
        .validateHeaders(true)
        .build();
    ctx.pipeline().addAfter(ctx.name(), "h2-codec", codec)
        .addAfter("h2-codec", "h2-rest", new Http2RestConnection(options, maxBodyBytes, handler));
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    this.ctx = ctx;
    long tickNanos = Math.max(MIN_TICK_NANOS, Math.min(requestNanos, idleNanos) / 4);
    tick = ctx.executor().scheduleAtFixedRate(this::tick, tickNanos, tickNanos, TimeUnit.NANOSECONDS);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Http2HeadersFrame headers) {
      onHeaders(headers);
    } else if (msg instanceof Http2DataFrame data) {
      onData(data);
    } else {
      // Settings, pings, GOAWAY, window updates and resets: the codec has acted on them (a reset stream's
      // close reaches userEventTriggered as its state change).
      ReferenceCountUtil.release(msg);
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object event) throws Exception {
    if (event instanceof Http2FrameStreamEvent change && change.type() == Http2FrameStreamEvent.Type.State
        && change.stream().state() == Http2Stream.State.CLOSED) {
      Stream stream = streams.get(change.stream().id());
      if (stream != null) {
        closed(stream);
      }
      return;
    }
    super.userEventTriggered(ctx, event);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    tick.cancel(false);
    for (Stream stream : new ArrayList<>(streams.values())) {
      closed(stream);
    }
    super.channelInactive(ctx);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof Http2FrameStreamException e) { // the codec has reset that stream; the connection goes on
      log.debug("REST HTTP/2 stream {} on {} reset: {}", e.stream().id(), ctx.channel().remoteAddress(), e.error());
      return;
    }
    log.debug("REST HTTP/2 connection {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
    ctx.close();
  }

  private void onHeaders(Http2HeadersFrame frame) {
    Stream stream = streams.get(frame.stream().id());
    if (stream != null) { // trailers after the body: they end the request
      if (frame.isEndStream() && !stream.requestDone) {
        dispatch(stream);
      }
      return;
    }
    stream = new Stream(frame.stream());
    streams.put(frame.stream().id(), stream);
    lastActivity = stream.started;
    try {
      stream.head = HttpConversionUtil.toHttpRequest(frame.stream().id(), frame.headers(), true);
    } catch (Http2Exception | RuntimeException e) {
      stream.refuse(HttpResponseStatus.BAD_REQUEST, "malformed HTTP/2 request headers: " + e.getMessage());
      return;
    }
    if (frame.isEndStream()) {
      dispatch(stream);
      return;
    }
    long declared = HttpUtil.getContentLength(stream.head, -1L);
    if (declared > maxBodyBytes) {
      stream.refuse(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, tooLarge());
    } else if (HttpUtil.is100ContinueExpected(stream.head)) {
      Http2Headers proceed = new DefaultHttp2Headers().status(HttpResponseStatus.CONTINUE.codeAsText());
      ctx.write(new DefaultHttp2HeadersFrame(proceed, false).stream(stream.frameStream), ctx.newPromise());
      flushSoon();
    }
  }

  private void onData(Http2DataFrame frame) {
    Stream stream = streams.get(frame.stream().id());
    // Read bytes go back to the client's window at once: the byte bound below limits what is held.
    if (frame.initialFlowControlledBytes() > 0) {
      ctx.write(new DefaultHttp2WindowUpdateFrame(frame.initialFlowControlledBytes()).stream(frame.stream()),
          ctx.voidPromise());
    }
    if (stream == null || stream.requestDone) { // refused, or data after the end: nothing more is read
      frame.release();
      return;
    }
    ByteBuf part = frame.content(); // owned from here on
    int n = part.readableBytes();
    stream.requestBytes += n;
    heldBytes += n;
    if (heldBytes > maxHeldBytes) {
      part.release();
      stream.refuse(HttpResponseStatus.TOO_MANY_REQUESTS, "this connection holds more than " + maxHeldBytes
          + " bytes of requests and unsent answers; read the answers or use another connection");
      return;
    }
    if (stream.requestBytes > maxBodyBytes) {
      part.release();
      stream.refuse(HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, tooLarge());
      return;
    }
    if (stream.body == null) {
      stream.body = part; // the usual request: one DATA frame, kept as read (no copy)
    } else {
      if (!stream.bodyCopied) { // a second frame: one buffer for the whole body, each byte copied once
        long declared = HttpUtil.getContentLength(stream.head, -1L);
        int first = stream.body.readableBytes();
        // Sized for the declared length up to 1 MiB (a declared length is the client's word), then grown.
        ByteBuf whole = ctx.alloc().buffer((int) Math.max(first + n, Math.min(declared, MAX_PRESIZED_BODY)));
        whole.writeBytes(stream.body);
        stream.body.release();
        stream.body = whole;
        stream.bodyCopied = true;
      }
      stream.body.writeBytes(part);
      part.release();
    }
    if (frame.isEndStream()) {
      dispatch(stream);
    }
  }

  private String tooLarge() {
    return "the request body is larger than the limit of " + maxBodyBytes + " bytes";
  }

  /** The stream's request is whole: served now, on the event loop. */
  private void dispatch(Stream stream) {
    stream.requestDone = true;
    HttpRequest head = stream.head;
    ByteBuf body = stream.body == null ? Unpooled.EMPTY_BUFFER : stream.body;
    stream.head = null;
    stream.body = null;
    FullHttpRequest request = new DefaultFullHttpRequest(head.protocolVersion(), head.method(), head.uri(), body,
        head.headers(), EmptyHttpHeaders.INSTANCE);
    try {
      handler.serve(stream, request);
    } finally {
      request.release();
    }
  }

  /** The stream is gone (answered and closed, reset, or the connection closed): forgets it. */
  private void closed(Stream stream) {
    if (streams.remove(stream.frameStream.id()) == null) {
      return;
    }
    stream.closed = true;
    heldBytes -= stream.requestBytes; // answer bytes still queued are released by their write's failure
    stream.requestBytes = 0;
    if (stream.body != null) {
      stream.body.release();
      stream.body = null;
    }
    if (stream.inference != null) {
      stream.inference.cancel(); // the client is gone: a request still queued is dropped before it runs
      stream.inference = null;
    }
    lastActivity = System.nanoTime();
  }

  /**
   * Flushes the connection once the task running now is over: every answer written to its streams
   * until then (a whole batch's, delivered as one task) leaves in one write. Event loop only.
   */
  private void flushSoon() {
    if (!flushQueued) {
      flushQueued = true;
      ctx.executor().execute(flushTask);
    }
  }

  private void flush() {
    flushQueued = false;
    ctx.flush();
  }

  private void tick() {
    if (!ctx.channel().isActive()) {
      return;
    }
    long now = System.nanoTime();
    if (streams.isEmpty()) {
      if (now - lastActivity >= idleNanos) {
        log.debug("closing idle REST HTTP/2 connection {} ({} ms without a stream)", ctx.channel().remoteAddress(),
            TimeUnit.NANOSECONDS.toMillis(idleNanos));
        ctx.close();
      }
      return;
    }
    for (Stream stream : new ArrayList<>(streams.values())) {
      if (stream.answeredAt != 0 && now - stream.answeredAt >= idleNanos) {
        log.debug("closing REST HTTP/2 connection {}: an answer not read by the client for {} ms",
            ctx.channel().remoteAddress(), TimeUnit.NANOSECONDS.toMillis(idleNanos));
        ctx.close();
        return;
      }
      if (!stream.requestDone && now - stream.started >= requestNanos) {
        stream.refuse(HttpResponseStatus.REQUEST_TIMEOUT,
            "the request did not arrive within " + TimeUnit.NANOSECONDS.toMillis(requestNanos) + " ms");
      }
    }
  }

  /**
   * One stream: its request as it arrives, then the exchange it is answered through. Its answer's bytes
   * count against the connection's bound until the DATA frame is written (this is the write's listener).
   */
  private final class Stream extends RestExchange implements ChannelFutureListener {
    final Http2FrameStream frameStream;
    final long started = System.nanoTime();
    HttpRequest head; // until dispatched
    ByteBuf body; // until dispatched; null while empty
    boolean bodyCopied; // body is this stream's own buffer, not its first DATA frame's
    boolean requestDone;
    boolean closed;
    long requestBytes;
    long answerBytes;
    long answeredAt;
    boolean resetAfterAnswer;
    RestHandler.Inference inference;

    Stream(Http2FrameStream frameStream) {
      super(Http2RestConnection.this.ctx);
      this.frameStream = frameStream;
    }

    @Override
    public boolean isActive() {
      return !closed && ctx.channel().isActive();
    }

    @Override
    public void pauseReading() {
      // the stream's request was read whole; other streams go on
    }

    @Override
    public void resumeReading() {
      // as pauseReading
    }

    @Override
    void inferenceStarted(RestHandler.Inference inference) {
      this.inference = inference;
    }

    @Override
    void inferenceAnswered(RestHandler.Inference inference) {
      if (this.inference == inference) {
        this.inference = null;
      }
    }

    @Override
    public void write(FullHttpResponse response, boolean keepAlive) {
      if (!ctx.executor().inEventLoop()) {
        ctx.executor().execute(() -> write(response, keepAlive));
        return;
      }
      if (closed) {
        response.release();
        return;
      }
      heldBytes -= requestBytes; // answered: the request's buffers were released when it was handled
      requestBytes = 0;
      FullHttpResponse answer = response;
      if (heldBytes + answer.content().readableBytes() > maxHeldBytes && answer.status().code() < 400) {
        // The client leaves earlier answers unread: this one is dropped rather than held, as on gRPC.
        answer.release();
        answer = RestHandler.errorResponse(ctx.alloc(), HttpResponseStatus.TOO_MANY_REQUESTS, "the answer was dropped: "
            + "this connection holds more than " + maxHeldBytes + " bytes of unsent answers; read them", 1, null, null);
      }
      Http2Headers headers = HttpConversionUtil.toHttp2Headers(answer, false);
      ByteBuf content = answer.content();
      boolean hasBody = content.isReadable();
      ctx.write(new DefaultHttp2HeadersFrame(headers, !hasBody).stream(frameStream), ctx.newPromise());
      answeredAt = System.nanoTime();
      resetAfterAnswer = !keepAlive;
      if (hasBody) {
        answerBytes = content.readableBytes();
        heldBytes += answerBytes;
        ChannelPromise written = ctx.newPromise();
        ctx.write(new DefaultHttp2DataFrame(content, true).stream(frameStream), written);
        written.addListener(this);
      } else {
        content.release();
        resetIfOpen();
      }
      flushSoon();
    }

    /** The answer's DATA frame is out, or failed (stream reset, connection closed). */
    @Override
    public void operationComplete(ChannelFuture future) {
      heldBytes -= answerBytes;
      answerBytes = 0;
      resetIfOpen();
    }

    /** An answer that ends the exchange for good: the client may not send the rest of its request. */
    private void resetIfOpen() {
      if (resetAfterAnswer && frameStream.state() != Http2Stream.State.CLOSED && ctx.channel().isActive()) {
        resetAfterAnswer = false;
        ctx.write(new DefaultHttp2ResetFrame(Http2Error.CANCEL).stream(frameStream), ctx.newPromise());
        flushSoon();
      }
    }

    /** Answers {@code status} on this stream and resets it; reads nothing more from it. */
    void refuse(HttpResponseStatus status, String message) {
      requestDone = true;
      head = null;
      if (body != null) {
        body.release();
        body = null;
      }
      log.debug("REST HTTP/2 stream on {}: {}", ctx.channel().remoteAddress(), message);
      RestHandler.sendError(this, false, status, message, -1);
    }
  }
}
