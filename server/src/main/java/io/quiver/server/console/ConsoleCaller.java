package io.quiver.server.console;

import io.grpc.Attributes;
import io.grpc.ForwardingServerCall;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.quiver.server.security.CallerPrincipal;
import io.quiver.server.security.Permission;
import io.quiver.server.security.SecurityPolicy;
import java.net.SocketAddress;

/**
 * Who is using the console for one request: the principal the security policy authenticated (null when
 * security is off), the credential headers to forward to the control plane (so its own authentication,
 * authorization and audit lines apply to console actions exactly as to the CLI's), and the browser's
 * address. Credentials are carried, never logged or printed ({@link #toString()} leaves them out).
 * Immutable.
 */
final class ConsoleCaller {
  static final String API_KEY_HEADER = "x-api-key";
  /** In-process metadata naming the browser's address, so audit lines name the real peer. */
  static final Metadata.Key<String> PEER_KEY = Metadata.Key.of("quiver-console-peer", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> API_KEY = Metadata.Key.of(API_KEY_HEADER, Metadata.ASCII_STRING_MARSHALLER);

  private final SecurityPolicy policy;
  private final CallerPrincipal principal;
  private final String authorization;
  private final String apiKey;
  private final String peer;

  private ConsoleCaller(SecurityPolicy policy, CallerPrincipal principal, String authorization, String apiKey,
      String peer) {
    this.policy = policy;
    this.principal = principal;
    this.authorization = authorization;
    this.apiKey = apiKey;
    this.peer = peer;
  }

  /**
   * The caller of one console request; with security on, authenticated through the same policy as REST
   * and gRPC (failures are audited there).
   *
   * @throws io.quiver.core.InferenceException UNAUTHENTICATED
   */
  static ConsoleCaller of(SecurityPolicy policy, HttpHeaders headers, String peer, String operation) {
    String authorization = headers.get(HttpHeaderNames.AUTHORIZATION);
    String apiKey = headers.get(API_KEY_HEADER);
    if (policy == null) {
      return new ConsoleCaller(null, null, null, null, peer);
    }
    CallerPrincipal principal = policy.authenticate(authorization, apiKey, operation, peer);
    return new ConsoleCaller(policy, principal, authorization, apiKey, peer);
  }

  /** Whether the caller holds the permission (true when security is off). Writes no audit line. */
  boolean may(Permission permission, String model) {
    return policy == null || policy.allowed(principal, permission, model);
  }

  /**
   * Refuses unless the caller holds the permission; a refusal is audited by the policy. An allowed
   * check writes no line here: the operation it guards is audited where it runs.
   *
   * @throws io.quiver.core.InferenceException PERMISSION_DENIED
   */
  void require(Permission permission, String model, String operation) {
    if (!may(permission, model)) {
      policy.authorize(principal, permission, model, operation, peer); // throws, after the audit line
    }
  }

  /** The principal's name, or null when security is off. */
  String name() {
    return principal == null ? null : principal.name();
  }

  CallerPrincipal principal() {
    return principal;
  }

  String peer() {
    return peer;
  }

  /** The metadata of an in-process control call made for this caller: its credential and its address. */
  Metadata controlMetadata() {
    Metadata metadata = new Metadata();
    if (authorization != null && !authorization.isEmpty()) {
      metadata.put(AUTHORIZATION, authorization);
    }
    if (apiKey != null && !apiKey.isEmpty()) {
      metadata.put(API_KEY, apiKey);
    }
    metadata.put(PEER_KEY, printable(peer));
    return metadata;
  }

  @Override
  public String toString() {
    return "ConsoleCaller[" + (principal == null ? "security off" : principal.name()) + " from " + peer + "]";
  }

  private static String printable(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length() && i < 200; i++) {
      char c = s.charAt(i);
      b.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return b.toString();
  }

  /**
   * For the control plane's in-process server only (no network client can reach it): presents a console
   * call's browser address as the call's remote address, so the authentication, authorization and
   * control audit lines name it ("console /10.0.0.7:51234") instead of the in-process channel.
   */
  static ServerInterceptor peerFromConsole() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        String browser = headers.get(PEER_KEY);
        if (browser == null) {
          return next.startCall(call, headers);
        }
        SocketAddress address = new ConsolePeer(browser);
        Attributes attributes = call.getAttributes().toBuilder().set(Grpc.TRANSPORT_ATTR_REMOTE_ADDR, address).build();
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
          @Override
          public Attributes getAttributes() {
            return attributes;
          }
        }, headers);
      }
    };
  }

  /** A browser seen through the console, as audit lines print it. */
  private static final class ConsolePeer extends SocketAddress {
    private static final long serialVersionUID = 1L;
    private final String browser;

    ConsolePeer(String browser) {
      this.browser = browser;
    }

    @Override
    public String toString() {
      return "console " + browser;
    }
  }
}
