package io.quiver.control.grpc;

import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.quiver.lifecycle.ModelLifecycle;
import io.quiver.transport.CallGuard;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's transport: the {@link ControlPlaneService} on its own port (8003 by default),
 * a client of the {@link ModelLifecycle} (which owns the desired state and the poller and runs whether
 * this port is open or not). Handlers run on a small pool of {@code quiver-control-N} threads (they
 * block on loads), not on the event loop. Close it before the lifecycle. Idempotent close.
 */
public final class ControlPlaneServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ControlPlaneServer.class);
  private static final int HANDLER_THREADS = 4;

  private final ModelLifecycle lifecycle;
  private final ControlPlaneOptions options;
  private final ControlPlaneService service;
  private final ExecutorService handlers;
  private Server server;
  private Server inProcess; // the same service for a client in this JVM (the web console); null until bound
  private boolean closed;

  public ControlPlaneServer(ModelLifecycle lifecycle, ControlPlaneOptions options) {
    this(lifecycle, options, null);
  }

  /** @param monitoring the server's model monitoring (SetMonitoringReference), or null when there is none */
  public ControlPlaneServer(ModelLifecycle lifecycle, ControlPlaneOptions options, MonitoringReferences monitoring) {
    this.lifecycle = lifecycle;
    this.options = options;
    this.service = new ControlPlaneService(lifecycle, options, monitoring);
    AtomicInteger n = new AtomicInteger();
    this.handlers = Executors.newFixedThreadPool(HANDLER_THREADS, r -> {
      Thread t = new Thread(r, "quiver-control-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Binds the port.
   *
   * @throws IOException when the port cannot be bound
   */
  public ControlPlaneServer start() throws IOException {
    return start(UnaryOperator.identity());
  }

  /**
   * As {@link #start()}, letting the embedding process shape the transport first: TLS
   * ({@code sslContext}) and interceptors (authentication) that live outside this module.
   */
  public synchronized ControlPlaneServer start(UnaryOperator<NettyServerBuilder> transport) throws IOException {
    if (server != null) {
      return this;
    }
    server = transport.apply(NettyServerBuilder.forAddress(new InetSocketAddress(options.bindAddress(), options.port())))
        .executor(handlers) // handlers block on loads and I/O: keep them off the event loop
        .maxInboundMessageSize(ControlPlaneOptions.MAX_MESSAGE_BYTES)
        // Unparseable messages are INVALID_ARGUMENT (not UNKNOWN plus a stack trace), like the data plane's.
        .addService(CallGuard.guard(ServerInterceptors.intercept(service, ControlPlaneService.peerInterceptor())))
        .build()
        .start();
    log.info("control plane listening on {}:{} (repository {})", options.bindAddress(), server.getPort(),
        lifecycle.manager().repository().location());
    return this;
  }

  /**
   * Also serves the service inside this JVM, for an embedded client (the web console): the same
   * handlers, the same audit lines and desired-state records as the network port, on the same
   * {@code quiver-control-N} threads. {@code transport} adds what the embedding process wraps around
   * every call (authentication), as for {@link #start(UnaryOperator)}. Call after {@link #start()};
   * at most once.
   *
   * @return the in-process server name a channel connects to ({@code InProcessChannelBuilder.forName})
   * @throws IOException when the in-process server cannot start
   */
  public synchronized String bindInProcess(UnaryOperator<ServerBuilder<?>> transport) throws IOException {
    if (server == null || closed) {
      throw new IllegalStateException("bindInProcess needs a started, open control plane");
    }
    if (inProcess != null) {
      throw new IllegalStateException("the control plane is already bound in-process");
    }
    String name = "quiver-control-" + java.util.UUID.randomUUID();
    inProcess = transport.apply(InProcessServerBuilder.forName(name))
        .executor(handlers)
        .addService(ServerInterceptors.intercept(service, ControlPlaneService.peerInterceptor()))
        .build()
        .start();
    return name;
  }

  /** The bound port (useful with port 0). */
  public synchronized int port() {
    if (server == null) {
      throw new IllegalStateException("not started");
    }
    return server.getPort();
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (inProcess != null) {
      inProcess.shutdownNow();
    }
    if (server != null) {
      server.shutdown();
      try {
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
          server.shutdownNow();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        server.shutdownNow();
      }
    }
    service.shutdown();
    handlers.shutdownNow();
  }
}
