package io.quiver.server;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.quiver.server.security.CallerPrincipal;
import io.quiver.server.security.Permission;
import io.quiver.server.security.SecurityDenial;
import io.quiver.server.security.SecurityPolicy;
import java.net.SocketAddress;
import java.util.Map;

/**
 * Authenticates every gRPC call except health, liveness/readiness and reflection, from the {@code
 * authorization: Bearer <JWT>} or {@code x-api-key} metadata, and authorizes what needs no message to
 * decide: administration (repository index/load/unload, RPCs we do not implement) and ServerMetadata.
 * The principal and the peer travel in the call's {@link Context}; the per-model checks (infer,
 * metadata) and rate limits happen in {@link InferenceServiceImpl}, which reads the model name from the
 * message, through {@link #check}. Runs on the event loop; no blocking (a JWT signature check at most,
 * cached per token). Thread-safe.
 */
final class GrpcSecurityInterceptor implements ServerInterceptor {
  static final Context.Key<CallerPrincipal> PRINCIPAL = Context.key("quiver.principal");
  static final Context.Key<String> PEER = Context.key("quiver.peer");
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> API_KEY = Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);

  private static final String INFERENCE = QuiverServer.INFERENCE_SERVICE + "/";
  /** Methods of the inference service and what they need before their message is read. */
  private static final Map<String, Permission> AT_CALL_START = Map.ofEntries(
      Map.entry("ServerMetadata", Permission.AUTHENTICATED),
      Map.entry("ModelReady", Permission.AUTHENTICATED),
      Map.entry("ModelMetadata", Permission.AUTHENTICATED),
      Map.entry("ModelConfig", Permission.AUTHENTICATED),
      Map.entry("ModelStatistics", Permission.AUTHENTICATED),
      Map.entry("ModelInfer", Permission.AUTHENTICATED),
      Map.entry("ModelStreamInfer", Permission.AUTHENTICATED),
      // A region belongs to whoever registered it (SharedMemoryRegistry checks the principal).
      Map.entry("SystemSharedMemoryStatus", Permission.AUTHENTICATED),
      Map.entry("SystemSharedMemoryRegister", Permission.AUTHENTICATED),
      Map.entry("SystemSharedMemoryUnregister", Permission.AUTHENTICATED),
      Map.entry("CudaSharedMemoryStatus", Permission.AUTHENTICATED),
      Map.entry("CudaSharedMemoryRegister", Permission.AUTHENTICATED),
      Map.entry("CudaSharedMemoryUnregister", Permission.AUTHENTICATED),
      Map.entry("RepositoryIndex", Permission.ADMIN),
      Map.entry("RepositoryModelLoad", Permission.ADMIN),
      Map.entry("RepositoryModelUnload", Permission.ADMIN));

  /** Model monitoring reports: any authenticated caller here; the handler checks metadata on the model. */
  private static final String MONITORING_REPORT = "quiver.monitoring.v1.ModelMonitoring/GetModelMonitoring";

  private final SecurityPolicy policy;

  GrpcSecurityInterceptor(SecurityPolicy policy) {
    this.policy = policy;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    if (isOpen(method)) {
      return next.startCall(call, headers);
    }
    String peer = peer(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    try {
      CallerPrincipal principal = policy.authenticate(headers.get(AUTHORIZATION), headers.get(API_KEY), method, peer);
      Permission needed = method.startsWith(INFERENCE)
          ? AT_CALL_START.getOrDefault(method.substring(INFERENCE.length()), Permission.ADMIN)
          : method.equals(MONITORING_REPORT) ? Permission.AUTHENTICATED
          : Permission.ADMIN; // any other service is administration until said otherwise
      policy.authorize(principal, needed, "*", method, peer);
      Context context = Context.current().withValues(PRINCIPAL, principal, PEER, peer);
      return Contexts.interceptCall(context, call, headers, next);
    } catch (SecurityDenial e) {
      call.close(status(e), new Metadata());
      return new ServerCall.Listener<>() {};
    }
  }

  /** Health, liveness and readiness stay open for probes and load balancers; reflection describes only the public protocol. */
  static boolean isOpen(String method) {
    return method.startsWith("grpc.health.v1.Health/")
        || method.startsWith("grpc.reflection.")
        || method.equals(INFERENCE + "ServerLive")
        || method.equals(INFERENCE + "ServerReady");
  }

  static Status status(SecurityDenial e) {
    return (e.kind() == SecurityDenial.Kind.UNAUTHENTICATED ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED)
        .withDescription(e.getMessage());
  }

  /**
   * The per-model check of a handler: may the call's principal do this to this model (and, for
   * inference, is there a rate-limit token)? A no-op when security is off.
   *
   * @throws SecurityDenial PERMISSION_DENIED
   * @throws io.quiver.core.InferenceException RESOURCE_EXHAUSTED when rate-limited
   */
  static void check(SecurityPolicy policy, Permission permission, String model, String operation) {
    if (policy == null) {
      return;
    }
    CallerPrincipal principal = PRINCIPAL.get();
    if (principal == null) {
      return; // an open method; none reaches here today
    }
    String peer = PEER.get();
    policy.authorize(principal, permission, model, operation, peer);
    if (permission == Permission.INFER) {
      policy.admitInference(principal, model, peer);
    }
  }

  static String peer(SocketAddress address) {
    return address == null ? "unknown" : address.toString();
  }
}
