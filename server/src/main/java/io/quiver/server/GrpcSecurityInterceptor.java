package io.quiver.server;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.quiver.core.InferenceException;
import io.quiver.server.security.CallerPrincipal;
import io.quiver.server.security.Operations;
import io.quiver.server.security.Permission;
import io.quiver.server.security.SecurityPolicy;
import io.quiver.transport.GrpcErrors;
import java.net.SocketAddress;

/**
 * Authenticates every gRPC call that {@link Operations} does not list as open (health, liveness,
 * readiness, reflection), from the {@code authorization: Bearer <JWT>} or {@code x-api-key} metadata,
 * and authorizes what needs no message to decide (administration, which covers the control plane, and
 * ServerMetadata). The principal and the peer travel in the call's {@link Context}; the per-model checks
 * (infer, metadata) and rate limits happen in {@link InferenceServiceImpl}, which reads the model name
 * from the message, through {@link #check}. Runs on the event loop; no blocking (a JWT signature check
 * at most, cached per token). Thread-safe.
 */
final class GrpcSecurityInterceptor implements ServerInterceptor {
  static final Context.Key<CallerPrincipal> PRINCIPAL = Context.key("quiver.principal");
  static final Context.Key<String> PEER = Context.key("quiver.peer");
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> API_KEY = Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);

  private final SecurityPolicy policy;

  GrpcSecurityInterceptor(SecurityPolicy policy) {
    this.policy = policy;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    Operations.Rule rule = Operations.grpc(method);
    if (rule.scope() == Operations.Scope.OPEN) {
      return next.startCall(call, headers);
    }
    String peer = peer(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    try {
      CallerPrincipal principal = policy.authenticate(headers.get(AUTHORIZATION), headers.get(API_KEY), method, peer);
      if (rule.scope() == Operations.Scope.SERVER) {
        policy.authorize(principal, rule.permission(), "*", method, peer);
      } // Scope.MODEL: the handler checks the model its message names (check below)
      Context context = Context.current().withValues(PRINCIPAL, principal, PEER, peer);
      return Contexts.interceptCall(context, call, headers, next);
    } catch (InferenceException e) {
      GrpcErrors.close(call, e);
      return new ServerCall.Listener<>() {};
    }
  }

  /**
   * The per-model check of a handler, by the operation's rule in {@link Operations}: may the call's
   * principal do this to this model (and, for inference, is there a rate-limit token)? A no-op when
   * security is off. Fails closed: with security on, a call that reaches here without an authenticated
   * principal is refused.
   *
   * @param method the inference-service method ("ModelInfer"), or another service's full method name
   *     ("quiver.monitoring.v1.ModelMonitoring/GetModelMonitoring")
   * @throws InferenceException UNAUTHENTICATED, PERMISSION_DENIED, or RESOURCE_EXHAUSTED when rate-limited
   */
  static void check(SecurityPolicy policy, String method, String model) {
    if (policy == null) {
      return;
    }
    Operations.Rule rule = method.indexOf('/') >= 0 ? Operations.grpc(method) : Operations.inference(method);
    if (rule.scope() == Operations.Scope.OPEN) {
      return;
    }
    CallerPrincipal principal = PRINCIPAL.get();
    if (principal == null) {
      throw InferenceException.unauthenticated("%s: no authenticated caller (credentials were not checked)", method);
    }
    String peer = PEER.get();
    Permission permission = rule.scope() == Operations.Scope.MODEL ? rule.permission() : Permission.AUTHENTICATED;
    policy.authorize(principal, permission, model, method, peer);
    if (permission == Permission.INFER) {
      policy.admitInference(principal, model, peer);
    }
  }

  static String peer(SocketAddress address) {
    return address == null ? "unknown" : address.toString();
  }
}
