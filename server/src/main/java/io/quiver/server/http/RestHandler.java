package io.quiver.server.http;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.util.AttributeKey;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaders;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapSetter;
import io.quiver.server.tracing.ServerTracing;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.core.InferRequest;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.proto.inference.InferBatchStatistics;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelStatistics;
import io.quiver.proto.inference.ModelStatisticsResponse;
import io.quiver.proto.inference.StatisticDuration;
import io.quiver.server.DataPlane;
import io.quiver.server.security.CallerPrincipal;
import io.quiver.server.security.Operations;
import io.quiver.server.security.Permission;
import io.quiver.server.security.SecurityPolicy;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves every REST v2 path. Runs on the Netty event loop and never blocks there: inference is
 * submitted to the same scheduler path as gRPC and answered through the request's {@link RestExchange};
 * repository load and unload run on the data plane's repository executor. Shared by all connections
 * (stateless): the last handler of every HTTP/1.1 connection's pipeline, and called by
 * {@link Http2RestConnection} for each HTTP/2 stream's request ({@link #serve}).
 *
 * <p>HTTP/1.1 answers leave in request order: while an inference request of a connection is
 * outstanding, requests that a pipelining client sends behind it are held (at most
 * {@link #MAX_PIPELINED} per connection, and the connection stops reading while any are held) and
 * handled once the answer is out, and only while the client reads its answers (the connection's write
 * buffer is below its high-water mark). A client that waits for each answer, the usual case, costs no
 * change of the connection's read interest (no syscall per request).
 */
@ChannelHandler.Sharable
final class RestHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
  private static final Logger log = LoggerFactory.getLogger(RestHandler.class);
  static final String HEADER_LENGTH = "Inference-Header-Content-Length";
  static final String API_KEY_HEADER = "x-api-key";

  /** Requests held behind an outstanding inference on one connection before it is closed as abusive. */
  static final int MAX_PIPELINED = 32;
  private static final AttributeKey<Http1Connection> CONNECTION = AttributeKey.valueOf(RestHandler.class, "connection");

  private final DataPlane plane;
  private final HttpRoute extra; // the console's paths; null = none
  private final java.util.Map<String, RestRoutes> extensions; // path group under /v2 -> routes (batch jobs)
  private final int maxBodyBytes;

  RestHandler(DataPlane plane, HttpRoute extra) {
    this(plane, extra, java.util.Map.of(), Integer.MAX_VALUE - 8);
  }

  /**
   * @param extra paths beside REST v2 that apply their own security (the web console), or null
   * @param extensions JSON API groups under {@code /v2/<group>} (batch jobs), authorized here
   * @param maxBodyBytes the most bytes a gzip or deflate body may inflate to
   */
  RestHandler(DataPlane plane, HttpRoute extra, java.util.Map<String, RestRoutes> extensions, int maxBodyBytes) {
    this.plane = plane;
    this.extra = extra;
    this.extensions = java.util.Map.copyOf(extensions);
    this.maxBodyBytes = maxBodyBytes;
  }

  /**
   * One HTTP/1.1 connection as the exchange of its requests, one at a time, and its ordering state;
   * touched only on its event loop (requests, answers and the close all run there), except where
   * {@link RestExchange} allows any thread.
   */
  private final class Http1Connection extends RestExchange {
    /** The inference whose answer is outstanding, or null. */
    private Inference outstanding;
    /** Requests read behind it, retained, in order. */
    private final ArrayDeque<FullHttpRequest> held = new ArrayDeque<>(0); // grows when a client pipelines; most never do

    Http1Connection(ChannelHandlerContext ctx) {
      super(ctx);
    }

    @Override
    public boolean isActive() {
      return ctx.channel().isActive();
    }

    @Override
    public void pauseReading() {
      ReadGate.pause(ctx.channel(), ReadGate.Reason.WORKING);
    }

    @Override
    public void resumeReading() {
      ReadGate.resume(ctx.channel(), ReadGate.Reason.WORKING);
    }

    @Override
    public void write(FullHttpResponse response, boolean keepAlive) {
      if (keepAlive) {
        response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
        ctx.writeAndFlush(response);
      } else {
        response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
      }
    }

    @Override
    void inferenceStarted(Inference inference) {
      outstanding = inference; // until its answer is out, requests behind it wait (answers in request order)
    }

    @Override
    void inferenceAnswered(Inference inference) {
      if (outstanding != inference) {
        return;
      }
      outstanding = null;
      if (!held.isEmpty()) {
        handleHeld(this);
      }
    }
  }

  private Http1Connection connection(ChannelHandlerContext ctx) {
    Http1Connection c = ctx.channel().attr(CONNECTION).get();
    if (c == null) {
      c = new Http1Connection(ctx);
      ctx.channel().attr(CONNECTION).set(c);
    }
    return c;
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
    Http1Connection connection = connection(ctx);
    // Behind an outstanding inference, or behind requests held until the client reads its answers.
    if (connection.outstanding != null || !connection.held.isEmpty()) {
      if (connection.held.size() >= MAX_PIPELINED) {
        log.debug("REST connection {} pipelined more than {} requests; closing it", ctx.channel().remoteAddress(),
            MAX_PIPELINED);
        ctx.close();
        return;
      }
      connection.held.add(request.retain()); // answered in order, after the outstanding one
      ReadGate.pause(ctx.channel(), ReadGate.Reason.PIPELINED); // and read no more until they are
      return;
    }
    serve(connection, request);
  }

  /**
   * Handles held requests while none is outstanding and the client reads its answers (a connection above
   * its write buffer's high-water mark gets no more answers until it drains; see HttpConnectionGuard).
   */
  private void handleHeld(Http1Connection connection) {
    Channel channel = connection.ctx.channel();
    while (connection.outstanding == null && !connection.held.isEmpty() && channel.isWritable()) {
      FullHttpRequest next = connection.held.poll();
      try {
        serve(connection, next);
      } finally {
        next.release();
      }
    }
    if (connection.held.isEmpty()) {
      ReadGate.resume(channel, ReadGate.Reason.PIPELINED);
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
    if (ctx.channel().isWritable()) {
      Http1Connection connection = ctx.channel().attr(CONNECTION).get();
      if (connection != null && connection.outstanding == null && !connection.held.isEmpty()) {
        handleHeld(connection);
      }
    }
    super.channelWritabilityChanged(ctx);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    Http1Connection connection = ctx.channel().attr(CONNECTION).get();
    if (connection != null) {
      Inference outstanding = connection.outstanding;
      if (outstanding != null) {
        outstanding.cancel(); // the client is gone: a request still queued is dropped before it runs
      }
      FullHttpRequest held;
      while ((held = connection.held.poll()) != null) {
        held.release();
      }
    }
    super.channelInactive(ctx);
  }

  /**
   * Serves one request, answered through {@code exchange}: an HTTP/1.1 connection's (from this handler's
   * own {@link #channelRead0}) or an HTTP/2 stream ({@link Http2RestConnection}). Event loop;
   * {@code request} is released by the caller when this returns.
   */
  void serve(RestExchange exchange, FullHttpRequest request) {
    boolean keepAlive = HttpUtil.isKeepAlive(request);
    if (!request.decoderResult().isSuccess()) {
      sendError(exchange, keepAlive, HttpResponseStatus.BAD_REQUEST, "malformed HTTP request", -1);
      return;
    }
    // The raw path, each segment decoded once later: a bad percent-escape is the client's error (400).
    String path = rawPath(request.uri());
    String escapeProblem = percentEncodingProblem(path);
    if (escapeProblem != null) {
      sendError(exchange, keepAlive, HttpResponseStatus.BAD_REQUEST, escapeProblem, -1);
      return;
    }
    if (extra != null && extra.matches(path)) {
      extra.handle(exchange, request, QueryStringDecoder.decodeComponent(path), keepAlive); // applies its own security
      return;
    }
    FullHttpRequest inflated = null;
    try {
      String[] parts = segments(path);
      CallerPrincipal principal = authorize(exchange, request, path, parts);
      String owner = principal == null ? null : principal.name(); // owns the shared memory regions it registers
      // Content-Encoding gzip/deflate: inflated here (bounded by the body limit), read as any body below.
      inflated = ContentDecoding.decode(request, maxBodyBytes);
      RestRoutes routes = parts.length >= 2 && parts[0].equals("v2") ? extensions.get(parts[1]) : null;
      if (routes != null) {
        routeExtension(exchange, inflated, keepAlive, parts, principal, routes); // copies the body before it returns
        return;
      }
      route(exchange, inflated, keepAlive, path, parts, owner);
    } catch (MethodNotAllowed e) {
      sendError(exchange, keepAlive, HttpResponseStatus.METHOD_NOT_ALLOWED, e.getMessage(), -1, null, e.allow);
    } catch (ContentDecoding.TooLarge e) {
      sendError(exchange, false, HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE, e.getMessage(), -1);
    } catch (InferenceException e) {
      sendError(exchange, keepAlive, e);
    } catch (RuntimeException e) {
      log.error("REST {} {} failed", request.method(), path, e);
      sendError(exchange, keepAlive, HttpErrors.toInferenceException(e));
    } finally {
      if (inflated != null && inflated != request) {
        inflated.release(); // every path reads the body synchronously (binary inputs are copied out)
      }
    }
  }

  /** The request target's path, not decoded, without query or fragment. */
  static String rawPath(String uri) {
    int end = uri.length();
    int query = uri.indexOf('?');
    if (query >= 0) {
      end = query;
    }
    int fragment = uri.indexOf('#');
    if (fragment >= 0 && fragment < end) {
      end = fragment;
    }
    return uri.substring(0, end);
  }

  /** Null when every '%' in the path starts a two-hex-digit escape; else what is wrong. */
  static String percentEncodingProblem(String path) {
    for (int i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
      if (i + 2 >= path.length() || Character.digit(path.charAt(i + 1), 16) < 0 || Character.digit(path.charAt(i + 2), 16) < 0) {
        return "malformed percent-encoding in the request path at offset " + i + ": '%' must be followed by two hex digits";
      }
    }
    return null;
  }

  /** A method the path does not answer: HTTP's 405 with Allow (gRPC has no such case). No stack trace. */
  static final class MethodNotAllowed extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final String allow;

    MethodNotAllowed(HttpMethod method, String path, String allow) {
      super("method " + method + " is not allowed on " + path + "; use " + allow, null, false, false);
      this.allow = allow;
    }
  }

  /**
   * The REST twin of GrpcSecurityInterceptor + the handlers' per-model checks, through the same
   * SecurityPolicy and the same table ({@link Operations#rest}): /v2/health/* is open; everything else
   * needs a credential; models need infer or metadata on the model; repository and logging need
   * administration. No-op when security is off.
   */
  private CallerPrincipal authorize(RestExchange exchange, FullHttpRequest request, String path, String[] parts) {
    SecurityPolicy policy = plane.security();
    if (policy == null) {
      return null;
    }
    Operations.RestRule rest = Operations.rest(request.method().name(), parts);
    Operations.Rule rule = rest.rule();
    if (rule.scope() == Operations.Scope.OPEN) {
      return null; // probes and load balancers
    }
    String operation = request.method() + " " + path;
    String peer = String.valueOf(exchange.remoteAddress());
    CallerPrincipal principal = policy.authenticate(request.headers().get(HttpHeaderNames.AUTHORIZATION),
        request.headers().get(API_KEY_HEADER), operation, peer);
    policy.authorize(principal, rule.permission(), rest.model(), operation, peer);
    if (rule.permission() == Permission.INFER) {
      policy.admitInference(principal, rest.model(), peer);
    }
    return principal;
  }

  /** A path group served by {@link RestRoutes}: run off the event loop, answered from its executor. */
  private void routeExtension(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String[] parts,
      CallerPrincipal principal, RestRoutes routes) {
    byte[] body = io.netty.buffer.ByteBufUtil.getBytes(request.content());
    List<String> rest = List.of(parts).subList(2, parts.length);
    java.util.Map<String, List<String>> query = new QueryStringDecoder(request.uri()).parameters();
    String method = request.method().name();
    String who = principal == null ? CallerPrincipal.ANONYMOUS : principal.name();
    String peer = String.valueOf(exchange.remoteAddress());
    exchange.pauseReading(); // one answer at a time, in order
    try {
      routes.executor().execute(() -> {
        try {
          byte[] json = routes.handle(method, rest, query, body, who, peer);
          exchange.resumeReading();
          send(exchange, keepAlive, HttpResponseStatus.OK, "application/json", io.netty.buffer.Unpooled.wrappedBuffer(json), -1);
        } catch (InferenceException e) {
          exchange.resumeReading();
          sendError(exchange, keepAlive, e);
        } catch (RuntimeException e) {
          log.error("REST {} /v2/{} failed", method, String.join("/", List.of(parts).subList(1, parts.length)), e);
          exchange.resumeReading();
          sendError(exchange, keepAlive, HttpErrors.toInferenceException(e));
        }
      });
    } catch (java.util.concurrent.RejectedExecutionException e) {
      exchange.resumeReading();
      throw InferenceException.unavailable("too many %s requests are waiting; retry later", parts[1]);
    }
  }

  /** @param parts the path's segments, each decoded ({@link #segments}) */
  private void route(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String path,
      String[] parts, String owner) {
    HttpMethod method = request.method();
    if (parts.length == 0 || !parts[0].equals("v2")) {
      throw InferenceException.notFound("no such path: %s", path);
    }
    if (parts.length == 1) {
      requireMethod(method, HttpMethod.GET, path);
      sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
        gen.writeStartObject();
        gen.writeStringField("name", "quiver");
        gen.writeStringField("version", plane.serverVersion());
        gen.writeArrayFieldStart("extensions");
        for (String e : plane.extensions()) {
          gen.writeString(e);
        }
        gen.writeEndArray();
        gen.writeEndObject();
      });
      return;
    }
    switch (parts[1]) {
      case "health" -> {
        requireMethod(method, HttpMethod.GET, path);
        if (parts.length == 3 && parts[2].equals("live")) {
          sendEmpty(exchange, keepAlive, HttpResponseStatus.OK);
        } else if (parts.length == 3 && parts[2].equals("ready")) {
          sendEmpty(exchange, keepAlive, plane.isReady() ? HttpResponseStatus.OK : HttpResponseStatus.SERVICE_UNAVAILABLE);
        } else {
          throw InferenceException.notFound("no such path: %s", path);
        }
      }
      case "models" -> routeModel(exchange, request, keepAlive, path, parts, owner);
      case "repository" -> routeRepository(exchange, request, keepAlive, path, parts);
      case "logging" -> logging(exchange, request, keepAlive, path);
      case "trace" -> {
        if (parts.length != 3 || !parts[2].equals("setting")) {
          throw InferenceException.notFound("no such path: %s", path);
        }
        traceSetting(exchange, request, keepAlive, path, "");
      }
      case "systemsharedmemory" -> SharedMemoryRoutes.system(plane, exchange, request, keepAlive, path, parts, owner);
      case "cudasharedmemory" -> SharedMemoryRoutes.cuda(request, path, parts);
      default -> throw InferenceException.notFound("no such path: %s", path);
    }
  }

  private void routeModel(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String path,
      String[] parts, String owner) {
    HttpMethod method = request.method();
    if (parts.length == 3 && parts[2].equals("stats")) { // Triton: statistics of every model
      requireMethod(method, HttpMethod.GET, path);
      sendStats(exchange, keepAlive, plane.statistics("", ""));
      return;
    }
    if (parts.length < 3) {
      throw InferenceException.notFound("no such path: %s", path);
    }
    String model = parts[2];
    String version = "";
    int next = 3;
    if (parts.length >= 5 && parts[3].equals("versions")) {
      version = parts[4];
      next = 5;
    }
    String action = parts.length == next ? "" : parts.length == next + 1 ? parts[next]
        : parts.length == next + 2 && parts[next].equals("trace") && parts[next + 1].equals("setting") ? "trace/setting"
        : null;
    if (action == null) {
      throw InferenceException.notFound("no such path: %s", path);
    }
    switch (action) {
      case "" -> {
        requireMethod(method, HttpMethod.GET, path);
        sendMetadata(exchange, keepAlive, plane.metadata(model, version));
      }
      case "ready" -> {
        requireMethod(method, HttpMethod.GET, path);
        // The protocol answers with the status alone: 200 ready, 400 not ready (or unknown).
        sendEmpty(exchange, keepAlive, plane.models().isReady(model, version)
            ? HttpResponseStatus.OK : HttpResponseStatus.BAD_REQUEST);
      }
      case "config" -> {
        requireMethod(method, HttpMethod.GET, path);
        // Triton's JSON: 64-bit integers as numbers ("dims": [16]), where protobuf's printer writes strings.
        io.quiver.proto.inference.ModelConfig config = plane.config(model, version);
        sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> ProtoJson.write(gen, config));
      }
      case "trace/setting" -> {
        if (!version.isEmpty()) {
          throw InferenceException.notFound("no such path: %s (trace settings are per model, not per version)", path);
        }
        if (!plane.models().isReady(model, "")) {
          throw InferenceException.invalidField("model_name", "Request for unknown model : %s", model);
        }
        traceSetting(exchange, request, keepAlive, path, model);
      }
      case "stats" -> {
        requireMethod(method, HttpMethod.GET, path);
        sendStats(exchange, keepAlive, plane.statistics(model, version));
      }
      case "infer" -> {
        requireMethod(method, HttpMethod.POST, path);
        infer(exchange, request, keepAlive, model, version, owner);
      }
      case "monitoring" -> { // model monitoring (issue 20): the report is built on the monitoring thread
        requireMethod(method, HttpMethod.GET, path);
        DataPlane.checkModelReference(model, version);
        var report = plane.monitoring().report(model, version);
        exchange.pauseReading(); // answered later, as repository operations are
        report.whenComplete((r, failure) -> exchange.executor().execute(() -> {
          exchange.resumeReading();
          try {
            if (failure != null) {
              sendError(exchange, keepAlive, HttpErrors.toInferenceException(failure));
            } else {
              sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> io.quiver.server.monitoring.ReportJson.write(r, gen));
            }
          } catch (RuntimeException e) {
            log.error("REST {} failed", path, e);
            sendError(exchange, keepAlive, HttpErrors.toInferenceException(e));
          }
        }));
      }
      default -> throw InferenceException.notFound("no such path: %s", path);
    }
  }

  private void routeRepository(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String path,
      String[] parts) {
    requireMethod(request.method(), HttpMethod.POST, path);
    if (parts.length == 3 && parts[2].equals("index")) {
      boolean readyOnly = false;
      if (request.content().isReadable()) {
        JsonNode body = parse(request.content(), request.content().readableBytes());
        JsonNode ready = body.get("ready");
        readyOnly = ready != null && ready.asBoolean(false);
      }
      boolean onlyReady = readyOnly;
      List<ModelVersionStatus> index = plane.models().index();
      sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
        gen.writeStartArray();
        for (ModelVersionStatus status : index) {
          if (onlyReady && status.state() != ModelVersionStatus.State.READY) {
            continue;
          }
          gen.writeStartObject();
          gen.writeStringField("name", status.name());
          gen.writeStringField("version", status.version());
          gen.writeStringField("state", status.state().name());
          gen.writeStringField("reason", status.reason() == null ? "" : status.reason());
          gen.writeEndObject();
        }
        gen.writeEndArray();
      });
      return;
    }
    if (parts.length == 5 && parts[2].equals("models") && (parts[4].equals("load") || parts[4].equals("unload"))) {
      String model = parts[3];
      boolean load = parts[4].equals("load");
      io.quiver.server.RepositoryLoads.Request parameters = io.quiver.server.RepositoryLoads.Request.NONE;
      if (load && request.content().isReadable()) {
        // Triton's body: {"parameters": {"config": "<json>", "file:1/model.onnx": "<base64>"}}
        JsonNode body = parse(request.content(), request.content().readableBytes());
        parameters = plane.repositoryLoads().fromJson(body.get("parameters"));
      }
      io.quiver.server.RepositoryLoads.Request loadParameters = parameters;
      exchange.pauseReading();
      // Blocks while the model loads or drains: on the repository executor, never on the event loop.
      plane.runRepositoryOperation(load ? () -> plane.load(model, loadParameters) : () -> plane.unload(model), failure -> {
        exchange.resumeReading();
        if (failure == null) {
          sendEmpty(exchange, keepAlive, HttpResponseStatus.OK);
        } else {
          sendError(exchange, keepAlive, HttpErrors.toInferenceException(failure));
        }
      });
      return;
    }
    throw InferenceException.notFound("no such path: %s", path);
  }

  /**
   * Triton's logging extension: GET the settings; POST Triton's fields ({@code log_info},
   * {@code log_warning}, {@code log_error} booleans, {@code log_verbose_level} an integer,
   * {@code log_format} "default", "ISO8601" or Quiver's "json"; see {@link io.quiver.server.LogSettings}).
   * Quiver's addition: {@code {"level": "DEBUG", "logger": "io.quiver.batching"}} sets one logger's level
   * ("logger" defaults to the root); the answer lists such levels under {@code loggers}.
   */
  private void logging(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String path) {
    if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
      throw InferenceException.unimplemented("runtime log settings need logback as the SLF4J backend");
    }
    if (request.method().equals(HttpMethod.POST)) {
      JsonNode body = parse(request.content(), request.content().readableBytes());
      java.util.Map<String, Object> triton = new java.util.LinkedHashMap<>();
      String levelName = null;
      String loggerName = org.slf4j.Logger.ROOT_LOGGER_NAME;
      for (var it = body.fields(); it.hasNext(); ) {
        var field = it.next();
        JsonNode v = field.getValue();
        switch (field.getKey()) {
          case "level" -> {
            if (!v.isTextual()) {
              throw InferenceException.invalidField("level", "'level' must be one of TRACE, DEBUG, INFO, WARN, ERROR, OFF");
            }
            levelName = v.textValue();
          }
          case "logger" -> {
            if (!v.isTextual()) {
              throw InferenceException.invalidField("logger", "'logger' must be a logger name (a string)");
            }
            loggerName = v.textValue();
          }
          default -> triton.put(field.getKey(), v.isBoolean() ? (Object) v.booleanValue()
              : v.isIntegralNumber() ? (Object) v.longValue() : v.isTextual() ? v.textValue() : null);
        }
      }
      Level level = null;
      if (levelName != null) {
        level = Level.toLevel(levelName.toUpperCase(Locale.ROOT), null);
        if (level == null) {
          throw InferenceException.invalidField("level",
              "'level' must be one of TRACE, DEBUG, INFO, WARN, ERROR, OFF; was '%s'", levelName);
        }
      } else if (triton.isEmpty()) {
        throw InferenceException.invalidField("", "the body names no log setting (Triton's log_info, log_warning,"
            + " log_error, log_verbose_level, log_format; or Quiver's level and logger)");
      }
      io.quiver.server.LogSettings.apply(triton); // checks everything before changing anything
      if (level != null) {
        context.getLogger(loggerName).setLevel(level);
        log.info("log level of '{}' set to {}", loggerName, level);
      }
    } else if (!request.method().equals(HttpMethod.GET)) {
      throw new MethodNotAllowed(request.method(), path, "GET, POST");
    }
    java.util.Map<String, Object> settings = io.quiver.server.LogSettings.current();
    sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      for (var e : settings.entrySet()) {
        if (e.getValue() instanceof Boolean b) {
          gen.writeBooleanField(e.getKey(), b);
        } else if (e.getValue() instanceof Number n) {
          gen.writeNumberField(e.getKey(), n.longValue());
        } else {
          gen.writeStringField(e.getKey(), String.valueOf(e.getValue()));
        }
      }
      gen.writeStringField("level", context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).getLevel().toString());
      gen.writeObjectFieldStart("loggers");
      for (var e : io.quiver.server.LogSettings.loggerLevels().entrySet()) {
        gen.writeStringField(e.getKey(), e.getValue());
      }
      gen.writeEndObject();
      gen.writeEndObject();
    });
  }

  /**
   * Triton's trace extension over REST: GET the settings (of one model, or global), POST changes as
   * {@code {"trace_rate": "10", "trace_level": ["TIMESTAMPS"], ...}} (values are strings or lists of
   * strings, null clears a model's own value), answered with the settings now in force.
   */
  private void traceSetting(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String path,
      String model) {
    java.util.Map<String, List<String>> now;
    if (request.method().equals(HttpMethod.POST)) {
      JsonNode body = request.content().isReadable() ? parse(request.content(), request.content().readableBytes())
          : RestInferCodec.JSON.createObjectNode();
      java.util.Map<String, List<String>> changes = new java.util.LinkedHashMap<>();
      for (var it = body.fields(); it.hasNext(); ) {
        var field = it.next();
        JsonNode v = field.getValue();
        List<String> values = new ArrayList<>();
        if (v.isArray()) {
          for (JsonNode item : v) {
            values.add(item.asText());
          }
        } else if (!v.isNull()) {
          values.add(v.asText());
        }
        changes.put(field.getKey(), values);
      }
      now = changes.isEmpty() ? plane.traceSettings().get(model) : plane.traceSettings().update(model, changes);
    } else {
      requireMethod(request.method(), HttpMethod.GET, path);
      now = plane.traceSettings().get(model);
    }
    sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      for (var e : now.entrySet()) {
        if (e.getKey().equals(io.quiver.server.TraceSettings.LEVEL)) {
          gen.writeArrayFieldStart(e.getKey());
          for (String v : e.getValue()) {
            gen.writeString(v);
          }
          gen.writeEndArray();
        } else {
          gen.writeStringField(e.getKey(), e.getValue().isEmpty() ? "" : e.getValue().get(0));
        }
      }
      gen.writeEndObject();
    });
  }

  private void infer(RestExchange exchange, FullHttpRequest request, boolean keepAlive, String model,
      String version, String owner) {
    long start = System.nanoTime();
    ByteBuf body = request.content();
    int total = body.readableBytes();
    int headerLength = total;
    String headerValue = request.headers().get(HEADER_LENGTH);
    if (headerValue != null) {
      try {
        headerLength = Integer.parseInt(headerValue.trim());
      } catch (NumberFormatException e) {
        headerLength = -1;
      }
      if (headerLength < 0 || headerLength > total) {
        throw InferenceException.invalidField(HEADER_LENGTH, "%s is '%s', but the body has %d bytes", HEADER_LENGTH,
            headerValue, total);
      }
    }
    // Before the JSON is parsed: a full queue is refused for the price of a lookup (the priority is not
    // known yet, so a model with several priority levels is checked by submit alone).
    plane.admit(model, version, "", InferenceScheduler.UNKNOWN_PRIORITY, InferRequest.NO_DEADLINE, "http");
    Span span = plane.tracing() == null ? null
        : plane.startSpan(ServerTracing.extract(request.headers(), HEADER_GETTER), model, "", "http");
    SpanContext trace = span == null ? null : span.getSpanContext();
    RestInferCodec.Decoded decoded;
    try {
      RestInferCodec.Parsed header = parseRequest(body, headerLength);
      ByteBuffer binary = body.nioBuffer(body.readerIndex() + headerLength, total - headerLength);
      decoded = RestInferCodec.decode(header, binary, plane.sharedMemory(), owner);
    } catch (RuntimeException e) {
      plane.failSpan(span, e);
      if (e instanceof InferenceException) {
        plane.countFailure(model, version, System.nanoTime() - start); // Triton counts invalid requests as failures
      }
      if (trace != null && e instanceof InferenceException ie) {
        sendError(exchange, keepAlive, ie, trace);
        return;
      }
      throw e;
    }
    if (span != null && !decoded.id().isEmpty()) {
      span.setAttribute("quiver.request.id", decoded.id());
    }
    Inference inference = new Inference(exchange, keepAlive, decoded, trace);
    try {
      InferRequest submitted = plane.submit(model, version, decoded.id(), decoded.inputs(), decoded.outputs(),
          decoded.priority(), decoded.timeoutMicros(), InferRequest.NO_DEADLINE, inference, "http", span,
          decoded.sequence(), decoded.plan());
      inference.accepted(submitted);
    } catch (RuntimeException e) {
      if (trace != null && e instanceof InferenceException ie) {
        sendError(exchange, keepAlive, ie, trace); // the span already ended in submit
        return;
      }
      throw e;
    }
  }

  private static final TextMapGetter<HttpHeaders> HEADER_GETTER = new TextMapGetter<>() {
    @Override
    public Iterable<String> keys(HttpHeaders carrier) {
      return carrier.names();
    }

    @Override
    public String get(HttpHeaders carrier, String key) {
      return carrier == null ? null : carrier.get(key);
    }
  };
  private static final TextMapSetter<HttpHeaders> HEADER_SETTER = (carrier, key, value) -> carrier.set(key, value);

  /** An inference request's JSON header, read without a tree for its tensor data. */
  private static RestInferCodec.Parsed parseRequest(ByteBuf body, int length) {
    return readObject(body, length, RestInferCodec::parse);
  }

  /** A JSON object body as a tree (the extension endpoints' small bodies). */
  static JsonNode parse(ByteBuf body, int length) {
    return readObject(body, length, parser -> {
      JsonNode node = RestInferCodec.JSON.readTree(parser);
      return node != null && node.isObject() ? node : null;
    });
  }

  /** Reads a JSON value from a parser: null when the JSON is not an object. */
  @FunctionalInterface
  private interface ObjectReader<T> {
    T read(JsonParser parser) throws IOException;
  }

  /**
   * The first {@code length} bytes of {@code body} read as a JSON object by {@code reader}; INVALID_ARGUMENT
   * when they are empty, malformed or not an object.
   */
  private static <T> T readObject(ByteBuf body, int length, ObjectReader<T> reader) {
    if (length == 0) {
      throw InferenceException.invalidField("", "the request body is empty; it must be a JSON object");
    }
    try (JsonParser parser = body.hasArray()
        ? RestInferCodec.JSON.createParser(body.array(), body.arrayOffset() + body.readerIndex(), length)
        : RestInferCodec.JSON.createParser((java.io.InputStream) new ByteBufInputStream(body.slice(body.readerIndex(),
            length)))) {
      T value = reader.read(parser);
      if (value == null) {
        throw InferenceException.invalidField("", "the request body must be a JSON object");
      }
      return value;
    } catch (JsonProcessingException e) {
      throw InferenceException.invalidField("", "malformed JSON: %s", e.getOriginalMessage());
    } catch (IOException e) {
      throw InferenceException.invalidField("", "unreadable request body: %s", e.getMessage());
    }
  }

  /**
   * Answers one REST inference. Called on the connection's event loop (the batcher delivers answers to
   * the loop the request came from), so it writes the answer and lets the exchange go on directly.
   */
  final class Inference implements DataPlane.Completion {
    private final RestExchange exchange;
    private final boolean keepAlive;
    private final RestInferCodec.Decoded decoded;
    private final SpanContext trace; // the server span the answer names; null when tracing is off
    private InferRequest request;
    private boolean answered;

    Inference(RestExchange exchange, boolean keepAlive, RestInferCodec.Decoded decoded, SpanContext trace) {
      this.exchange = exchange;
      this.keepAlive = keepAlive;
      this.decoded = decoded;
      this.trace = trace;
    }

    /** Submitted: unless it was answered at once, the exchange waits for it. */
    void accepted(InferRequest accepted) {
      request = accepted;
      if (!answered) {
        exchange.inferenceStarted(this);
      }
      if (!exchange.isActive()) {
        accepted.cancel(); // closed while it was being submitted
      }
    }

    /** The client is gone: the request is dropped before it runs if it is still queued. Event loop. */
    void cancel() {
      if (request != null && !answered) {
        request.cancel();
      }
    }

    /** After the answer is written: the exchange's next request may go. */
    private void done() {
      answered = true;
      exchange.inferenceAnswered(this);
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      ByteBuf buf = exchange.alloc().buffer();
      long headerLength;
      try {
        headerLength = RestInferCodec.encode(request, version, outputs, decoded, new BufStream(buf));
      } catch (IOException | RuntimeException e) {
        buf.release();
        plane.logFailure(request.modelName(), request.id(), e);
        sendError(exchange, keepAlive, HttpErrors.toInferenceException(e), trace);
        done();
        return;
      }
      FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, buf);
      ServerTracing.inject(trace, response.headers(), HEADER_SETTER);
      write(exchange, keepAlive, response, headerLength < 0 ? "application/json" : "application/octet-stream", headerLength);
      done();
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      sendError(exchange, keepAlive, error, trace);
      done();
    }
  }

  /** A stream into a ByteBuf that counts and takes ByteBuffers without an intermediate array. */
  private static final class BufStream extends RestInferCodec.CountingStream {
    private final ByteBuf buf;
    private final int start;
    private final OutputStream delegate;

    BufStream(ByteBuf buf) {
      this.buf = buf;
      this.start = buf.writerIndex();
      this.delegate = new ByteBufOutputStream(buf);
    }

    @Override
    public void write(int b) throws IOException {
      delegate.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      delegate.write(b, off, len);
    }

    @Override
    public long count() {
      return buf.writerIndex() - start;
    }

    @Override
    public void write(ByteBuffer data) {
      buf.writeBytes(data);
    }
  }

  private void sendMetadata(RestExchange exchange, boolean keepAlive, ModelMetadataResponse m) {
    sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> RestInferCodec.writeMetadata(gen, m));
  }

  /** Triton's statistics JSON: numbers as numbers, every field present. */
  private void sendStats(RestExchange exchange, boolean keepAlive, ModelStatisticsResponse stats) {
    sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      gen.writeArrayFieldStart("model_stats");
      for (ModelStatistics m : stats.getModelStatsList()) {
        gen.writeStartObject();
        gen.writeStringField("name", m.getName());
        gen.writeStringField("version", m.getVersion());
        gen.writeNumberField("last_inference", m.getLastInference());
        gen.writeNumberField("inference_count", m.getInferenceCount());
        gen.writeNumberField("execution_count", m.getExecutionCount());
        gen.writeObjectFieldStart("inference_stats");
        duration(gen, "success", m.getInferenceStats().getSuccess());
        duration(gen, "fail", m.getInferenceStats().getFail());
        duration(gen, "queue", m.getInferenceStats().getQueue());
        duration(gen, "compute_input", m.getInferenceStats().getComputeInput());
        duration(gen, "compute_infer", m.getInferenceStats().getComputeInfer());
        duration(gen, "compute_output", m.getInferenceStats().getComputeOutput());
        duration(gen, "cache_hit", m.getInferenceStats().getCacheHit());
        duration(gen, "cache_miss", m.getInferenceStats().getCacheMiss());
        gen.writeEndObject();
        gen.writeArrayFieldStart("batch_stats");
        for (InferBatchStatistics b : m.getBatchStatsList()) {
          gen.writeStartObject();
          gen.writeNumberField("batch_size", b.getBatchSize());
          duration(gen, "compute_input", b.getComputeInput());
          duration(gen, "compute_infer", b.getComputeInfer());
          duration(gen, "compute_output", b.getComputeOutput());
          gen.writeEndObject();
        }
        gen.writeEndArray();
        gen.writeEndObject();
      }
      gen.writeEndArray();
      gen.writeEndObject();
    });
  }

  private static void duration(JsonGenerator gen, String name, StatisticDuration d) throws IOException {
    gen.writeObjectFieldStart(name);
    gen.writeNumberField("count", d.getCount());
    gen.writeNumberField("ns", d.getNs());
    gen.writeEndObject();
  }

  static void requireMethod(HttpMethod method, HttpMethod expected, String path) {
    if (!method.equals(expected)) {
      throw new MethodNotAllowed(method, path, expected.name());
    }
  }

  /** The path's non-empty segments, each percent-decoded once (an encoded '/' stays inside its segment). */
  private static String[] segments(String path) {
    int count = 0;
    for (int i = 0, n = path.length(); i < n; i++) {
      if (path.charAt(i) != '/' && (i == 0 || path.charAt(i - 1) == '/')) {
        count++;
      }
    }
    String[] out = new String[count];
    int k = 0;
    for (int start = 0, n = path.length(); start < n; ) {
      int end = path.indexOf('/', start);
      if (end < 0) {
        end = n;
      }
      if (end > start) {
        out[k++] = QueryStringDecoder.decodeComponent(path.substring(start, end));
      }
      start = end + 1;
    }
    return out;
  }

  interface JsonWriter {
    void write(JsonGenerator gen) throws IOException;
  }

  static void sendJson(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, JsonWriter writer) {
    ByteBuf buf = exchange.alloc().buffer();
    try (JsonGenerator gen = RestInferCodec.FACTORY.createGenerator((OutputStream) new ByteBufOutputStream(buf))) {
      writer.write(gen);
    } catch (IOException e) {
      buf.release();
      throw InferenceException.internal("could not write the JSON response", e);
    }
    send(exchange, keepAlive, status, "application/json", buf, -1);
  }

  static void sendError(RestExchange exchange, boolean keepAlive, InferenceException e) {
    sendError(exchange, keepAlive, e, null);
  }

  /** @param trace the server span to name in {@code traceparent}; null = none */
  static void sendError(RestExchange exchange, boolean keepAlive, InferenceException e, SpanContext trace) {
    sendError(exchange, keepAlive, HttpErrors.status(e.code()), e.getMessage(), HttpErrors.retryAfterSeconds(e), trace);
  }

  static void sendError(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, String message,
      long retryAfterSeconds) {
    sendError(exchange, keepAlive, status, message, retryAfterSeconds, null);
  }

  static void sendError(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, String message,
      long retryAfterSeconds, SpanContext trace) {
    sendError(exchange, keepAlive, status, message, retryAfterSeconds, trace, null);
  }

  /** @param allow the Allow header of a 405; null = none */
  static void sendError(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, String message,
      long retryAfterSeconds, SpanContext trace, String allow) {
    write(exchange, keepAlive, errorResponse(exchange.alloc(), status, message, retryAfterSeconds, trace, allow),
        "application/json", -1);
  }

  /** The JSON error answer {@code {"error": message}} with its headers (content type and length set). */
  static FullHttpResponse errorResponse(io.netty.buffer.ByteBufAllocator alloc, HttpResponseStatus status,
      String message, long retryAfterSeconds, SpanContext trace, String allow) {
    ByteBuf buf = alloc.buffer();
    try (JsonGenerator gen = RestInferCodec.FACTORY.createGenerator((OutputStream) new ByteBufOutputStream(buf))) {
      gen.writeStartObject();
      gen.writeStringField("error", message == null ? "" : message);
      gen.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e); // writing to memory cannot fail
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, buf);
    if (retryAfterSeconds > 0) {
      response.headers().set(HttpHeaderNames.RETRY_AFTER, retryAfterSeconds);
    }
    if (status.code() == 401) {
      response.headers().set(HttpHeaderNames.WWW_AUTHENTICATE, "Bearer");
    }
    if (allow != null) {
      response.headers().set(HttpHeaderNames.ALLOW, allow);
    }
    ServerTracing.inject(trace, response.headers(), HEADER_SETTER);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json");
    HttpUtil.setContentLength(response, buf.readableBytes());
    return response;
  }

  static void sendEmpty(RestExchange exchange, boolean keepAlive, HttpResponseStatus status) {
    write(exchange, keepAlive, new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, exchange.alloc().buffer(0)), null, -1);
  }

  private static void send(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, String contentType,
      ByteBuf body, long inferenceHeaderLength) {
    write(exchange, keepAlive, new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, body), contentType,
        inferenceHeaderLength);
  }

  /** Any thread: the exchange hands the write to its event loop. */
  private static void write(RestExchange exchange, boolean keepAlive, FullHttpResponse response, String contentType,
      long inferenceHeaderLength) {
    if (contentType != null) {
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
    }
    if (inferenceHeaderLength >= 0) {
      response.headers().set(HEADER_LENGTH, inferenceHeaderLength);
    }
    HttpUtil.setContentLength(response, response.content().readableBytes());
    exchange.write(response, keepAlive);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.debug("REST connection {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
    ctx.close();
  }
}
