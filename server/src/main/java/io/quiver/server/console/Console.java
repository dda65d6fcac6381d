package io.quiver.server.console;

import io.grpc.ServerInterceptor;
import io.quiver.server.http.RestExchange;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.quiver.lifecycle.ModelManager;
import io.quiver.server.http.HttpRoute;
import io.quiver.server.metrics.ServerMetrics;
import io.quiver.server.security.SecurityPolicy;
import java.nio.file.Path;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The operator's web console, served on the REST port under {@code /console/} (docs/console.md): the
 * static app from this jar, and its JSON API ({@link ConsoleApi}). Costs the request path one prefix
 * test in the REST handler and nothing else: no thread runs and nothing is sampled while nobody has the
 * console open (its two worker threads exist only while requests come, and time out after 30 s idle).
 *
 * <p>Lifecycle: construct before the REST port opens, {@link #started} once every port is bound (until
 * then the API answers 503 where it needs the server's facts, and refuses changes), {@link #close} before
 * the control plane closes. Thread-safe.
 */
public final class Console implements HttpRoute, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Console.class);
  static final String ROOT = "/console";
  private static final int WORKERS = 2;
  private static final int QUEUE = 64;

  private final ConsoleAssets assets = new ConsoleAssets();
  private final AuditTrail audit = new AuditTrail();
  private final ThreadPoolExecutor workers;
  private final UploadSessions uploads;
  private final ConsoleApi api;
  private ControlClient control;

  /**
   * @param security the policy REST and gRPC use, or null when security is off
   * @param maxHttpBodyBytes the REST body limit (upload chunks are sized under it)
   * @param maxUploadBytes the control plane's upload limit; uploads are refused when the control plane is off
   * @param staging where archive uploads are staged (the lifecycle's); null = the system temp directory
   */
  public Console(ModelManager models, ServerMetrics metrics, SecurityPolicy security, int maxHttpBodyBytes,
      long maxUploadBytes, io.quiver.lifecycle.UploadStaging staging) {
    AtomicInteger n = new AtomicInteger();
    workers = new ThreadPoolExecutor(WORKERS, WORKERS, 30, TimeUnit.SECONDS, new ArrayBlockingQueue<>(QUEUE), r -> {
      Thread t = new Thread(r, "quiver-console-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    workers.allowCoreThreadTimeOut(true);
    uploads = new UploadSessions(maxUploadBytes, staging, maxHttpBodyBytes);
    api = new ConsoleApi(models, metrics, security, workers, uploads, audit);
    audit.attach();
  }

  /**
   * For the control plane's in-process server: names the console user's browser as the peer of the calls
   * the console makes for them (audit lines), instead of the in-process channel. Add it after the
   * authentication interceptor so that it runs first.
   */
  public static ServerInterceptor controlPeerInterceptor() {
    return ConsoleCaller.peerFromConsole();
  }

  /**
   * Every port is bound: the server page can show them, and changes can go to the control plane.
   *
   * @param controlInProcessName the control plane's in-process server name, or null when it is off
   */
  public synchronized void started(ServerFacts facts, String controlInProcessName) {
    control = controlInProcessName == null ? null : new ControlClient(controlInProcessName);
    api.started(facts, control);
    log.info("web console at /console/ on the REST port {} (uPlot {})", facts.httpPort(), assets.uplotVersion());
  }

  @Override
  public boolean matches(String path) {
    return path.startsWith(ROOT) && (path.length() == ROOT.length() || path.charAt(ROOT.length()) == '/');
  }

  @Override
  public void handle(RestExchange exchange, FullHttpRequest request, String path, boolean keepAlive) {
    if (!request.decoderResult().isSuccess()) {
      ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.BAD_REQUEST, "malformed HTTP request");
      return;
    }
    try {
      if (path.equals(ROOT)) {
        ConsoleHttp.redirect(exchange, keepAlive, ROOT + "/");
      } else if (path.startsWith(ConsoleApi.PREFIX)) {
        api.handle(exchange, request, path, keepAlive);
      } else {
        assets.serve(exchange, request, path, keepAlive);
      }
    } catch (RuntimeException e) {
      log.warn("console {} {} failed", request.method(), path, e);
      ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal error: "
          + e.getClass().getSimpleName());
    }
  }

  /** Cancels open uploads, stops the workers, leaves the audit loggers. Idempotent. */
  @Override
  public synchronized void close() {
    uploads.close();
    workers.shutdownNow();
    audit.detach();
    if (control != null) {
      control.close();
      control = null;
    }
  }
}
