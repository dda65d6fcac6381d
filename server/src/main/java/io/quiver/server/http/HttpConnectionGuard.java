package io.quiver.server.http;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import io.quiver.transport.ConnectionOptions;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What one REST connection may cost the server, enforced around Netty's HTTP/1.1 codec:
 *
 * <ul>
 *   <li><b>Timeouts</b>: a request's line and headers must arrive within the header timeout of its first
 *       byte, the whole request within the request timeout (else 408 and the connection closes: slowloris
 *       and slow bodies); a connection with nothing in progress for the idle timeout is closed, and so is
 *       one whose answer has not drained for that long (a client that stopped reading). Time the server
 *       itself spends (an inference running, reading paused by the server) never counts against the client.</li>
 *   <li><b>Backpressure</b>: when the connection's unsent answers pass the write buffer's high-water mark
 *       (the client reads slower than it asks), the connection is not read until they drain below the
 *       low-water mark, so a client that pipelines requests and never reads holds at most the water mark
 *       plus one answer.</li>
 *   <li><b>Request lines</b>: only HTTP/1.0 and HTTP/1.1 (else 505), and a method that is an HTTP token
 *       (else 400); either way the connection closes.</li>
 * </ul>
 *
 * <p>Two handlers share one instance per connection: {@link #bytes()} before the codec notices the first
 * byte of each request; {@link #messages()} after it sees requests and answers. One periodic check per
 * connection (a quarter of the shortest timeout) does the timing, so the request path only writes a few
 * fields: no timer or listener per request. Event loop only.
 */
final class HttpConnectionGuard {
  private static final Logger log = LoggerFactory.getLogger(HttpConnectionGuard.class);
  /** Finest tick of the periodic check. */
  private static final long MIN_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private enum Phase {
    /** No request being read (answers may be in progress). */
    IDLE,
    /** A request's first bytes arrived; its headers have not. */
    HEADERS,
    /** Headers arrived; the body has not ended. */
    BODY
  }

  private final long headerNanos;
  private final long requestNanos;
  private final long idleNanos;
  private final long tickNanos;
  private Phase phase = Phase.IDLE;
  private long requestStart;
  private long lastActivity = System.nanoTime();
  /** Requests read whose final answer has not been written yet. */
  private int unanswered;
  private long pendingAtLastTick = -1;
  private long pendingSince;
  private boolean closing;
  private boolean writabilityCheckQueued;
  /** Characters of the request line's method seen so far; negative once it has ended. */
  private int methodChars = -1;
  private ChannelHandlerContext messagesContext;
  private ScheduledFuture<?> tick;
  private final Runnable tickTask = this::tick;
  private final Runnable writabilityCheck = this::checkWritability;

  HttpConnectionGuard(ConnectionOptions options) {
    this.headerNanos = TimeUnit.MILLISECONDS.toNanos(options.headerTimeoutMillis());
    this.requestNanos = TimeUnit.MILLISECONDS.toNanos(options.requestTimeoutMillis());
    this.idleNanos = TimeUnit.MILLISECONDS.toNanos(options.idleTimeoutMillis());
    this.tickNanos = Math.max(MIN_TICK_NANOS, Math.min(headerNanos, Math.min(requestNanos, idleNanos)) / 4);
  }

  /** The handler before the HTTP codec. */
  ChannelHandler bytes() {
    return new Bytes();
  }

  /** The handler after the HTTP codec (before the aggregator). */
  ChannelHandler messages() {
    return new Messages();
  }

  private final class Bytes extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (closing) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof ByteBuf buf && buf.isReadable()) {
        if (phase == Phase.IDLE) {
          phase = Phase.HEADERS; // the first byte of the next request: its clock starts
          requestStart = System.nanoTime();
          methodChars = 0;
        }
        if (methodChars >= 0 && !scanMethod(buf)) {
          buf.release();
          refuseRaw(ctx, "malformed request method: it must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)");
          return;
        }
      }
      ctx.fireChannelRead(msg);
    }

    /**
     * Checks the method of the request line being read, byte by byte (Netty's decoder drops some control
     * characters from it, so "GET\0" would pass as GET): false when a byte is not a token character.
     */
    private boolean scanMethod(ByteBuf buf) {
      for (int i = buf.readerIndex(); i < buf.writerIndex() && methodChars >= 0; i++) {
        char c = (char) (buf.getByte(i) & 0xff);
        if (c == ' ') {
          methodChars = methodChars == 0 ? -2 : -1; // done (an empty method is the decoder's to refuse)
        } else if ((c == '\r' || c == '\n') && methodChars == 0) {
          continue; // empty lines before a request line are allowed
        } else if (!isTokenChar(c) || ++methodChars > 32) {
          return false;
        }
      }
      return true;
    }
  }

  /** Refuses from before the codec: writes the answer's bytes itself, then closes. */
  private void refuseRaw(ChannelHandlerContext ctx, String message) {
    closing = true;
    byte[] body = ("{\"error\":\"" + message + "\"}").getBytes(StandardCharsets.UTF_8);
    byte[] head = ("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: " + body.length
        + "\r\nconnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
    ctx.writeAndFlush(Unpooled.wrappedBuffer(head, body)).addListener(ChannelFutureListener.CLOSE);
  }

  private final class Messages extends ChannelDuplexHandler {
    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      messagesContext = ctx;
      tick = ctx.executor().scheduleAtFixedRate(tickTask, tickNanos, tickNanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
      stopTicking();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      stopTicking();
      super.channelInactive(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (closing) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof HttpRequest request) {
        String problem = requestLineProblem(request);
        if (problem != null) {
          ReferenceCountUtil.release(msg);
          HttpResponseStatus status = problem.startsWith("HTTP version")
              ? HttpResponseStatus.HTTP_VERSION_NOT_SUPPORTED : HttpResponseStatus.BAD_REQUEST;
          refuse(ctx, status, problem);
          return;
        }
        phase = Phase.BODY;
      }
      if (msg instanceof LastHttpContent) {
        phase = Phase.IDLE;
        unanswered++;
        lastActivity = System.nanoTime();
      }
      ctx.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
      if (isFinalAnswer(msg)) {
        unanswered = Math.max(0, unanswered - 1);
        lastActivity = System.nanoTime();
      }
      super.write(ctx, msg, promise);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
      if (!ctx.channel().isWritable()) {
        // Look again once the current task (which may be flushing right now) is over: a large answer that
        // the socket takes at once crosses the mark and back without the client being slow.
        if (!writabilityCheckQueued) {
          writabilityCheckQueued = true;
          ctx.executor().execute(writabilityCheck);
        }
      } else {
        ReadGate.resume(ctx.channel(), ReadGate.Reason.BACKPRESSURE);
      }
      super.channelWritabilityChanged(ctx);
    }
  }

  private void checkWritability() {
    writabilityCheckQueued = false;
    ChannelHandlerContext ctx = messagesContext;
    if (ctx != null && ctx.channel().isActive() && !ctx.channel().isWritable()) {
      ReadGate.pause(ctx.channel(), ReadGate.Reason.BACKPRESSURE);
    }
  }

  /** The end of an answer that is not informational (100 Continue): full answers, or a chunked one's last part. */
  private static boolean isFinalAnswer(Object msg) {
    return msg instanceof LastHttpContent && !(msg instanceof HttpResponse response && response.status().code() < 200);
  }

  /** Null when the request line is one we serve; else why not. */
  static String requestLineProblem(HttpRequest request) {
    HttpVersion version = request.protocolVersion();
    if (!"HTTP".equals(version.protocolName()) || version.majorVersion() != 1 || version.minorVersion() > 1) {
      return "HTTP version " + printable(version.text()) + " is not supported; use HTTP/1.1";
    }
    String method = request.method().name();
    if (method.isEmpty() || method.length() > 32) {
      return "malformed request method";
    }
    for (int i = 0; i < method.length(); i++) {
      if (!isTokenChar(method.charAt(i))) {
        return "malformed request method: it must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)";
      }
    }
    return null;
  }

  /** RFC 9110 tchar. */
  private static boolean isTokenChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
  }

  private static String printable(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length() && i < 40; i++) {
      char c = s.charAt(i);
      b.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return b.toString();
  }

  /** The periodic check: timeouts by phase. */
  private void tick() {
    ChannelHandlerContext ctx = messagesContext;
    if (ctx == null || closing || !ctx.channel().isActive()) {
      return;
    }
    long now = System.nanoTime();
    if (!ctx.channel().config().isAutoRead()) {
      // The server stopped reading (an inference or held requests ahead, backpressure): the client is
      // not late for what it cannot send. Its clocks start again when reading resumes.
      requestStart = now;
      lastActivity = now;
      if (phase == Phase.IDLE && unanswered == 0) {
        checkDrain(ctx, now);
      }
      return;
    }
    switch (phase) {
      case HEADERS -> {
        if (now - requestStart >= headerNanos) {
          timeout(ctx, "request headers did not arrive within " + TimeUnit.NANOSECONDS.toMillis(headerNanos) + " ms");
        }
      }
      case BODY -> {
        if (now - requestStart >= requestNanos) {
          timeout(ctx, "the request did not arrive within " + TimeUnit.NANOSECONDS.toMillis(requestNanos) + " ms");
        }
      }
      case IDLE -> {
        if (unanswered > 0) {
          lastActivity = now; // the server is working on it
        } else if (!checkDrain(ctx, now) && now - lastActivity >= idleNanos) {
          log.debug("closing idle REST connection {} ({} ms without a request)", ctx.channel().remoteAddress(),
              TimeUnit.NANOSECONDS.toMillis(idleNanos));
          closing = true;
          ctx.close();
        }
      }
    }
  }

  /**
   * True while answers wait to be sent; closes the connection when they made no progress for the idle
   * timeout (its client stopped reading).
   */
  private boolean checkDrain(ChannelHandlerContext ctx, long now) {
    ChannelOutboundBuffer out = ctx.channel().unsafe().outboundBuffer();
    long pending = out == null ? 0 : out.totalPendingWriteBytes();
    if (pending == 0) {
      pendingAtLastTick = -1;
      return false;
    }
    if (pending != pendingAtLastTick) {
      pendingAtLastTick = pending;
      pendingSince = now;
    } else if (now - pendingSince >= idleNanos) {
      log.debug("closing REST connection {}: {} answer bytes not read by the client for {} ms",
          ctx.channel().remoteAddress(), pending, TimeUnit.NANOSECONDS.toMillis(idleNanos));
      closing = true;
      ctx.close();
    }
    return true;
  }

  private void timeout(ChannelHandlerContext ctx, String why) {
    log.debug("REST connection {}: {}; closing it", ctx.channel().remoteAddress(), why);
    refuse(ctx, HttpResponseStatus.REQUEST_TIMEOUT, why);
  }

  /** Answers {@code status} with a JSON error and closes the connection; reads nothing more. */
  private void refuse(ChannelHandlerContext ctx, HttpResponseStatus status, String message) {
    closing = true;
    byte[] body = ("{\"error\":\"" + message.replace("\\", "\\\\").replace("\"", "\\\"") + "\"}")
        .getBytes(StandardCharsets.UTF_8);
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(body));
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json");
    response.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.length);
    response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    // From this handler, not the pipeline's tail: the codec before it encodes the answer.
    ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
  }

  private void stopTicking() {
    if (tick != null) {
      tick.cancel(false);
      tick = null;
    }
  }
}
