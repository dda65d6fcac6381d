package io.quiver.server.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The policy's parts without a server: token buckets, the static-PEM JWT key, config validation. */
class SecurityUnitTest {
  @TempDir Path dir;

  @Test
  void tokenBucket_allowsBurstThenRefillsAtRate_andSaysHowLongToWait() {
    TokenBucket bucket = new TokenBucket(10, 3); // one token per 100 ms
    long t = System.nanoTime() + 1_000_000_000L;
    assertThat(bucket.tryAcquire(t)).isZero();
    assertThat(bucket.tryAcquire(t)).isZero();
    assertThat(bucket.tryAcquire(t)).isZero();
    long wait = bucket.tryAcquire(t);
    assertThat(wait).isBetween(99_000_000L, 100_000_000L);
    assertThat(bucket.tryAcquire(t + wait)).isZero();
    assertThat(bucket.tryAcquire(t + wait)).isPositive();
    // Idle for a long time: back to a full bucket, never more.
    long later = t + 60_000_000_000L;
    for (int i = 0; i < 3; i++) {
      assertThat(bucket.tryAcquire(later)).isZero();
    }
    assertThat(bucket.tryAcquire(later)).isPositive();
  }

  @Test
  void jwt_fromStaticPemKey_es256() throws Exception {
    ECKey key = new ECKeyGenerator(Curve.P_256).generate();
    Files.writeString(dir.resolve("jwt.pub.pem"), "-----BEGIN PUBLIC KEY-----\n"
        + Base64.getMimeEncoder().encodeToString(key.toECPublicKey().getEncoded()) + "\n-----END PUBLIC KEY-----\n");
    SecurityConfig config = SecurityConfig.parse("""
        {"jwt": {"public_key_file": "jwt.pub.pem", "issuer": "i", "audience": "a", "roles_claim": "scope"},
         "roles": {"reader": {"models": {"*": ["metadata"]}}}}""", dir);
    Authenticator auth = new Authenticator(config);
    SignedJWT jwt = new SignedJWT(new JWSHeader(JWSAlgorithm.ES256), new JWTClaimsSet.Builder().subject("s").issuer("i")
        .audience("a").expirationTime(new Date(System.currentTimeMillis() + 60_000)).claim("scope", "reader other").build());
    jwt.sign(new ECDSASigner(key));
    CallerPrincipal p = auth.authenticate("Bearer " + jwt.serialize(), null);
    assertThat(p.name()).isEqualTo("s");
    assertThat(p.roles()).containsExactlyInAnyOrder("reader", "other");
    assertThat(auth.authenticate("bearer " + jwt.serialize(), null)).isEqualTo(p); // cached
  }

