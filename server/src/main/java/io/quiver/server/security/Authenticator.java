package io.quiver.server.security;

import com.nimbusds.jose.JOSEException;
import io.quiver.core.InferenceException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.text.ParseException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Turns the credentials of a request (an {@code authorization: Bearer <JWT>} header or an {@code
 * x-api-key} header) into a {@link CallerPrincipal}, or refuses with UNAUTHENTICATED.
 *
 * <p>API keys are looked up by their SHA-256 (the file never holds a key). JWTs are verified with
 * nimbus-jose-jwt: RS256 or ES256 only, signature by a key of the JWKS file (or the one PEM key),
 * {@code exp} required and checked, {@code nbf} checked when present, {@code iss} and {@code aud}
 * required to match, with the configured clock skew. Verified tokens are cached until they expire
 * (bounded: the cache is cleared when it reaches {@link #MAX_CACHED_TOKENS}), so a client that reuses
 * its token pays for one signature check. Thread-safe.
 */
public final class Authenticator {
  static final int MAX_CACHED_TOKENS = 10_000;
  private static final String BEARER = "bearer ";

  private final Map<String, CallerPrincipal> apiKeysBySha256 = new HashMap<>();
  private final DefaultJWTProcessor<SecurityContext> jwtProcessor;
  private final String rolesClaim;
  private final CallerPrincipal anonymous;
  private final ConcurrentHashMap<String, CallerPrincipal> tokenCache = new ConcurrentHashMap<>();

  public Authenticator(SecurityConfig config) throws IOException {
    for (SecurityConfig.ApiKey key : config.apiKeys()) {
      apiKeysBySha256.put(key.sha256().toLowerCase(java.util.Locale.ROOT),
          new CallerPrincipal(key.name(), "api_key", Set.copyOf(key.roles()), Long.MAX_VALUE));
    }
    anonymous = config.anonymousRoles().isEmpty() ? null
        : new CallerPrincipal(CallerPrincipal.ANONYMOUS, "anonymous", Set.copyOf(config.anonymousRoles()), Long.MAX_VALUE);
    SecurityConfig.Jwt jwt = config.jwt();
    if (jwt == null) {
      jwtProcessor = null;
      rolesClaim = null;
      return;
    }
    rolesClaim = jwt.rolesClaim();
    JWKSet keys;
    try {
      keys = jwt.jwksFile() != null ? JWKSet.load(Path.of(jwt.jwksFile()).toFile())
          : new JWKSet(jwk(PemFiles.publicKey(Path.of(jwt.publicKeyFile()))));
    } catch (ParseException | GeneralSecurityException e) {
      throw new IOException("jwt keys: " + e.getMessage(), e);
    }
    jwtProcessor = new DefaultJWTProcessor<>();
    jwtProcessor.setJWSKeySelector(new JWSVerificationKeySelector<>(Set.of(JWSAlgorithm.RS256, JWSAlgorithm.ES256),
        new ImmutableJWKSet<>(keys)));
    DefaultJWTClaimsVerifier<SecurityContext> claims = new DefaultJWTClaimsVerifier<>(jwt.audience(),
        new JWTClaimsSet.Builder().issuer(jwt.issuer()).build(), Set.of("exp", "sub"));
    claims.setMaxClockSkew(jwt.clockSkewSeconds());
    jwtProcessor.setJWTClaimsSetVerifier(claims);
  }

  private static JWK jwk(PublicKey key) throws GeneralSecurityException {
    if (key instanceof RSAPublicKey rsa) {
      return new RSAKey.Builder(rsa).build();
    }
    if (key instanceof ECPublicKey ec) {
      return new ECKey.Builder(Curve.forECParameterSpec(ec.getParams()), ec).build();
    }
    throw new GeneralSecurityException("jwt.public_key_file must hold an RSA or EC (P-256) key; was " + key.getAlgorithm());
  }

  /** Whether callers without any credential are let in (with the anonymous roles). */
  public boolean allowsAnonymous() {
    return anonymous != null;
  }

  /**
   * @param authorization the {@code authorization} header, or null
   * @param apiKey the {@code x-api-key} header, or null
   * @throws InferenceException UNAUTHENTICATED when no credential is valid, or when both are sent
   *     (ambiguous: a wrong key beside a valid token, or the reverse, must not pass on the other's strength)
   */
  public CallerPrincipal authenticate(String authorization, String apiKey) {
    if (authorization != null && !authorization.isEmpty() && apiKey != null && !apiKey.isEmpty()) {
      throw InferenceException.unauthenticated(
          "send one credential: either 'authorization: Bearer <JWT>' or 'x-api-key', not both");
    }
    if (authorization != null && !authorization.isEmpty()) {
      if (authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
        return bearer(authorization.substring(BEARER.length()).trim());
      }
      throw InferenceException.unauthenticated("the authorization header must be 'Bearer <token>'");
    }
    if (apiKey != null && !apiKey.isEmpty()) {
      CallerPrincipal p = apiKeysBySha256.get(sha256(apiKey));
      if (p == null) {
        throw InferenceException.unauthenticated("unknown API key");
      }
      return p;
    }
    if (anonymous != null) {
      return anonymous;
    }
    throw InferenceException.unauthenticated("credentials required: send 'authorization: Bearer <JWT>' or 'x-api-key: <key>'");
  }

  private CallerPrincipal bearer(String token) {
    if (jwtProcessor == null) {
      throw InferenceException.unauthenticated("bearer tokens are not accepted by this server (no 'jwt' in the security config)");
    }
    CallerPrincipal cached = tokenCache.get(token);
    if (cached != null) {
      if (cached.expiresAtMillis() > System.currentTimeMillis()) {
        return cached;
      }
      tokenCache.remove(token, cached);
    }
    JWTClaimsSet claims;
    try {
      claims = jwtProcessor.process(token, null);
    } catch (ParseException e) {
      throw InferenceException.unauthenticated("malformed bearer token");
    } catch (BadJOSEException e) {
      throw InferenceException.unauthenticated("invalid bearer token: " + e.getMessage());
    } catch (JOSEException e) {
      throw InferenceException.unauthenticated("bearer token could not be verified: " + e.getMessage());
    }
    CallerPrincipal principal = new CallerPrincipal(claims.getSubject(), "jwt", roles(claims),
        claims.getExpirationTime().getTime());
    // Verified now, so nbf has passed; the entry lives until exp (without the skew: stricter than the check).
    if (tokenCache.size() >= MAX_CACHED_TOKENS) {
      tokenCache.clear();
    }
    tokenCache.put(token, principal);
    return principal;
  }

  private Set<String> roles(JWTClaimsSet claims) {
    Object value = claims.getClaim(rolesClaim);
    Set<String> roles = new LinkedHashSet<>();
    if (value instanceof List<?> list) {
      for (Object o : list) {
        roles.add(String.valueOf(o));
      }
    } else if (value instanceof String s) {
      roles.addAll(List.of(s.trim().split("\\s+")));
    }
    roles.remove("");
    return Set.copyOf(new HashSet<>(roles));
  }

  static String sha256(String key) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK always has SHA-256", e);
    }
  }
}
