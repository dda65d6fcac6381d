package io.quiver.server.security;

import java.util.Set;

/**
 * Who a request comes from, once authenticated.
 *
 * @param name the API key's name, the JWT subject, or "anonymous"
 * @param method "api_key", "jwt" or "anonymous"
 * @param roles role names, looked up in the security file's "roles"
 * @param expiresAtMillis when the credential stops being valid (JWT exp); Long.MAX_VALUE for API keys
 */
public record CallerPrincipal(String name, String method, Set<String> roles, long expiresAtMillis) {
  public static final String ANONYMOUS = "anonymous";
}