  @Test
  void twoCredentials_areRefused_evenWhenOneIsValid() throws Exception {
    ECKey key = new ECKeyGenerator(Curve.P_256).generate();
    Files.writeString(dir.resolve("jwt2.pub.pem"), "-----BEGIN PUBLIC KEY-----\n"
        + Base64.getMimeEncoder().encodeToString(key.toECPublicKey().getEncoded()) + "\n-----END PUBLIC KEY-----\n");
    String apiKey = "the-right-key";
    String sha = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
        .digest(apiKey.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    Authenticator auth = new Authenticator(SecurityConfig.parse("""
        {"jwt": {"public_key_file": "jwt2.pub.pem", "issuer": "i", "audience": "a", "roles_claim": "scope"},
         "api_keys": [{"name": "k", "sha256": "%s", "roles": ["reader"]}],
         "roles": {"reader": {"models": {"*": ["metadata"]}}}}""".formatted(sha), dir));
    SignedJWT jwt = new SignedJWT(new JWSHeader(JWSAlgorithm.ES256), new JWTClaimsSet.Builder().subject("s").issuer("i")
        .audience("a").expirationTime(new Date(System.currentTimeMillis() + 60_000)).claim("scope", "reader").build());
    jwt.sign(new ECDSASigner(key));
    String bearer = "Bearer " + jwt.serialize();
    // Each alone is accepted ...
    assertThat(auth.authenticate(bearer, null).name()).isEqualTo("s");
    assertThat(auth.authenticate(null, apiKey).name()).isEqualTo("k");
    // ... together they are ambiguous, whichever is wrong (or neither): never the stronger one wins.
    for (String[] pair : new String[][] {{bearer, "a-wrong-key"}, {"Bearer not.a.jwt", apiKey}, {bearer, apiKey}}) {
      assertThatThrownBy(() -> auth.authenticate(pair[0], pair[1]))
          .isInstanceOfSatisfying(io.quiver.core.InferenceException.class,
              e -> assertThat(e.code()).isEqualTo(io.quiver.core.ErrorCode.UNAUTHENTICATED))
          .hasMessageContaining("not both");
    }
  }

  @Test
  void operations_oneTableForEveryTransport_unlistedMethodsNeedAdmin() {
    assertThat(Operations.grpc("inference.GRPCInferenceService/ServerLive").scope()).isEqualTo(Operations.Scope.OPEN);
    assertThat(Operations.grpc("grpc.health.v1.Health/Check").scope()).isEqualTo(Operations.Scope.OPEN);
    assertThat(Operations.grpc("inference.GRPCInferenceService/ModelInfer"))
        .isEqualTo(new Operations.Rule(Operations.Scope.MODEL, Permission.INFER));
    assertThat(Operations.grpc("inference.GRPCInferenceService/ModelStreamInfer").permission()).isEqualTo(Permission.INFER);
    assertThat(Operations.grpc("inference.GRPCInferenceService/ModelMetadata").permission()).isEqualTo(Permission.METADATA);
    assertThat(Operations.grpc(Operations.MONITORING_REPORT))
        .isEqualTo(new Operations.Rule(Operations.Scope.MODEL, Permission.METADATA));
    for (String adminOnly : List.of("inference.GRPCInferenceService/RepositoryModelLoad",
        "quiver.control.v1.ModelControl/UploadModel", "quiver.jobs.v1.BatchJobs/SubmitJob",
        "inference.GRPCInferenceService/SomeMethodAddedLater", "some.other.Service/Anything")) {
      assertThat(Operations.grpc(adminOnly)).as(adminOnly).isEqualTo(new Operations.Rule(Operations.Scope.SERVER,
          Permission.ADMIN));
    }
    assertThat(Operations.rest("GET", new String[] {"v2", "health", "ready"}).rule().scope()).isEqualTo(Operations.Scope.OPEN);
    Operations.RestRule infer = Operations.rest("POST", new String[] {"v2", "models", "m", "versions", "2", "infer"});
    assertThat(infer.rule().permission()).isEqualTo(Permission.INFER);
    assertThat(infer.model()).isEqualTo("m");
    assertThat(Operations.rest("GET", new String[] {"v2", "models", "m"}).rule().permission()).isEqualTo(Permission.METADATA);
    for (String group : List.of("repository", "logging", "jobs")) {
      assertThat(Operations.rest("POST", new String[] {"v2", group, "x"}).rule().permission()).as(group)
          .isEqualTo(Permission.ADMIN);
    }
  }

  @Test
  void config_errorsNameTheField() {
    assertThatThrownBy(() -> SecurityConfig.parse("{\"api_keys\": [{\"name\": \"k\", \"sha256\": \"abc\", \"roles\": [\"r\"]}],"
        + " \"roles\": {\"r\": {}}}", dir)).hasMessageContaining("api_keys['k'].sha256 must be 64 hex digits");
    assertThatThrownBy(() -> SecurityConfig.parse("{\"api_keys\": [{\"name\": \"k\", \"sha256\": \"" + "a".repeat(64)
        + "\", \"roles\": [\"nope\"]}]}", dir)).hasMessageContaining("role 'nope'");
    assertThatThrownBy(() -> SecurityConfig.parse("{\"roles\": {\"r\": {\"models\": {\"*\": [\"delete\"]}}}}", dir))
        .hasMessageContaining("'infer' and 'metadata'; was 'delete'");
    assertThatThrownBy(() -> SecurityConfig.parse("{\"rate_limit\": {}}", dir)).hasMessageContaining("rate_limit");
    assertThatThrownBy(() -> SecurityConfig.parse("{\"jwt\": {\"issuer\": \"i\", \"audience\": \"a\"}}", dir))
        .hasMessageContaining("exactly one of jwks_file and public_key_file");
  }

  @Test
  void docsExample_isAValidSecurityFile() throws Exception {
    Path doc = Path.of("..", "docs", "security.md");
    org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(doc), "docs/security.md beside the server module");
    String text = Files.readString(doc);
    int from = text.indexOf("```json\n") + "```json\n".length();
    String json = text.substring(from, text.indexOf("```", from));
    Files.writeString(dir.resolve("jwks.json"), "{\"keys\": []}");
    SecurityPolicy policy = new SecurityPolicy(SecurityConfig.parse(json, dir));
    CallerPrincipal scorer = new Authenticator(SecurityConfig.parse(json, dir)).authenticate(null, "change-me-scorer-key");
    assertThat(scorer.name()).isEqualTo("batch-scorer");
    assertThat(policy.allowed(scorer, Permission.INFER, "fraud_v2")).isTrue();
    assertThat(policy.allowed(scorer, Permission.ADMIN, "*")).isFalse();
  }

  @Test
  void policy_wildcardAndPrefixPatterns() throws Exception {
    SecurityPolicy policy = new SecurityPolicy(SecurityConfig.parse("""
        {"roles": {"team": {"models": {"team_a_*": ["infer"], "shared": ["metadata"]}}, "ops": {"admin": true}}}""", dir));
    CallerPrincipal p = new CallerPrincipal("x", "api_key", java.util.Set.of("team"), Long.MAX_VALUE);
    assertThat(policy.allowed(p, Permission.INFER, "team_a_model")).isTrue();
    assertThat(policy.allowed(p, Permission.INFER, "team_b_model")).isFalse();
    assertThat(policy.allowed(p, Permission.METADATA, "shared")).isTrue();
    assertThat(policy.allowed(p, Permission.INFER, "shared")).isFalse();
    assertThat(policy.allowed(p, Permission.ADMIN, "*")).isFalse();
    assertThat(policy.allowed(new CallerPrincipal("o", "jwt", java.util.Set.of("ops"), 0), Permission.ADMIN, "*")).isTrue();
    assertThat(List.of(policy.roles().toArray())).containsExactlyInAnyOrder("team", "ops");
  }
}
