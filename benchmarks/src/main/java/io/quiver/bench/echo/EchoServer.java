package io.quiver.bench.echo;

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.quiver.proto.inference.ModelMetadataResponse;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The bare echo baseline as its own server: {@link EchoService} behind the same Netty set-up as
 * QuiverServer (epoll when available, one boss thread, one worker event loop per core unless told,
 * direct executor, the same message limits), so the difference in a side-by-side run is Quiver's own
 * work. {@code start}/{@code close} are symmetric; close is idempotent.
 */
@Command(name = "quiver echo-server", mixinStandardHelpOptions = true,
    description = "Bare grpc-java KServe v2 echo server (the protocol-overhead baseline).")
public final class EchoServer implements AutoCloseable, Callable<Integer> {
  /** Same as ServerOptions.DEFAULT_MAX_MESSAGE_BYTES. */
  public static final int MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

  @Option(names = "--grpc-port", defaultValue = "8001", description = "Port; 0 picks a free one (default ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--host", defaultValue = "0.0.0.0", description = "Address to bind (default ${DEFAULT-VALUE}).")
  String host;

  @Option(names = "--http-port", defaultValue = "-1",
      description = "Also serve the REST v2 echo (HTTP/1.1) on this port, on the same event loops; -1 = off (default).")
  int httpPort;

  @Option(names = "--event-loop-threads", defaultValue = "0", description = "Netty worker threads; 0 = one per core.")
  int eventLoopThreads;

  @Option(names = "--input", defaultValue = "INPUT0:FP32:-1,16", paramLabel = "NAME:TYPE:DIMS",
      description = "The input ModelMetadata advertises (default ${DEFAULT-VALUE}).")
  String inputSpec;

  private EventLoopGroup boss;
  private EventLoopGroup workers;
  private Server server;
  private Channel httpChannel;

  public static void main(String[] args) {
    System.exit(new CommandLine(new EchoServer()).execute(args));
  }

  /** An echo server for tests and embedding: port 0 picks a free one. */
  public static EchoServer create(String host, int port, int eventLoopThreads) {
    EchoServer echo = new EchoServer();
    echo.host = host;
    echo.port = port;
    echo.eventLoopThreads = eventLoopThreads;
    echo.inputSpec = "INPUT0:FP32:-1,16";
    echo.httpPort = -1;
    return echo;
  }

  /** Also serves the REST v2 echo on {@code httpPort} (0 picks a free one; see {@link #httpPort()}); before start. */
  public EchoServer withHttpPort(int httpPort) {
    this.httpPort = httpPort;
    return this;
  }

  @Override
  public Integer call() throws Exception {
    start();
    Runtime.getRuntime().addShutdownHook(new Thread(this::close, "echo-shutdown"));
    System.out.printf("echo server listening on %s:%d (%s)%s%n", host, port(), Epoll.isAvailable() ? "epoll" : "nio",
        httpPort() >= 0 ? ", REST echo on port " + httpPort() : "");
    System.out.flush();
    server.awaitTermination();
    return 0;
  }

  public EchoServer start() throws IOException {
    int threads = eventLoopThreads > 0 ? eventLoopThreads : Runtime.getRuntime().availableProcessors();
    Class<? extends ServerChannel> channelType;
    if (Epoll.isAvailable()) {
      boss = new EpollEventLoopGroup(1, new DefaultThreadFactory("grpc-boss", true));
      workers = new EpollEventLoopGroup(threads, new DefaultThreadFactory("grpc-worker", true));
      channelType = EpollServerSocketChannel.class;
    } else {
      boss = new NioEventLoopGroup(1, new DefaultThreadFactory("grpc-boss", true));
      workers = new NioEventLoopGroup(threads, new DefaultThreadFactory("grpc-worker", true));
      channelType = NioServerSocketChannel.class;
    }
    EchoService service = new EchoService(parseInput(inputSpec));
    server = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
        .channelType(channelType)
        .bossEventLoopGroup(boss)
        .workerEventLoopGroup(workers)
        // The echo never blocks: run it on the event loop, as Quiver runs ModelInfer.
        .directExecutor()
        .maxInboundMessageSize(MAX_MESSAGE_BYTES)
        .maxInboundMetadataSize(64 * 1024)
        .addService(service)
        .build()
        .start();
    if (httpPort >= 0) {
      startHttp(channelType, service);
    }
    return this;
  }

  /** The REST v2 echo: Netty's HTTP/1.1 codec and aggregator, as Quiver's REST server has them. */
  private void startHttp(Class<? extends ServerChannel> channelType, EchoService service) throws IOException {
    HttpEchoHandler handler = new HttpEchoHandler(service);
    ServerBootstrap bootstrap = new ServerBootstrap()
        .group(boss, workers)
        .channel(channelType)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            ch.pipeline().addLast(new HttpServerCodec(), new HttpObjectAggregator(MAX_MESSAGE_BYTES), handler);
          }
        });
    try {
      httpChannel = bootstrap.bind(new InetSocketAddress(host, httpPort)).sync().channel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while binding the REST echo port", e);
    }
  }

  /** The REST echo's bound port, or -1 when it is off. */
  public int httpPort() {
    return httpChannel == null ? -1 : ((InetSocketAddress) httpChannel.localAddress()).getPort();
  }

  public int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    if (httpChannel != null) {
      httpChannel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdownNow();
      try {
        server.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    if (boss != null) {
      boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
  }

  static ModelMetadataResponse.TensorMetadata parseInput(String spec) {
    String[] parts = spec.split(":");
    if (parts.length != 3) {
      throw new IllegalArgumentException("--input must be NAME:TYPE:D1,D2,...; was '" + spec + "'");
    }
    List<Long> dims = new ArrayList<>();
    for (String d : parts[2].split(",")) {
      dims.add(Long.parseLong(d.trim()));
    }
    return ModelMetadataResponse.TensorMetadata.newBuilder().setName(parts[0]).setDatatype(parts[1])
        .addAllShape(dims).build();
  }
}
