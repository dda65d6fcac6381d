package io.quiver.control.grpc;

import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.quiver.lifecycle.ControlMode;
import io.quiver.lifecycle.DesiredStateStore;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.RepositoryPoller;
import io.quiver.core.InferenceException;
import io.quiver.proto.control.v1.DesiredState;
import io.quiver.registry.WritableModelRepository;
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
 * The control plane: the {@link ControlPlaneService} on its own port (8003 by default), the desired
 * state beside the repository, and the poller that keeps the manager converged to it (and, in
 * {@link ControlMode#POLL}, to the repository). {@link #start()} first applies the stored desired
 * state, so a restarted server converges to what operators last asked for, then serves. Handlers run
 * on a small pool of {@code quiver-control-N} threads (they block on loads), not on the event loop.
 * Call {@link #close()} before closing the manager. Idempotent close.
 */
public final class ControlPlaneServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ControlPlaneServer.class);
  private static final int HANDLER_THREADS = 4;

  private final ModelManager manager;
  private final ControlPlaneOptions options;
  private final DesiredStateStore desired;
  private final ControlPlaneService service;
  private final RepositoryPoller poller;
  private final ExecutorService handlers;
  private Server server;
  private Server inProcess; // the same service for a client in this JVM (the web console); null until bound
  private boolean closed;

  public ControlPlaneServer(ModelManager manager, ControlPlaneOptions options) {
    this(manager, options, null);
  }

  /** @param monitoring the server's model monitoring (SetMonitoringReference), or null when there is none */
  public ControlPlaneServer(ModelManager manager, ControlPlaneOptions options, MonitoringReferences monitoring) {
    this.manager = manager;
    this.options = options;
    this.desired = manager.repository() instanceof WritableModelRepository w ? new DesiredStateStore(w) : null;
    this.service = new ControlPlaneService(manager, desired, options, monitoring);
    boolean poll = manager.options().controlMode() == ControlMode.POLL;
    this.poller = options.pollIntervalMillis() > 0 && (desired != null || poll)
        ? new RepositoryPoller(manager, desired, poll, options.pollIntervalMillis())
        : null;
    AtomicInteger n = new AtomicInteger();
    this.handlers = Executors.newFixedThreadPool(HANDLER_THREADS, r -> {
      Thread t = new Thread(r, "quiver-control-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Applies the stored desired state (blocking until its loads finish), starts the poller, and binds
   * the port.
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
    if (desired != null) {
      try {
        DesiredState state = desired.refresh();
        if (state != null) {
          int changed = DesiredStateStore.apply(manager, state);
          log.info("desired state from {}: {} model(s) in it, {} change(s) applied", manager.repository().location(),
              state.getModelsCount(), changed);
        }
      } catch (InferenceException e) {
        log.warn("desired state not applied at start: {}", e.getMessage());
      }
    }
    if (poller != null) {
      poller.start();
    }
    server = transport.apply(NettyServerBuilder.forAddress(new InetSocketAddress(options.bindAddress(), options.port())))
        .executor(handlers) // handlers block on loads and I/O: keep them off the event loop
        .maxInboundMessageSize(ControlPlaneOptions.MAX_MESSAGE_BYTES)
        .addService(ServerInterceptors.intercept(service, ControlPlaneService.peerInterceptor()))
        .build()
        .start();
    log.info("control plane listening on {}:{} (repository {}, desired state {}, poll {})", options.bindAddress(),
        server.getPort(), manager.repository().location(), desired == null ? "off" : "on",
        poller == null ? "off" : options.pollIntervalMillis() + " ms");
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

  /** The store, or null when the repository cannot hold one. */
  public DesiredStateStore desiredState() {
    return desired;
  }

  /** The poller, or null when polling is off. */
  public RepositoryPoller poller() {
    return poller;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (poller != null) {
      poller.close();
    }
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
