package io.quiver.bench.perf;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
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
  private final HttpClient control = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5)).build();

  private HttpEndpoint(String host, int port, EventLoopGroup group, boolean ownsGroup, int openLoopConnections) {
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
            ch.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(GrpcEndpoint.MAX_MESSAGE_BYTES),
                new Connection.Handler());
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
    return new HttpEndpoint(host, port, group, shareLoopWith == null, openLoopConnections);
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

  /** Connects one keep-alive connection (blocking; caller's thread, never the event loop). */
  Connection connect() throws InterruptedException {
    ChannelFuture f = bootstrap.connect(host, port);
    if (!f.await(10, TimeUnit.SECONDS) || !f.isSuccess()) {
      f.channel().close();
      throw new IllegalStateException("cannot connect to " + hostHeader() + ": "
          + (f.cause() == null ? "timed out" : f.cause()));
    }
    return f.channel().pipeline().get(Connection.Handler.class).connection;
  }

  /** Connects asynchronously (any thread); {@code then} runs on the event loop with the connection or null. */
  void connectAsync(java.util.function.Consumer<Connection> then) {
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
   * One keep-alive connection with at most one request in flight. Confined to the event loop
   * (except {@link #close}).
   */
  static final class Connection {
    private final Channel channel;
    private Callback pending;
    private boolean keepAlive = true;

    Connection(Channel channel) {
      this.channel = channel;
    }

    /** Whether another request may be sent on it. */
    boolean usable() {
      return keepAlive && channel.isActive();
    }

    void send(HttpInferRequest request, Callback callback) {
      pending = callback;
      channel.writeAndFlush(request.newRequest()).addListener(f -> {
        if (!f.isSuccess()) {
          fail("write failed: " + f.cause());
          channel.close();
        }
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

    void close() {
      channel.close();
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
        Connection c = connection;
        Callback callback = c.pending;
        c.pending = null;
        if (!HttpUtil.isKeepAlive(response)) {
          c.keepAlive = false;
          ctx.close();
        }
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
