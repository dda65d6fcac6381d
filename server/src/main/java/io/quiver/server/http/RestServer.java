package io.quiver.server.http;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.quiver.server.DataPlane;
import io.quiver.transport.ConnectionGate;
import io.quiver.transport.ConnectionLimiter;
import io.quiver.transport.ConnectionOptions;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * The REST v2 endpoint: HTTP/1.1 with keep-alive, and HTTP/2 with prior knowledge (h2c, or after TLS) on the
 * same port ({@link RestProtocolSniffer} tells them apart; {@link Http2RestConnection}), on the same Netty as
 * grpc-netty (unshaded, one pinned version), sharing the gRPC server's event loops. Request bodies are aggregated up to {@code maxBodyBytes} (larger ones
 * get 413 and the connection closes). Every connection is counted against the server's connection limits
 * ({@link ConnectionGate}) and timed, read and paused by an {@link HttpConnectionGuard}. Started and
 * closed from one thread; close is idempotent.
 */
public final class RestServer implements AutoCloseable {
  private final DataPlane plane;
  private final String host;
  private final int port;
  private final int maxBodyBytes;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Class<? extends ServerChannel> channelType;
  private final SslContext ssl;
  private final HttpRoute extra;
  private final ChannelGroup connections = new DefaultChannelGroup("rest", GlobalEventExecutor.INSTANCE);
  private final ConnectionOptions connectionOptions;
  private final ConnectionLimiter limiter;
  private Channel serverChannel;
  private final java.util.Map<String, RestRoutes> extensions = new java.util.HashMap<>();

  public RestServer(DataPlane plane, String host, int port, int maxBodyBytes, EventLoopGroup boss,
      EventLoopGroup workers, Class<? extends ServerChannel> channelType) {
    this(plane, host, port, maxBodyBytes, boss, workers, channelType, null);
  }

  /** @param ssl TLS for every connection (see TlsContexts.forHttpServer), or null for plaintext */
  public RestServer(DataPlane plane, String host, int port, int maxBodyBytes, EventLoopGroup boss,
      EventLoopGroup workers, Class<? extends ServerChannel> channelType, SslContext ssl) {
    this(plane, host, port, maxBodyBytes, boss, workers, channelType, ssl, null);
  }

  /** @param extra paths served beside REST v2 (the web console), or null */
  public RestServer(DataPlane plane, String host, int port, int maxBodyBytes, EventLoopGroup boss,
      EventLoopGroup workers, Class<? extends ServerChannel> channelType, SslContext ssl, HttpRoute extra) {
    this(plane, host, port, maxBodyBytes, boss, workers, channelType, ssl, extra, ConnectionOptions.defaults(),
        ConnectionLimiter.of(ConnectionOptions.defaults()));
  }

  /**
   * @param connections timeouts and limits of every connection (docs/hardening.md)
   * @param limiter the connection counts shared with the server's other ports
   */
  public RestServer(DataPlane plane, String host, int port, int maxBodyBytes, EventLoopGroup boss,
      EventLoopGroup workers, Class<? extends ServerChannel> channelType, SslContext ssl, HttpRoute extra,
      ConnectionOptions connections, ConnectionLimiter limiter) {
    this.connectionOptions = connections;
    this.limiter = limiter;
    this.ssl = ssl;
    this.extra = extra;
    this.plane = plane;
    this.host = host;
    this.port = port;
    this.maxBodyBytes = maxBodyBytes;
    this.boss = boss;
    this.workers = workers;
    this.channelType = channelType;
  }

  /** Serves {@code /v2/<group>/...} with {@code routes} (before {@link #start()}). */
  public RestServer withRoutes(String group, RestRoutes routes) {
    extensions.put(group, routes);
    return this;
  }

  public RestServer start() throws IOException {
    RestHandler handler = new RestHandler(plane, extra, extensions, maxBodyBytes);
    ServerBootstrap bootstrap = new ServerBootstrap()
        .group(boss, workers)
        .channel(channelType)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            connections.add(ch);
            // First: counts the connection against the limits shared with the gRPC ports (or closes it).
            ch.pipeline().addLast(new ConnectionGate(limiter, 0, "REST"));
            if (ssl != null) {
              SslHandler tls = ssl.newHandler(ch.alloc());
              tls.setHandshakeTimeoutMillis(connectionOptions.handshakeTimeoutMillis());
              ch.pipeline().addLast(tls);
            }
            // HTTP/1.1 or HTTP/2 with prior knowledge, told apart by the connection's first bytes.
            ch.pipeline().addLast(new RestProtocolSniffer(
                sniffer -> addHttp1(sniffer, handler),
                sniffer -> Http2RestConnection.install(sniffer, connectionOptions,
                    plane.maxConcurrentStreamsPerConnection(), maxBodyBytes, handler),
                connectionOptions.idleTimeoutMillis(), connectionOptions.handshakeTimeoutMillis()));
          }
        });
    try {
      serverChannel = bootstrap.bind(new InetSocketAddress(host, port)).sync().channel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while binding the REST port", e);
    } catch (Exception e) {
      throw new IOException("could not bind the REST port " + host + ":" + port + ": " + e.getMessage(), e);
    }
    return this;
  }

  /** HTTP/1.1 after the sniffer: the connection guard around Netty's codec, then the aggregator and the handler. */
  private void addHttp1(ChannelHandlerContext sniffer, RestHandler handler) {
    HttpConnectionGuard guard = new HttpConnectionGuard(connectionOptions);
    String name = sniffer.name();
    sniffer.pipeline()
        .addAfter(name, "http-guard-bytes", guard.bytes())
        .addAfter("http-guard-bytes", "http-codec", new HttpServerCodec())
        .addAfter("http-codec", "http-guard", guard.messages()) // timeouts, backpressure, request-line checks
        // Answers 100-continue and 413 for bodies over the limit.
        .addAfter("http-guard", "http-aggregator", new HttpObjectAggregator(maxBodyBytes))
        .addAfter("http-aggregator", "rest", handler);
  }

  /** The bound port. */
  public int port() {
    return ((InetSocketAddress) serverChannel.localAddress()).getPort();
  }

  /** Stops accepting connections; open ones stay until {@link #close()}. */
  public void stopAccepting() {
    if (serverChannel != null) {
      serverChannel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
  }

  @Override
  public void close() {
    stopAccepting();
    connections.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
  }
}
