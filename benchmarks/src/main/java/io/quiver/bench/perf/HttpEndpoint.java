package io.quiver.bench.perf;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.concurrent.Future;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The client side of a REST run: HTTP/1.1 keep-alive connections on one Netty event loop thread (the
 * same Netty as grpc-netty; the same one-thread loop the gRPC client uses, borrowed from a
 * {@link GrpcEndpoint} when there is one, so client CPU per request compares). Each connection has
 * one request in flight at a time (no pipelining). Control questions (readiness, metadata,
 * statistics) go through {@code java.net.http} on the caller's thread, off the measured path.
 */
public final class HttpEndpoint implements AutoCloseable {
  private final String host;
  private final int port;
  private final EventLoopGroup group;
  private final boolean ownsGroup;
  private final Bootstrap bootstrap;
  private final int openLoopConnections;
  /** HTTP/2: every slot's requests go as streams of one shared connection (as the gRPC client's channel). */
  private final boolean http2;
  private volatile Channel sharedConnection; // HTTP/2: the connection new slots use; set by the caller or the loop
  private final HttpClient control = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();

  private HttpEndpoint(String host, int port, EventLoopGroup group, boolean ownsGroup, int openLoopConnections,
      boolean http2) {
    this.http2 = http2;
    this.host = host;
    this.port = port;
    this.group = group;
    this.ownsGroup = ownsGroup;
    this.openLoopConnections = openLoopConnections;
    this.bootstrap = new Bootstrap().group(group).channel(GrpcEndpoint.socketChannelType())
        .option(ChannelOption.TCP_NODELAY, true)
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            if (http2) {
              ch.pipeline().addLast(Http2FrameCodecBuilder.forClient()
                      .initialSettings(Http2Settings.defaultSettings().pushEnabled(false)).build(),
                  new Http2MultiplexHandler(new ChannelInboundHandlerAdapter())); // no inbound streams (no push)
            } else {
              ch.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(GrpcEndpoint.MAX_MESSAGE_BYTES),
                  new Connection.Handler());
            }
          }
        });
  }

  /**
   * @param target HOST:PORT of the REST listener
   * @param shareLoopWith a gRPC endpoint whose event loop to use, or null for one of our own
   * @param openLoopConnections connections an open-loop level sends over (its in-flight limit too)
   */
  public static HttpEndpoint open(String target, GrpcEndpoint shareLoopWith, int openLoopConnections) {
    return open(target, shareLoopWith, openLoopConnections, false);
  }

  /** @param busyPoll without {@code shareLoopWith}: an event loop that never sleeps (see GrpcEndpoint) */
  public static HttpEndpoint open(String target, GrpcEndpoint shareLoopWith, int openLoopConnections,
      boolean busyPoll) {
    return open(target, shareLoopWith, openLoopConnections, busyPoll, false);
  }

  /**
   * @param http2 HTTP/2 with prior knowledge (h2c): every request is a stream of one shared connection,
   *     the slots of a level (closed loop) or its {@code openLoopConnections} (open loop) become streams
   */
  public static HttpEndpoint open(String target, GrpcEndpoint shareLoopWith, int openLoopConnections,
      boolean busyPoll, boolean http2) {
    int colon = target.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("--url must be HOST:PORT; was '" + target + "'");
    }
    if (openLoopConnections < 1) {
      throw new IllegalArgumentException("--http-connections must be >= 1");
    }
    String host = target.substring(0, colon);
    int port = Integer.parseInt(target.substring(colon + 1));
    EventLoopGroup group = shareLoopWith == null ? GrpcEndpoint.newEventLoopGroup(busyPoll) : shareLoopWith.eventLoopGroup();
    return new HttpEndpoint(host, port, group, shareLoopWith == null, openLoopConnections, http2);
  }

  public EventLoop eventLoop() {
    return group.next();
  }

  int openLoopConnections() {
    return openLoopConnections;
  }

  /** The Host header value. */
  public String hostHeader() {
    return host + ":" + port;
  }

  /**
   * Connects one keep-alive connection (blocking; caller's thread, never the event loop). HTTP/2: a slot
   * on the shared connection, connected first when there is none.
   */
  Connection connect() throws InterruptedException {
    if (http2) {
      Channel shared = sharedConnection;
      if (shared == null || !shared.isActive()) {
        shared = sharedConnection = connectChannel();
      }
      return new Connection(shared, true);
    }
    return connectChannel().pipeline().get(Connection.Handler.class).connection;
  }

  private Channel connectChannel() throws InterruptedException {
    ChannelFuture f = bootstrap.connect(host, port);
    if (!f.await(10, TimeUnit.SECONDS) || !f.isSuccess()) {
      f.channel().close();
      throw new IllegalStateException("cannot connect to " + hostHeader() + ": "
          + (f.cause() == null ? "timed out" : f.cause()));
    }
    return f.channel();
  }

  /** Connects asynchronously (any thread); {@code then} runs on the event loop with the connection or null. */
  void connectAsync(java.util.function.Consumer<Connection> then) {
    if (http2) {
      Channel shared = sharedConnection;
      if (shared != null && shared.isActive()) {
        shared.eventLoop().execute(() -> then.accept(new Connection(shared, true)));
        return;
      }
      bootstrap.connect(host, port).addListener((ChannelFuture f) -> {
        if (f.isSuccess()) {
          sharedConnection = f.channel();
        }
        then.accept(f.isSuccess() ? new Connection(f.channel(), true) : null);
      });
      return;
    }
    bootstrap.connect(host, port).addListener((ChannelFuture f) ->
        then.accept(f.isSuccess() ? f.channel().pipeline().get(Connection.Handler.class).connection : null));
  }

  private URI uri(String path) {
    return URI.create("http://" + hostHeader() + path);
  }

  private HttpResponse<String> get(String path) throws IOException, InterruptedException {
    return control.send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(30)).GET().build(),
        HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  /** Waits until GET /v2/models/{m}[/versions/{v}]/ready answers 200, polling every 200 ms. */
  public void awaitModelReady(String model, String version, long timeoutNanos) throws InterruptedException {
    long deadline = System.nanoTime() + timeoutNanos;
    String last = "";
    while (true) {
      try {
        HttpResponse<String> r = get(HttpInferRequest.modelPath(model, version) + "/ready");
        if (r.statusCode() == 200) {
          return;
        }
        last = "HTTP " + r.statusCode();
      } catch (IOException e) {
        last = e.toString();
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("model '" + model + "' not ready after waiting: " + last);
      }
      Thread.sleep(200);
    }
  }

  /** GET /v2/models/{m}[/versions/{v}]: the metadata JSON, read into the gRPC message. */
  public ModelMetadataResponse metadata(String model, String version) throws IOException, InterruptedException {
    HttpResponse<String> r = get(HttpInferRequest.modelPath(model, version));
    if (r.statusCode() != 200) {
      throw new IllegalStateException("model metadata: HTTP " + r.statusCode() + ": " + r.body());
    }
    ModelMetadataResponse.Builder metadata = ModelMetadataResponse.newBuilder();
    JsonFormat.parser().ignoringUnknownFields().merge(r.body(), metadata);
    return metadata.build();
  }

  /**
   * {inference_count, execution_count} of the model from GET /v2/models/{m}/stats (summed over
   * versions), or null when the server does not answer it.
   */
  long[] statistics(String model) {
    try {
      HttpResponse<String> r = get(HttpInferRequest.modelPath(model, "") + "/stats");
      if (r.statusCode() != 200) {
        return null;
      }
      Struct.Builder root = Struct.newBuilder();
      JsonFormat.parser().merge(r.body(), root);
      Value stats = root.getFieldsMap().get("model_stats");
      if (stats == null || !stats.hasListValue()) {
        return null;
      }
      long inferences = 0;
      long executions = 0;
      for (Value m : stats.getListValue().getValuesList()) {
        var fields = m.getStructValue().getFieldsMap();
        if (fields.getOrDefault("name", Value.getDefaultInstance()).getStringValue().equals(model)) {
          inferences += (long) fields.getOrDefault("inference_count", Value.getDefaultInstance()).getNumberValue();
          executions += (long) fields.getOrDefault("execution_count", Value.getDefaultInstance()).getNumberValue();
        }
      }
      return new long[] {inferences, executions};
    } catch (IOException | RuntimeException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  @Override
  public void close() {
    if (ownsGroup) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
  }

  /** What a connection reports for each request: the HTTP status (0 = no answer: connection failed). */
  interface Callback {
    void done(int status, String error);
  }

  /**
   * One keep-alive connection with at most one request in flight; HTTP/2: one slot of the shared
   * connection, each request a new stream of it. Confined to the event loop (except {@link #close}).
   */
  static final class Connection {
    private final Channel channel;
    private final Http2StreamChannelBootstrap streams; // HTTP/2; null for HTTP/1.1
    private Callback pending;
    private boolean keepAlive = true;

    Connection(Channel channel) {
      this(channel, false);
    }

    Connection(Channel channel, boolean http2) {
      this.channel = channel;
      this.streams = http2 ? new Http2StreamChannelBootstrap(channel).handler(new ChannelInitializer<Channel>() {
        @Override
        protected void initChannel(Channel stream) {
          stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false),
              new HttpObjectAggregator(GrpcEndpoint.MAX_MESSAGE_BYTES));
        }
      }) : null;
    }

    /** Whether another request may be sent on it. */
    boolean usable() {
      return keepAlive && channel.isActive();
    }

    void send(HttpInferRequest request, Callback callback) {
      pending = callback;
      if (streams != null) {
        sendOnStream(request);
        return;
      }
      channel.writeAndFlush(request.newRequest()).addListener(f -> {
        if (!f.isSuccess()) {
          fail("write failed: " + f.cause());
          channel.close();
        }
      });
    }

    private void sendOnStream(HttpInferRequest request) {
      streams.open().addListener((Future<Http2StreamChannel> opened) -> {
        if (!opened.isSuccess()) {
          fail("cannot open an HTTP/2 stream: " + opened.cause());
          return;
        }
        Http2StreamChannel stream = opened.getNow();
        stream.pipeline().addLast(new StreamHandler(this));
        stream.writeAndFlush(request.newRequest()).addListener(f -> {
          if (!f.isSuccess()) {
            stream.close();
          }
        });
      });
    }

    private void fail(String why) {
      Callback c = pending;
      pending = null;
      keepAlive = false;
      if (c != null) {
        c.done(0, why);
      }
    }

    /** Closes the connection (HTTP/2: the shared one, waited for off the event loop so the next level opens a new one). */
    void close() {
      if (streams != null && !channel.eventLoop().inEventLoop()) {
        channel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
      } else {
        channel.close();
      }
    }

    /** An answer of this connection (HTTP/1.1) or of its current stream (HTTP/2). */
    private void answered(ChannelHandlerContext ctx, FullHttpResponse response) {
      Callback callback = pending;
      pending = null;
      if (!HttpUtil.isKeepAlive(response)) {
        keepAlive = false;
        ctx.close();
      }
      Handler.report(callback, response);
    }

    /** HTTP/2: one request's stream; a stream that ends without an answer fails the request, not the slot. */
    private static final class StreamHandler extends SimpleChannelInboundHandler<FullHttpResponse> {
      private final Connection connection;
      private boolean answered;

      StreamHandler(Connection connection) {
        this.connection = connection;
      }

      @Override
      protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse response) {
        answered = true;
        Callback callback = connection.pending;
        connection.pending = null;
        Handler.report(callback, response);
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        if (!answered) {
          Callback callback = connection.pending;
          connection.pending = null;
          if (!connection.channel.isActive()) {
            connection.keepAlive = false;
          }
          if (callback != null) {
            callback.done(0, "the HTTP/2 stream ended without an answer");
          }
        }
        super.channelInactive(ctx);
      }

      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
      }
    }

    static final class Handler extends SimpleChannelInboundHandler<FullHttpResponse> {
      Connection connection;

      @Override
      public void channelRegistered(ChannelHandlerContext ctx) throws Exception {
        connection = new Connection(ctx.channel());
        super.channelRegistered(ctx);
      }

      @Override
      protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse response) {
        connection.answered(ctx, response);
      }

      static void report(Callback callback, FullHttpResponse response) {
        if (callback == null) {
          return; // an answer nobody asked for
        }
        int status = response.status().code();
        if (status == 200) {
          callback.done(200, null);
        } else {
          String body = response.content().toString(StandardCharsets.UTF_8);
          callback.done(status, "HTTP " + status + (body.isEmpty() ? "" : ": " + (body.length() > 300 ? body.substring(0, 300) : body)));
        }
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        connection.fail("connection closed by the server");
        super.channelInactive(ctx);
      }

      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        connection.fail(cause.toString());
        ctx.close();
      }
    }
  }
}
