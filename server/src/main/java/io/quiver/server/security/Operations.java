package io.quiver.server.security;

import java.util.Map;

/**
 * The one table of what each operation needs, for every transport: gRPC methods of the data plane and
 * the control plane (read by the gRPC interceptor at call start and by the handlers for the per-model
 * part) and REST paths (read by the REST handler). An operation not in the table needs administration:
 * a method added later is closed until it is listed. Stateless.
 */
public final class Operations {
  /** Where a rule's permission applies. */
  public enum Scope {
    /** Nothing is checked: health, liveness, readiness, reflection. */
    OPEN,
    /** The permission on the server as a whole (model "*"). */
    SERVER,
    /** The permission on the model the request names (gRPC: in its message, checked by the handler). */
    MODEL
  }

  /** What an operation needs. */
  public record Rule(Scope scope, Permission permission) {
    static final Rule OPEN = new Rule(Scope.OPEN, null);
    static final Rule ANY_CALLER = new Rule(Scope.SERVER, Permission.AUTHENTICATED);
    static final Rule ADMIN = new Rule(Scope.SERVER, Permission.ADMIN);
    static final Rule MODEL_METADATA = new Rule(Scope.MODEL, Permission.METADATA);
    static final Rule MODEL_INFER = new Rule(Scope.MODEL, Permission.INFER);
    static final Rule ALL_METADATA = new Rule(Scope.SERVER, Permission.METADATA);
  }

  /** A REST request's rule and the model it names ("*" when none). */
  public record RestRule(Rule rule, String model) {}

  public static final String INFERENCE_SERVICE = "inference.GRPCInferenceService";
  public static final String CONTROL_SERVICE = "quiver.control.v1.ModelControl";
  /** Model monitoring reports: metadata on the model the request names. */
  public static final String MONITORING_REPORT = "quiver.monitoring.v1.ModelMonitoring/GetModelMonitoring";
  private static final String INFERENCE = INFERENCE_SERVICE + "/";

  /** gRPC methods by full name. Everything of the control plane (its own prefix, below) is administration. */
  private static final Map<String, Rule> GRPC = Map.ofEntries(
      Map.entry(INFERENCE + "ServerLive", Rule.OPEN),
      Map.entry(INFERENCE + "ServerReady", Rule.OPEN),
      Map.entry(INFERENCE + "ServerMetadata", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "ModelReady", Rule.MODEL_METADATA),
      Map.entry(INFERENCE + "ModelMetadata", Rule.MODEL_METADATA),
      Map.entry(INFERENCE + "ModelConfig", Rule.MODEL_METADATA),
      // An empty model name asks for every model's statistics: the handler checks "*" then.
      Map.entry(INFERENCE + "ModelStatistics", Rule.MODEL_METADATA),
      Map.entry(INFERENCE + "ModelInfer", Rule.MODEL_INFER),
      Map.entry(INFERENCE + "ModelStreamInfer", Rule.MODEL_INFER),
      // A shared-memory region belongs to whoever registered it (SharedMemoryRegistry checks the principal).
      Map.entry(INFERENCE + "SystemSharedMemoryStatus", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "SystemSharedMemoryRegister", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "SystemSharedMemoryUnregister", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "CudaSharedMemoryStatus", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "CudaSharedMemoryRegister", Rule.ANY_CALLER),
      Map.entry(INFERENCE + "CudaSharedMemoryUnregister", Rule.ANY_CALLER),
      // LogSettings and TraceSetting are not listed: administration, as everything not listed.
      Map.entry(INFERENCE + "RepositoryIndex", Rule.ADMIN),
      Map.entry(INFERENCE + "RepositoryModelLoad", Rule.ADMIN),
      Map.entry(INFERENCE + "RepositoryModelUnload", Rule.ADMIN),
      Map.entry(MONITORING_REPORT, Rule.MODEL_METADATA));

  private Operations() {}

  /** The rule of a gRPC method ("package.Service/Method"). */
  public static Rule grpc(String fullMethodName) {
    Rule rule = GRPC.get(fullMethodName);
    if (rule != null) {
      return rule;
    }
    if (fullMethodName.startsWith("grpc.health.v1.Health/") || fullMethodName.startsWith("grpc.reflection.")) {
      return Rule.OPEN; // probes and load balancers; reflection describes only the public protocol
    }
    return Rule.ADMIN; // the control plane (ListModels ... WatchModels), and anything not listed
  }

  /** The rule of an inference-service method by its short name ("ModelInfer"). */
  public static Rule inference(String method) {
    return grpc(INFERENCE + method);
  }

  /**
   * The rule of a REST request.
   *
   * @param method the HTTP method
   * @param segments the path's decoded segments ("v2", "models", "m", "infer")
   */
  public static RestRule rest(String method, String[] segments) {
    if (segments.length < 2 || !segments[0].equals("v2")) {
      return new RestRule(Rule.ANY_CALLER, "*"); // GET /v2 (server metadata) and unknown paths (then 404)
    }
    return switch (segments[1]) {
      case "health" -> new RestRule(Rule.OPEN, "*");
      case "repository", "logging", "trace", "jobs" -> new RestRule(Rule.ADMIN, "*"); // jobs: io.quiver.server.jobs
      case "systemsharedmemory", "cudasharedmemory" -> new RestRule(Rule.ANY_CALLER, "*"); // owner checked by the registry
      case "models" -> {
        if (segments.length < 3 || (segments.length == 3 && segments[2].equals("stats"))) {
          yield new RestRule(Rule.ALL_METADATA, "*"); // statistics of every model
        }
        if (segments.length >= 4 && segments[3].equals("trace")) {
          yield new RestRule(Rule.ADMIN, segments[2]); // a model's trace settings (Triton's trace extension)
        }
        boolean infer = segments[segments.length - 1].equals("infer") && method.equals("POST");
        yield new RestRule(infer ? Rule.MODEL_INFER : Rule.MODEL_METADATA, segments[2]);
      }
      default -> new RestRule(Rule.ANY_CALLER, "*");
    };
  }
}
