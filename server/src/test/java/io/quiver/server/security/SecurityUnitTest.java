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
