package io.quiver.server.console;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.quiver.server.http.RestExchange;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.quiver.control.grpc.ControlStatuses;
import io.quiver.core.InferenceException;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ModelManager;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.LoadModelResponse;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.SetTrafficResponse;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.control.v1.UnloadModelResponse;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.VersionState;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.registry.ModelNames;
import io.quiver.server.http.HttpErrors;
import io.quiver.server.metrics.ServerMetrics;
import io.quiver.server.metrics.VersionSample;
import io.quiver.server.security.Permission;
import io.quiver.server.security.SecurityPolicy;
import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The console's JSON API under {@code /console/api/}. Every request is authenticated first (with security
 * on), then checked: reading needs {@code metadata} (per model, or on every model for the server page),
 * changing needs {@code admin}; every POST must carry the session's anti-forgery token and must not come
 * from another origin. Reads are answered from the same state the control plane and the metrics use;
 * changes are the control plane's own RPCs, in-process. Work runs on the console's worker threads, never
 * on the event loop; the connection stops reading until its answer is written. Thread-safe.
 */
final class ConsoleApi {
  private static final Logger log = LoggerFactory.getLogger(ConsoleApi.class);
  static final String PREFIX = "/console/api/";
  static final String CSRF_HEADER = "x-quiver-csrf";
  private static final ObjectMapper MAPPER = new ObjectMapper();
  /** A load warms the model up and may take long; an unload waits for in-flight requests. */
  private static final long CONTROL_DEADLINE_SECONDS = 600;
  private static final int MAX_CONFIG_CHARS = 1 << 20;

  private final ModelManager models;
  private final ServerMetrics metrics;
  private final SecurityPolicy security;
  private final Executor workers;
  private final UploadSessions uploads; // null when the control plane is off
  private final AuditTrail audit;
  private final String csrfToken;
  private final byte[] csrfBytes;
  private volatile ServerFacts facts; // null until the server has bound every port
  private volatile ControlClient control; // null while the control plane is off or not yet bound

  ConsoleApi(ModelManager models, ServerMetrics metrics, SecurityPolicy security, Executor workers,
      UploadSessions uploads, AuditTrail audit) {
    this.models = models;
    this.metrics = metrics;
    this.security = security;
    this.workers = workers;
    this.uploads = uploads;
    this.audit = audit;
    byte[] token = new byte[32];
    new SecureRandom().nextBytes(token);
    this.csrfToken = HexFormat.of().formatHex(token);
    this.csrfBytes = csrfToken.getBytes(StandardCharsets.US_ASCII);
  }

  void started(ServerFacts facts, ControlClient control) {
    this.control = control;
    this.facts = facts;
  }

