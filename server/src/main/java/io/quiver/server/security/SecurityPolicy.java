package io.quiver.server.security;

import io.quiver.core.InferenceException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one security decision both transports (the gRPC interceptor and the REST handler) ask: who is
 * calling ({@link #authenticate}), may they do this to this model ({@link #authorize}), and is there
 * a token left in their buckets ({@link #admitInference}). Failures and denials are written to the
 * audit log (logger {@code quiver.audit}) with the principal and the peer address. Thread-safe;
 * authorization is a few hash lookups, rate limiting one CAS per bucket, no locks.
 */
public final class SecurityPolicy {
  /** Authentication failures, denials, rate-limit refusals and administrative operations. */
  public static final Logger AUDIT = LoggerFactory.getLogger("quiver.audit");
  /** Buckets kept for at most this many distinct principals (and models); past it the map starts afresh. */
  static final int MAX_BUCKETS = 100_000;

  private final Authenticator authenticator;
  /** role → (model pattern → permissions); "*" and "prefix*" patterns. */
  private final Map<String, Map<String, EnumSet<Permission>>> roleModels = new HashMap<>();
  private final Set<String> adminRoles;
  private final SecurityConfig.RateLimits limits;
  private final ConcurrentHashMap<String, TokenBucket> principalBuckets = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, TokenBucket> modelBuckets = new ConcurrentHashMap<>();

  public SecurityPolicy(SecurityConfig config) throws IOException {
    this.authenticator = new Authenticator(config);
    Set<String> admins = new java.util.HashSet<>();
    config.roles().forEach((role, spec) -> {
      Map<String, EnumSet<Permission>> models = new HashMap<>();
      if (spec.models() != null) {
        spec.models().forEach((pattern, perms) -> {
          EnumSet<Permission> set = EnumSet.noneOf(Permission.class);
          for (String p : perms) {
            set.add(p.equals("infer") ? Permission.INFER : Permission.METADATA);
          }
          models.put(pattern, set);
        });
      }
      roleModels.put(role, models);
      if (Boolean.TRUE.equals(spec.admin())) {
        admins.add(role);
      }
    });
    this.adminRoles = Set.copyOf(admins);
    this.limits = config.rateLimits();
  }

  public static SecurityPolicy fromFile(Path file) throws IOException {
    return new SecurityPolicy(SecurityConfig.read(file));
  }

  /**
   * @param operation what was asked ("/inference.GRPCInferenceService/ModelInfer", "POST /v2/..."), for the audit log
   * @param peer the remote address, for the audit log
   * @throws InferenceException UNAUTHENTICATED
   */
  public CallerPrincipal authenticate(String authorization, String apiKey, String operation, String peer) {
    try {
      return authenticator.authenticate(authorization, apiKey);
    } catch (InferenceException e) {
      AUDIT.atWarn()
          .addKeyValue("event", "authentication_failed")
          .addKeyValue("operation", operation)
          .addKeyValue("peer", peer)
          .addKeyValue("credential", authorization != null && !authorization.isEmpty() ? "bearer"
              : apiKey != null && !apiKey.isEmpty() ? "api_key" : "none")
          .addKeyValue("reason", e.getMessage())
          .log("authentication failed for {} from {}: {}", operation, peer, e.getMessage());
      throw e;
    }
  }

  /**
   * @param model the model the operation is about; "*" = every model (statistics of all models)
   * @throws InferenceException PERMISSION_DENIED
   */
  public void authorize(CallerPrincipal principal, Permission permission, String model, String operation, String peer) {
    if (allowed(principal, permission, model)) {
      if (permission == Permission.ADMIN) {
        AUDIT.atInfo()
            .addKeyValue("event", "admin_operation")
            .addKeyValue("principal", principal.name())
            .addKeyValue("operation", operation)
            .addKeyValue("peer", peer)
            .log("{} by '{}' from {}", operation, principal.name(), peer);
      }
      return;
    }
    String what = permission == Permission.ADMIN ? "administration"
        : permission.name().toLowerCase(java.util.Locale.ROOT) + " on model '" + model + "'";
    AUDIT.atWarn()
        .addKeyValue("event", "permission_denied")
        .addKeyValue("principal", principal.name())
        .addKeyValue("auth_method", principal.method())
        .addKeyValue("roles", String.join(",", principal.roles()))
        .addKeyValue("permission", permission.name())
        .addKeyValue("model", model)
        .addKeyValue("operation", operation)
        .addKeyValue("peer", peer)
        .log("'{}' denied {} ({}) from {}", principal.name(), what, operation, peer);
    throw InferenceException.permissionDenied("'%s' may not perform %s", principal.name(), what);
  }

  /** Whether the principal's roles grant the permission on the model. */
  public boolean allowed(CallerPrincipal principal, Permission permission, String model) {
    if (permission == Permission.AUTHENTICATED) {
      return true;
    }
    for (String role : principal.roles()) {
      if (permission == Permission.ADMIN) {
        if (adminRoles.contains(role)) {
          return true;
        }
        continue;
      }
      Map<String, EnumSet<Permission>> models = roleModels.get(role);
      if (models == null) {
        continue;
      }
      EnumSet<Permission> exact = models.get(model);
      if (exact != null && exact.contains(permission)) {
        return true;
      }
      for (Map.Entry<String, EnumSet<Permission>> e : models.entrySet()) {
        String pattern = e.getKey();
        if (pattern.endsWith("*") && model.startsWith(pattern.substring(0, pattern.length() - 1))
            && e.getValue().contains(permission)) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Takes one token from the principal's bucket and one from the model's. No allocation once both
   * buckets exist.
   *
   * @throws InferenceException RESOURCE_EXHAUSTED with the time until a token is available
   */
  public void admitInference(CallerPrincipal principal, String model, String peer) {
    if (limits == null) {
      return;
    }
    long now = System.nanoTime();
    TokenBucket principalBucket = principalBucket(principal.name());
    long wait = principalBucket == null ? 0 : principalBucket.tryAcquire(now);
    String scope = "principal '" + principal.name() + "'";
    if (wait == 0) {
      TokenBucket modelBucket = modelBucket(model);
      wait = modelBucket == null ? 0 : modelBucket.tryAcquire(now);
      scope = "model '" + model + "'";
    }
    if (wait > 0) {
      // A token already taken from the principal's bucket is not returned: refused requests count too.
      AUDIT.atDebug()
          .addKeyValue("event", "rate_limited")
          .addKeyValue("principal", principal.name())
          .addKeyValue("model", model)
          .addKeyValue("peer", peer)
          .log("rate limit of {} reached", scope);
      throw InferenceException.resourceExhausted(wait, "rate limit of %s reached; retry in %d ms", scope,
          Math.max(1, wait / 1_000_000));
    }
  }

  private TokenBucket principalBucket(String name) {
    TokenBucket b = principalBuckets.get(name);
    if (b != null) {
      return b;
    }
    SecurityConfig.Limit limit = limits.principals() != null && limits.principals().containsKey(name)
        ? limits.principals().get(name) : limits.perPrincipal();
    return limit == null ? null : create(principalBuckets, name, limit);
  }

  private TokenBucket modelBucket(String model) {
    TokenBucket b = modelBuckets.get(model);
    if (b != null) {
      return b;
    }
    Map<String, SecurityConfig.Limit> perModel = limits.perModel();
    SecurityConfig.Limit limit = perModel == null ? null : perModel.containsKey(model) ? perModel.get(model) : perModel.get("*");
    return limit == null ? null : create(modelBuckets, model, limit);
  }

  private static TokenBucket create(ConcurrentHashMap<String, TokenBucket> buckets, String key, SecurityConfig.Limit limit) {
    if (buckets.size() >= MAX_BUCKETS) {
      buckets.clear(); // bounded memory against many distinct names; resets their buckets to full
    }
    return buckets.computeIfAbsent(key, k -> new TokenBucket(limit.perSecond(), limit.burst()));
  }

  /** The roles configured, for diagnostics. */
  List<String> roles() {
    return new ArrayList<>(roleModels.keySet());
  }
}
