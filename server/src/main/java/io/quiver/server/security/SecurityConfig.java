package io.quiver.server.security;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The security file ({@code --security-config FILE}, JSON, snake_case; unknown fields are errors), as
 * data. Validated once by {@link #read}. See docs/security.md for an example.
 *
 * @param apiKeys API keys, stored as the hex SHA-256 of the key (never the key itself)
 * @param jwt bearer-token verification; null = no JWTs accepted
 * @param roles role name → what it may do
 * @param anonymousRoles roles of a caller that sends no credential; empty = such callers are refused
 * @param rateLimits token buckets for inference requests; null = none
 */
public record SecurityConfig(List<ApiKey> apiKeys, Jwt jwt, Map<String, Role> roles, List<String> anonymousRoles,
    RateLimits rateLimits) {
  private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");
  private static final ObjectMapper JSON = new ObjectMapper()
      .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

  /** @param sha256 lowercase hex SHA-256 of the key's UTF-8 bytes ({@code printf %s KEY | sha256sum}) */
  public record ApiKey(String name, String sha256, List<String> roles) {}

  /**
   * @param jwksFile a JWKS JSON file of public keys (RSA and P-256 EC; "kid" selects the key)
   * @param publicKeyFile or a single PEM public key ('BEGIN PUBLIC KEY'), RSA or P-256 EC
   * @param issuer required value of "iss"
   * @param audience required value among "aud"
   * @param rolesClaim the claim holding the role names (a list or a space-separated string)
   * @param clockSkewSeconds tolerance for exp and nbf
   */
  public record Jwt(String jwksFile, String publicKeyFile, String issuer, String audience, String rolesClaim,
      Integer clockSkewSeconds) {}

  /**
   * @param models model name (or "*" for every model, or "prefix*") → permissions ("infer", "metadata")
   * @param admin whether the role may load and unload models and change log levels
   */
  public record Role(Map<String, List<String>> models, Boolean admin) {}

  /** @param perSecond refill rate @param burst bucket size */
  public record Limit(double perSecond, int burst) {}

  /**
   * @param perPrincipal the bucket each principal gets
   * @param principals per-principal overrides by name
   * @param perModel model name (or "*" for each model without its own entry) → bucket shared by all callers
   */
  public record RateLimits(Limit perPrincipal, Map<String, Limit> principals, Map<String, Limit> perModel) {}

  public static SecurityConfig read(Path file) throws IOException {
    SecurityConfig config;
    try {
      config = JSON.readValue(Files.readAllBytes(file), SecurityConfig.class);
    } catch (IOException e) {
      throw new IOException("security config " + file + ": " + e.getMessage(), e);
    }
    return config.validated(file.getParent() == null ? Path.of("") : file.getParent());
  }

  public static SecurityConfig parse(String json, Path baseDir) throws IOException {
    return JSON.readValue(json, SecurityConfig.class).validated(baseDir);
  }

  /** Fills defaults, resolves relative key files against the config's directory, and checks every field. */
  private SecurityConfig validated(Path baseDir) {
    List<ApiKey> keys = apiKeys == null ? List.of() : apiKeys;
    Map<String, Role> roleMap = roles == null ? Map.of() : roles;
    for (ApiKey k : keys) {
      require(k.name() != null && !k.name().isBlank(), "api_keys[].name must be set");
      require(k.sha256() != null && SHA256_HEX.matcher(k.sha256().toLowerCase(Locale.ROOT)).matches(),
          "api_keys['" + k.name() + "'].sha256 must be 64 hex digits (the SHA-256 of the key)");
      require(k.roles() != null && !k.roles().isEmpty(), "api_keys['" + k.name() + "'].roles must name at least one role");
      for (String r : k.roles()) {
        require(roleMap.containsKey(r), "api_keys['" + k.name() + "'] names role '" + r + "', which 'roles' does not define");
      }
    }
    List<String> anonymous = anonymousRoles == null ? List.of() : anonymousRoles;
    for (String r : anonymous) {
      require(roleMap.containsKey(r), "anonymous_roles names role '" + r + "', which 'roles' does not define");
    }
    for (Map.Entry<String, Role> e : roleMap.entrySet()) {
      Map<String, List<String>> models = e.getValue().models() == null ? Map.of() : e.getValue().models();
      for (Map.Entry<String, List<String>> m : models.entrySet()) {
        for (String p : m.getValue()) {
          require(p.equals("infer") || p.equals("metadata"),
              "roles['" + e.getKey() + "'].models['" + m.getKey() + "'] may list 'infer' and 'metadata'; was '" + p + "'");
        }
      }
    }
    Jwt j = jwt;
    if (j != null) {
      require((j.jwksFile() == null) != (j.publicKeyFile() == null), "jwt needs exactly one of jwks_file and public_key_file");
      require(j.issuer() != null && !j.issuer().isEmpty(), "jwt.issuer must be set (the required 'iss')");
      require(j.audience() != null && !j.audience().isEmpty(), "jwt.audience must be set (the required 'aud')");
      require(j.clockSkewSeconds() == null || j.clockSkewSeconds() >= 0, "jwt.clock_skew_seconds must be ≥ 0");
      j = new Jwt(resolve(baseDir, j.jwksFile()), resolve(baseDir, j.publicKeyFile()), j.issuer(), j.audience(),
          j.rolesClaim() == null ? "roles" : j.rolesClaim(), j.clockSkewSeconds() == null ? 60 : j.clockSkewSeconds());
    }
    if (rateLimits != null) {
      check(rateLimits.perPrincipal(), "rate_limits.per_principal");
      if (rateLimits.principals() != null) {
        rateLimits.principals().forEach((k, v) -> check(v, "rate_limits.principals['" + k + "']"));
      }
      if (rateLimits.perModel() != null) {
        rateLimits.perModel().forEach((k, v) -> check(v, "rate_limits.per_model['" + k + "']"));
      }
    }
    return new SecurityConfig(keys, j, roleMap, anonymous, rateLimits);
  }

  private static void check(Limit limit, String where) {
    if (limit != null) {
      require(limit.perSecond() > 0, where + ".per_second must be > 0; was " + limit.perSecond());
      require(limit.burst() >= 1, where + ".burst must be ≥ 1; was " + limit.burst());
    }
  }

  private static String resolve(Path base, String file) {
    return file == null ? null : base.resolve(file).toString();
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException("security config: " + message);
    }
  }
}
