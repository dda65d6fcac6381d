package io.quiver.server;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A real HTTP/2 client with prior knowledge (h2c) over loopback, on Netty's HTTP/2 codec: one
 * connection, each request on a stream of its own. Answers are copied out of Netty's buffers.
 */
final class H2cClient implements AutoCloseable {
  /** One answer: status, headers and body bytes. */
  record Answer(int status, Map<String, String> headers, byte[] body) {
    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  private final EventLoopGroup group = new NioEventLoopGroup(1);
  final Channel connection;
  private final Http2StreamChannelBootstrap streams;

  H2cClient(int port) throws InterruptedException {
    this(port, -1);
  }

  /**
   * @param streamWindow the flow-control window each stream grants the server (SETTINGS_INITIAL_WINDOW_SIZE);
   *     0 makes a client that reads no answer body, -1 the protocol's default
   */
  H2cClient(int port, int streamWindow) throws InterruptedException {
    Http2Settings settings = Http2Settings.defaultSettings().pushEnabled(false);
    if (streamWindow >= 0) {
      settings.initialWindowSize(streamWindow);
    }
    connection = new Bootstrap().group(group).channel(NioSocketChannel.class)
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast(Http2FrameCodecBuilder.forClient().initialSettings(settings).build(),
                new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
          }
        })
        .connect("127.0.0.1", port).sync().channel();
    streams = new Http2StreamChannelBootstrap(connection);
  }

  /** Sends {@code method path} with {@code body} (null: none) and extra headers on a new stream. */
  CompletableFuture<Answer> send(HttpMethod method, String path, byte[] body, Map<String, String> headers) {
    return send(method, path, body, headers, null);
  }

  /**
   * Sends a request; {@code status}, when not null, completes with the answer's status as soon as its
   * headers arrive (HEADERS frames are not flow-controlled: a client whose window is closed sees them).
   */
  CompletableFuture<Answer> send(HttpMethod method, String path, byte[] body, Map<String, String> headers,
      CompletableFuture<Integer> status) {
    FullHttpRequest request = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, method, path,
        body == null ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
    request.headers().set(HttpHeaderNames.HOST, "127.0.0.1");
    if (body != null) {
      request.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.length);
    }
    headers.forEach(request.headers()::set);
    CompletableFuture<Answer> answer = new CompletableFuture<>();
    streams.open().addListener(opened -> {
      if (!opened.isSuccess()) {
        request.release();
        answer.completeExceptionally(opened.cause());
        return;
      }
      Http2StreamChannel stream = (Http2StreamChannel) opened.getNow();
      stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false), new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext ctx, Object msg) {
              if (status != null && msg instanceof HttpResponse r) {
                status.complete(r.status().code());
              }
              ctx.fireChannelRead(msg);
            }
          }, new HttpObjectAggregator(64 << 20), answerReader(answer));
      stream.writeAndFlush(request).addListener(w -> {
        if (!w.isSuccess()) {
          answer.completeExceptionally(w.cause());
        }
      });
    });
    return answer;
  }

  /**
   * Opens a stream and sends only the request's headers, without ending the stream: a client that never
   * sends its body. The future completes with the answer the server gives anyway.
   */
  CompletableFuture<Answer> sendHeadersOnly(HttpMethod method, String path, Map<String, String> headers) {
    CompletableFuture<Answer> answer = new CompletableFuture<>();
    onNewStream(answer, stream -> {
      stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false), new HttpObjectAggregator(64 << 20),
          answerReader(answer));
      stream.writeAndFlush(head(method, path, headers));
    });
    return answer;
  }

  /**
   * Opens a stream, sends the request's headers and {@code body} without ending the stream, then resets
   * it (RST_STREAM, as a client that gives up mid-upload). Completes once the reset is written.
   */
  CompletableFuture<Void> sendPartAndReset(HttpMethod method, String path, byte[] body, Map<String, String> headers) {
    CompletableFuture<Void> reset = new CompletableFuture<>();
    onNewStream(reset, stream -> {
      stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false));
      stream.write(head(method, path, headers));
      stream.writeAndFlush(new DefaultHttpContent(Unpooled.wrappedBuffer(body))).addListener(sent -> {
        if (!sent.isSuccess()) {
          reset.completeExceptionally(sent.cause());
          return;
        }
        // Closing a stream channel whose stream is still open sends RST_STREAM (CANCEL).
        stream.close().addListener(closed -> reset.complete(null));
      });
    });
    return reset;
  }

  /** A request's headers alone (no body follows in the same message). */
  private static HttpRequest head(HttpMethod method, String path, Map<String, String> headers) {
    HttpRequest request = new DefaultHttpRequest(HttpVersion.HTTP_1_1, method, path);
    request.headers().set(HttpHeaderNames.HOST, "127.0.0.1");
    headers.forEach(request.headers()::set);
    return request;
  }

  /** Opens a stream and hands it to {@code use}; a stream that cannot be opened fails {@code result}. */
  private void onNewStream(CompletableFuture<?> result, java.util.function.Consumer<Http2StreamChannel> use) {
    streams.open().addListener(opened -> {
      if (opened.isSuccess()) {
        use.accept((Http2StreamChannel) opened.getNow());
      } else {
        result.completeExceptionally(opened.cause());
      }
    });
  }

  /** The last handler of a stream: completes {@code answer} with the whole response, or fails it if none comes. */
  private static SimpleChannelInboundHandler<FullHttpResponse> answerReader(CompletableFuture<Answer> answer) {
    return new SimpleChannelInboundHandler<FullHttpResponse>() {
      @Override
      protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse response) {
        Map<String, String> h = new java.util.HashMap<>();
        response.headers().forEach(e -> h.put(e.getKey().toLowerCase(java.util.Locale.ROOT), e.getValue()));
        byte[] bytes = new byte[response.content().readableBytes()];
        response.content().getBytes(response.content().readerIndex(), bytes);
        answer.complete(new Answer(response.status().code(), h, bytes));
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        answer.completeExceptionally(new IllegalStateException("the stream ended without an answer"));
      }
    };
  }

  Answer get(String path) throws Exception {
    return send(HttpMethod.GET, path, null, Map.of()).get(30, TimeUnit.SECONDS);
  }

  Answer post(String path, byte[] body, Map<String, String> headers) throws Exception {
    return send(HttpMethod.POST, path, body, headers).get(30, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    connection.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }
}