  /** Event loop: checks who and whence, then hands the work to a console worker. */
  void handle(RestExchange exchange, FullHttpRequest request, String path, boolean keepAlive) {
    String[] parts = segments(path.substring(PREFIX.length()));
    HttpMethod method = request.method();
    String operation = method + " " + path;
    String peer = String.valueOf(exchange.remoteAddress());
    ConsoleCaller caller;
    try {
      caller = ConsoleCaller.of(security, request.headers(), peer, operation);
      if (method.equals(HttpMethod.POST)) {
        checkSameOrigin(request, peer);
      } else if (!method.equals(HttpMethod.GET)) {
        throw InferenceException.unimplemented("the console API answers GET and POST only; was %s", method);
      }
    } catch (InferenceException e) {
      ConsoleHttp.error(exchange, keepAlive, HttpErrors.status(e.code()), e.getMessage());
      return;
    }
    // Bodies are copied here, on the event loop, because the request is released when this returns.
    ByteString body = request.content().isReadable() ? ByteString.copyFrom(request.content().nioBuffer()) : ByteString.EMPTY;
    Map<String, List<String>> query = new QueryStringDecoder(request.uri()).parameters();
    Headers headers = new Headers(request.headers().get("x-quiver-path"), request.headers().get("x-quiver-last"),
        request.headers().get("x-quiver-sha256"));
    exchange.pauseReading(); // resumed when the answer is written (ConsoleHttp.write)
    try {
      workers.execute(() -> {
        try {
          route(exchange, keepAlive, method, parts, query, body, headers, caller, operation);
        } catch (InferenceException e) {
          ConsoleHttp.error(exchange, keepAlive, HttpErrors.status(e.code()), e.getMessage());
        } catch (IOException | RuntimeException e) {
          log.warn("console {} failed", operation, e);
          ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal error: "
              + e.getClass().getSimpleName());
        }
      });
    } catch (RejectedExecutionException e) {
      ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.SERVICE_UNAVAILABLE,
          "the console is busy or shutting down; try again");
    }
  }

  /** The per-chunk upload headers (the path is URI-encoded by the browser: header values are ASCII). */
  private record Headers(String path, String last, String sha256) {}

  private void route(RestExchange exchange, boolean keepAlive, HttpMethod method, String[] parts,
      Map<String, List<String>> query, ByteString body, Headers headers, ConsoleCaller caller, String operation)
      throws IOException {
    boolean get = method.equals(HttpMethod.GET);
    String first = parts.length == 0 ? "" : parts[0];
    switch (first) {
      case "session" -> {
        requireGet(get, operation);
        session(exchange, keepAlive, caller);
      }
      case "models" -> {
        if (parts.length == 1) {
          requireGet(get, operation);
          models(exchange, keepAlive, caller);
        } else if (parts.length == 3 && !get) {
          String model = ModelNames.requireValid(parts[1]);
          switch (parts[2]) {
            case "load" -> load(exchange, keepAlive, caller, model, json(body));
            case "unload" -> unload(exchange, keepAlive, caller, model);
            case "traffic" -> traffic(exchange, keepAlive, caller, model, json(body));
            default -> throw InferenceException.notFound("no such console action: %s", parts[2]);
          }
        } else {
          throw InferenceException.notFound("no such console path: %s", operation);
        }
      }
      case "live" -> {
        requireGet(get, operation);
        List<String> model = query.get("model");
        if (model == null || model.isEmpty()) {
          throw InferenceException.invalidField("model", "name the model: /console/api/live?model=NAME");
        }
        live(exchange, keepAlive, caller, ModelNames.requireValid(model.get(0)), operation);
      }
      case "server" -> {
        requireGet(get, operation);
        caller.require(Permission.METADATA, "*", operation);
        server(exchange, keepAlive, caller);
      }
      case "uploads" -> {
        if (get) {
          throw InferenceException.unimplemented("uploads take POST");
        }
        caller.require(Permission.ADMIN, "*", operation);
        if (uploads == null || control == null) {
          throw InferenceException.failedPrecondition("uploads go through the control plane, which is off (--control-port -1)");
        }
        uploadRoute(exchange, keepAlive, parts, body, headers, caller);
      }
      default -> throw InferenceException.notFound("no such console path: %s", operation);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  private void session(RestExchange exchange, boolean keepAlive, ConsoleCaller caller) {
    ServerFacts f = facts;
    ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      gen.writeBooleanField("authentication", security != null);
      if (caller.principal() != null) {
        gen.writeStringField("principal", caller.principal().name());
        gen.writeStringField("method", caller.principal().method());
        gen.writeArrayFieldStart("roles");
        for (String role : caller.principal().roles()) {
          gen.writeString(role);
        }
        gen.writeEndArray();
      }
      gen.writeBooleanField("admin", caller.may(Permission.ADMIN, "*"));
      gen.writeBooleanField("readAll", caller.may(Permission.METADATA, "*"));
      gen.writeStringField("csrf", csrfToken);
      gen.writeBooleanField("controlPlane", control != null);
      gen.writeNumberField("uploadChunkBytes", uploads == null ? 0 : uploads.chunkBytes());
      gen.writeNumberField("maxUploadBytes", uploads == null ? 0 : uploads.maxUploadBytes());
      if (f != null) {
        gen.writeStringField("version", f.version());
        gen.writeNumberField("grpcPort", f.grpcPort());
        gen.writeNumberField("httpPort", f.httpPort());
        gen.writeStringField("tls", f.tls());
      }
      gen.writeEndObject();
    });
  }

  /** Every model the caller may read, as ListModels shows it, with what the loaded versions add. */
  private void models(RestExchange exchange, boolean keepAlive, ConsoleCaller caller) {
    List<ModelStatus> all = ControlStatuses.all(models);
    ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      gen.writeBooleanField("controlPlane", control != null);
      gen.writeArrayFieldStart("models");
      for (ModelStatus m : all) {
        if (!caller.may(Permission.METADATA, m.getName())) {
          continue;
        }
        gen.writeStartObject();
        gen.writeStringField("name", m.getName());
        gen.writeStringField("reason", m.getReason());
        gen.writeArrayFieldStart("versions");
        for (VersionStatus v : m.getVersionsList()) {
          gen.writeStartObject();
          ConsoleJson.versionFields(gen, v);
          if (v.getState() == VersionState.READY) {
            details(gen, m.getName(), v.getVersion());
          }
          gen.writeEndObject();
        }
        gen.writeEndArray();
        gen.writeEndObject();
      }
      gen.writeEndArray();
      gen.writeEndObject();
    });
  }

  /** Platform, runtime, instances, batch limit and load of a READY version (nothing when it just went away). */
  private void details(JsonGenerator gen, String model, long version) throws IOException {
    LoadedVersion loaded;
    try {
      loaded = models.acquire(model, Long.toString(version));
    } catch (InferenceException e) {
      return;
    }
    try {
      ModelConfig config = loaded.config();
      gen.writeStringField("platform", config.getPlatform().isEmpty() ? config.getBackend() : config.getPlatform());
      gen.writeStringField("runtime", loaded.runtimeName());
      int instances = 0;
      List<String> kinds = new ArrayList<>();
      for (ModelInstanceGroup group : config.getInstanceGroupList()) {
        int count = Math.max(1, group.getCount());
        instances += count;
        String kind = group.getKind() == ModelInstanceGroup.Kind.KIND_GPU ? "GPU" : "CPU";
        kinds.add(count + "\u00d7" + kind);
      }
      gen.writeNumberField("instances", instances);
      gen.writeStringField("instanceGroups", String.join(", ", kinds));
      gen.writeNumberField("maxBatchSize", config.getMaxBatchSize());
      gen.writeNumberField("inFlight", loaded.scheduler().inFlightRequests());
      gen.writeNumberField("queued", loaded.scheduler().queuedRequests());
      // Memory per version comes with the lifecycle's memory accounting; until a version reports it, null.
      gen.writeNullField("memoryBytes");
    } finally {
      loaded.release();
    }
  }

  /**
   * The live view's sample of one model: every READY version's cumulative figures now, with the traffic
   * split. Stateless: the browser diffs consecutive samples, so any number of viewers costs the server
   * one read per poll each, and nothing at all when nobody watches.
   */
  private void live(RestExchange exchange, boolean keepAlive, ConsoleCaller caller, String model, String operation) {
    caller.require(Permission.METADATA, model, operation);
    ModelStatus status = ControlStatuses.of(models, model);
    List<LoadedVersion> held = new ArrayList<>();
    try {
      for (VersionStatus v : status.getVersionsList()) {
        if (v.getState() == VersionState.READY) {
          try {
            held.add(models.acquire(model, Long.toString(v.getVersion())));
          } catch (InferenceException e) {
            // unloaded since the status was read
          }
        }
      }
      long now = System.currentTimeMillis(); // before the read: the figures are at least as recent as "t"
      List<VersionSample> samples = metrics.sample(held);
      ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
        gen.writeStartObject();
        gen.writeNumberField("t", now);
        gen.writeStringField("model", model);
        gen.writeStringField("reason", status.getReason());
        gen.writeArrayFieldStart("versions");
        for (VersionStatus v : status.getVersionsList()) {
          gen.writeStartObject();
          ConsoleJson.versionFields(gen, v);
          for (VersionSample s : samples) {
            if (s.version() == v.getVersion()) {
              ConsoleJson.sample(gen, s);
            }
          }
          gen.writeEndObject();
        }
        gen.writeEndArray();
        gen.writeEndObject();
      });
    } finally {
      for (LoadedVersion v : held) {
        v.release();
      }
    }
  }

  private void server(RestExchange exchange, boolean keepAlive, ConsoleCaller caller) {
    ServerFacts f = facts;
    if (f == null) {
      throw InferenceException.unavailable("the server is starting");
    }
    boolean admin = caller.may(Permission.ADMIN, "*");
    ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
      gen.writeStartObject();
      gen.writeStringField("version", f.version());
      gen.writeNumberField("startedAt", f.startedAtMillis());
      gen.writeNumberField("uptimeMs", System.currentTimeMillis() - f.startedAtMillis());
      gen.writeStringField("host", f.host());
      gen.writeObjectFieldStart("ports");
      gen.writeNumberField("grpc", f.grpcPort());
      gen.writeNumberField("http", f.httpPort());
      gen.writeNumberField("metrics", f.metricsPort());
      gen.writeNumberField("control", f.controlPort());
      gen.writeEndObject();
      gen.writeStringField("tls", f.tls());
      gen.writeStringField("authentication", f.authentication());
      gen.writeBooleanField("tracing", f.tracing());
      gen.writeStringField("repository", f.repository());
      gen.writeStringField("controlMode", f.controlMode());
      gen.writeArrayFieldStart("extensions");
      for (String e : f.extensions()) {
        gen.writeString(e);
      }
      gen.writeEndArray();
      Runtime rt = Runtime.getRuntime();
      gen.writeObjectFieldStart("runtime");
      gen.writeStringField("java", System.getProperty("java.version"));
      gen.writeStringField("vendor", System.getProperty("java.vendor"));
      gen.writeStringField("vm", System.getProperty("java.vm.name"));
      gen.writeStringField("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
          + System.getProperty("os.arch"));
      gen.writeNumberField("processors", rt.availableProcessors());
      gen.writeNumberField("threads", ManagementFactory.getThreadMXBean().getThreadCount());
      gen.writeNumberField("pid", ProcessHandle.current().pid());
      gen.writeEndObject();
      gen.writeObjectFieldStart("memory");
      memory(gen, "heap", ManagementFactory.getMemoryMXBean().getHeapMemoryUsage());
      memory(gen, "nonHeap", ManagementFactory.getMemoryMXBean().getNonHeapMemoryUsage());
      for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
        gen.writeObjectFieldStart(pool.getName().equals("direct") ? "direct" : pool.getName());
        gen.writeNumberField("used", pool.getMemoryUsed());
        gen.writeNumberField("capacity", pool.getTotalCapacity());
        gen.writeNumberField("count", pool.getCount());
        gen.writeEndObject();
      }
      gen.writeEndObject();
      gen.writeArrayFieldStart("gc");
      for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
        gen.writeStartObject();
        gen.writeStringField("name", gc.getName());
        gen.writeNumberField("count", gc.getCollectionCount());
        gen.writeNumberField("timeMs", gc.getCollectionTime());
        gen.writeEndObject();
      }
      gen.writeEndArray();
      gen.writeBooleanField("auditVisible", admin);
      if (admin) {
        gen.writeArrayFieldStart("audit");
        for (AuditTrail.Event e : audit.recent()) {
          gen.writeStartObject();
          gen.writeNumberField("time", e.timeMillis());
          gen.writeStringField("logger", e.logger());
          gen.writeStringField("level", e.level());
          gen.writeStringField("message", e.message());
          gen.writeEndObject();
        }
        gen.writeEndArray();
      }
      gen.writeEndObject();
    });
  }

  private static void memory(JsonGenerator gen, String name, MemoryUsage usage) throws IOException {
    gen.writeObjectFieldStart(name);
    gen.writeNumberField("used", usage.getUsed());
    gen.writeNumberField("committed", usage.getCommitted());
    gen.writeNumberField("max", usage.getMax());
    gen.writeEndObject();
  }

  // ---------------------------------------------------------------------------------------------
  // Changes: the control plane's own RPCs, with the caller's credential

  private ControlClient control() {
    ControlClient c = control;
    if (c == null) {
      throw InferenceException.failedPrecondition(
          "model changes go through the control plane, which is off (--control-port -1)");
    }
    return c;
  }

  private void load(RestExchange exchange, boolean keepAlive, ConsoleCaller caller, String model, JsonNode body) {
    LoadModelRequest.Builder request = LoadModelRequest.newBuilder().setName(model);
    JsonNode versions = body.get("versions");
    if (versions != null && !versions.isNull()) {
      if (!versions.isArray()) {
        throw InferenceException.invalidField("versions", "'versions' must be an array of version numbers");
      }
      for (JsonNode v : versions) {
        if (!v.canConvertToLong() || !v.isIntegralNumber() || v.asLong() < 0) {
          throw InferenceException.invalidField("versions", "'versions' must hold version numbers >= 0; found %s", v);
        }
        request.addVersions(v.asLong());
      }
    }
    JsonNode latest = body.get("latest");
    if (latest != null && !latest.isNull()) {
      if (!latest.isIntegralNumber() || latest.asLong() < 1 || latest.asLong() > 1_000_000) {
        throw InferenceException.invalidField("latest", "'latest' must be a whole number from 1; was %s", latest);
      }
      request.setLatest((int) latest.asLong());
    }
    JsonNode all = body.get("all");
    if (all != null && !all.isNull()) {
      if (!all.isBoolean()) {
        throw InferenceException.invalidField("all", "'all' must be true or false; was %s", all);
      }
      request.setAll(all.booleanValue());
    }
    control().stub(caller, CONTROL_DEADLINE_SECONDS).loadModel(request.build(),
        answer(exchange, keepAlive, (LoadModelResponse r) -> r.getModel()));
  }

  private void unload(RestExchange exchange, boolean keepAlive, ConsoleCaller caller, String model) {
    control().stub(caller, CONTROL_DEADLINE_SECONDS).unloadModel(UnloadModelRequest.newBuilder().setName(model).build(),
        answer(exchange, keepAlive, (UnloadModelResponse r) -> ControlStatuses.of(models, model)));
  }

  private void traffic(RestExchange exchange, boolean keepAlive, ConsoleCaller caller, String model, JsonNode body) {
    SetTrafficRequest.Builder request = SetTrafficRequest.newBuilder().setName(model);
    JsonNode weights = body.get("weights");
    if (weights != null && !weights.isNull()) {
      if (!weights.isObject()) {
        throw InferenceException.invalidField("weights", "'weights' must be an object of version: weight");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = weights.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        long version = parseVersion("weights", e.getKey());
        JsonNode w = e.getValue();
        if (!w.isIntegralNumber() || w.asLong() < 0 || w.asLong() > Integer.MAX_VALUE) {
          throw InferenceException.invalidField("weights", "the weight of version %d must be a whole number >= 0; was %s",
              version, w);
        }
        request.addWeights(TrafficWeight.newBuilder().setVersion(version).setWeight((int) w.asLong()));
      }
    }
    JsonNode labels = body.get("labels");
    if (labels != null && !labels.isNull()) {
      if (!labels.isObject()) {
        throw InferenceException.invalidField("labels", "'labels' must be an object of label: version");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = labels.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        JsonNode v = e.getValue();
        if (!v.isIntegralNumber() || v.asLong() < 0) {
          throw InferenceException.invalidField("labels", "label '%s' must name a version number; was %s",
              e.getKey().length() > 64 ? e.getKey().substring(0, 64) + "..." : e.getKey(), v);
        }
        request.putLabels(e.getKey(), v.asLong());
      }
    }
    control().stub(caller, CONTROL_DEADLINE_SECONDS).setTraffic(request.build(),
        answer(exchange, keepAlive, (SetTrafficResponse r) -> r.getModel()));
  }

  private static long parseVersion(String field, String text) {
    try {
      long v = Long.parseLong(text);
      if (v >= 0) {
        return v;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw InferenceException.invalidField(field, "'%s' is not a version number", text.length() > 40 ? text.substring(0, 40) : text);
  }

  /** Answers a control RPC: its model status as JSON, or its status as an HTTP error. */
  private <T> StreamObserver<T> answer(RestExchange exchange, boolean keepAlive,
      java.util.function.Function<T, ModelStatus> model) {
    return new StreamObserver<>() {
      private boolean answered;

      @Override
      public void onNext(T value) {
        answered = true;
        ModelStatus status = model.apply(value);
        ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> ConsoleJson.modelStatus(gen, status));
      }

      @Override
      public void onError(Throwable t) {
        Status status = Status.fromThrowable(t);
        ConsoleHttp.error(exchange, keepAlive, ControlClient.httpStatus(status), ControlClient.message(status));
      }

      @Override
      public void onCompleted() {
        if (!answered) {
          ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, "the control plane sent no answer");
        }
      }
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Uploads

  private void uploadRoute(RestExchange exchange, boolean keepAlive, String[] parts, ByteString body,
      Headers headers, ConsoleCaller caller) throws IOException {
    UploadSessions.Reply reply = new UploadSessions.Reply() {
      @Override
      public void ok(ConsoleHttp.JsonBody json) {
        ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, json);
      }

      @Override
      public void fail(HttpResponseStatus status, String message) {
        ConsoleHttp.error(exchange, keepAlive, status, message);
      }
    };
    if (parts.length == 1) {
      JsonNode json = json(body);
      UploadHeader.Builder header = UploadHeader.newBuilder().setName(ModelNames.requireValid(text(json, "model", true)));
      JsonNode version = json.get("version");
      if (version != null && !version.isNull()) {
        if (!version.isIntegralNumber() || version.asLong() < 0) {
          throw InferenceException.invalidField("version", "'version' must be a whole number >= 0; was %s", version);
        }
        header.setVersion(version.asLong());
      }
      JsonNode load = json.get("load");
      header.setLoad(load != null && load.asBoolean(false));
      String config = text(json, "config", false);
      if (config != null) {
        if (config.length() > MAX_CONFIG_CHARS) {
          throw InferenceException.invalidField("config", "config.pbtxt is over %d characters", MAX_CONFIG_CHARS);
        }
        header.setConfigPbtxt(config);
      }
      UploadSessions.Session session = uploads.create(caller, control(), header.build(), text(json, "archive", false));
      ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
        gen.writeStartObject();
        gen.writeStringField("id", session.id);
        gen.writeNumberField("chunkBytes", uploads.chunkBytes());
        gen.writeEndObject();
      });
      return;
    }
    UploadSessions.Session session = uploads.get(parts[1], caller);
    String step = parts.length == 3 ? parts[2] : "";
    switch (step) {
      case "chunk" -> {
        if (body.size() > uploads.chunkBytes()) {
          throw InferenceException.invalidArgument("a chunk may hold at most %d bytes; this one has %d",
              uploads.chunkBytes(), body.size());
        }
        String path = headers.path() == null ? null : QueryStringDecoder.decodeComponent(headers.path());
        String sha = headers.sha256();
        if (sha != null && !sha.matches("[0-9a-fA-F]{64}")) {
          throw InferenceException.invalidField("x-quiver-sha256", "x-quiver-sha256 must be 64 hex digits");
        }
        session.chunk(path, "1".equals(headers.last()) || "true".equals(headers.last()), sha, body, reply);
      }
      case "finish" -> session.finish(reply);
      case "cancel" -> {
        session.cancel("cancelled from the console");
        ConsoleHttp.json(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
          gen.writeStartObject();
          gen.writeEndObject();
        });
      }
      default -> throw InferenceException.notFound("no such upload step: %s", step);
    }
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Cross-site request forgery: a POST must carry the session's token (only a page of this origin can
   * read it, from /console/api/session) and, when the browser names an origin, come from this one.
   */
  private void checkSameOrigin(FullHttpRequest request, String peer) {
    String site = request.headers().get("Sec-Fetch-Site");
    if (site != null && !site.equals("same-origin") && !site.equals("none")) {
      throw Forgery.forged(peer, "cross-site request refused (Sec-Fetch-Site: " + printable(site) + ")");
    }
    String origin = request.headers().get(HttpHeaderNames.ORIGIN);
    String host = request.headers().get(HttpHeaderNames.HOST);
    if (origin != null && !origin.equals("null")) {
      String originHost;
      try {
        URI uri = new URI(origin);
        originHost = uri.getPort() < 0 ? uri.getHost() : uri.getHost() + ":" + uri.getPort();
      } catch (java.net.URISyntaxException e) {
        originHost = null;
      }
      if (originHost == null || host == null || !originHost.equalsIgnoreCase(host)) {
        throw Forgery.forged(peer, "cross-origin request refused (Origin " + printable(origin) + ")");
      }
    } else if (origin != null) {
      throw Forgery.forged(peer, "cross-origin request refused (Origin null)");
    }
    String token = request.headers().get(CSRF_HEADER);
    if (token == null || !MessageDigest.isEqual(token.getBytes(StandardCharsets.US_ASCII), csrfBytes)) {
      throw Forgery.forged(peer, "missing or wrong " + CSRF_HEADER + " header: reload the console");
    }
  }

  /** The 403 of a forged request, audited like a denial. */
  private static final class Forgery {
    static InferenceException forged(String peer, String message) {
      SecurityPolicy.AUDIT.atWarn()
          .addKeyValue("event", "console_request_refused")
          .addKeyValue("peer", peer)
          .log("console request from {} refused: {}", peer, message);
      return InferenceException.permissionDenied("%s", message);
    }
  }

  private static void requireGet(boolean get, String operation) {
    if (!get) {
      throw InferenceException.unimplemented("%s: use GET", operation);
    }
  }

  private static JsonNode json(ByteString body) {
    if (body.isEmpty()) {
      return MAPPER.createObjectNode();
    }
    try {
      JsonNode node = MAPPER.readTree(body.newInput());
      if (node == null || !node.isObject()) {
        throw InferenceException.invalidField("", "the request body must be a JSON object");
      }
      return node;
    } catch (JsonProcessingException e) {
      throw InferenceException.invalidField("", "malformed JSON: %s", e.getOriginalMessage());
    } catch (IOException e) {
      throw InferenceException.invalidField("", "unreadable request body: %s", e.getMessage());
    }
  }

  private static String text(JsonNode json, String field, boolean required) {
    JsonNode node = json.get(field);
    if (node == null || node.isNull()) {
      if (required) {
        throw InferenceException.invalidField(field, "'%s' is required", field);
      }
      return null;
    }
    if (!node.isTextual()) {
      throw InferenceException.invalidField(field, "'%s' must be a string", field);
    }
    return node.textValue();
  }

  private static String[] segments(String path) {
    List<String> out = new ArrayList<>(4);
    for (String s : path.split("/")) {
      if (!s.isEmpty()) {
        out.add(QueryStringDecoder.decodeComponent(s));
      }
    }
    return out.toArray(new String[0]);
  }

  private static String printable(String s) {
    String cut = s.length() > 100 ? s.substring(0, 100) + "..." : s;
    return cut.replaceAll("\\p{Cntrl}", "?");
  }
}
