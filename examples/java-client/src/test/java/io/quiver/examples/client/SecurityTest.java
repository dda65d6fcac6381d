package io.quiver.examples.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.quiver.client.InferRequest;
import io.quiver.client.QuiverClient;
import io.quiver.client.QuiverException;
import io.quiver.client.Tensors;
import io.quiver.examples.ExampleModels;
import io.quiver.server.security.TlsOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS, mutual TLS, API keys and bearer tokens between the client and a real Quiver: certificates made by
 * openssl at test time, a security config with API keys and a per-model rate limit (for RetryInfo).
 */
class SecurityTest {
  static final String KEY = "scorer-secret-key";
  static final String LIMITED_KEY = "limited-secret-key";
  @TempDir static Path repository;
  @TempDir static Path pkiDir;
  static Certificates pki;
  static LiveQuiver tls;
  static LiveQuiver mutual;
  static LiveQuiver secured;

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    pki = new Certificates(pkiDir);
    pki.authority("ca");
    pki.server("server", "ca");
    pki.client("client", "ca");
    pki.authority("rogue");
    pki.client("rogue-client", "rogue");
    Files.writeString(pkiDir.resolve("security.json"), """
        {
          "api_keys": [{"name": "scorer", "sha256": "%s", "roles": ["scorer"]},
                       {"name": "limited", "sha256": "%s", "roles": ["scorer"]}],
          "roles": {"scorer": {"models": {"identity_fp32": ["infer", "metadata"]}}},
          "rate_limits": {"principals": {"limited": {"per_second": 0.01, "burst": 2}}}
        }
        """.formatted(sha256(KEY), sha256(LIMITED_KEY)));
    tls = LiveQuiver.start(LiveQuiver.options(repository).withTls(TlsOptions.of(pki.pem("server"), pki.key("server"), null)));
    mutual = LiveQuiver.start(LiveQuiver.options(repository)
        .withTls(TlsOptions.of(pki.pem("server"), pki.key("server"), pki.pem("ca"))));
    secured = LiveQuiver.start(LiveQuiver.options(repository)
        .withTls(TlsOptions.of(pki.pem("server"), pki.key("server"), null))
        .withSecurityConfig(pkiDir.resolve("security.json")));
  }

  @AfterAll
  static void stop() {
    tls.close();
    mutual.close();
    secured.close();
  }

  static String sha256(String key) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
  }

  static InferRequest request() {
    return InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[16], 1, 16)).build();
  }

  static Status.Code code(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (QuiverException e) {
      return e.code();
    }
  }

  @Test
  void tls_trustingThePrivateCa_works_andPlaintextDoesNot() {
    PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertThat(TlsExample.run(tls.target(), pki.pem("ca"), null, null, null, out)).hasSize(16);
    try (QuiverClient plaintext = QuiverClient.builder().target(tls.target()).maxAttempts(1).build()) {
      assertThat(code(plaintext::isServerLive)).isEqualTo(Status.Code.UNAVAILABLE);
    }
    try (QuiverClient wrongCa = QuiverClient.builder().target(tls.target()).tlsTrust(pki.pem("rogue")).maxAttempts(1).build()) {
      assertThat(code(wrongCa::isServerLive)).isEqualTo(Status.Code.UNAVAILABLE);
    }
  }

  @Test
  void mutualTls_needsAClientCertificateOfTheCa() {
    PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertThat(TlsExample.run(mutual.target(), pki.pem("ca"), pki.pem("client"), pki.key("client"), null, out)).hasSize(16);
    try (QuiverClient noCertificate = QuiverClient.builder().target(mutual.target()).tlsTrust(pki.pem("ca")).maxAttempts(1).build()) {
      assertThat(code(noCertificate::isServerLive)).isEqualTo(Status.Code.UNAVAILABLE);
    }
    try (QuiverClient rogue = QuiverClient.builder().target(mutual.target()).tlsTrust(pki.pem("ca"))
        .tlsClientCertificate(pki.pem("rogue-client"), pki.key("rogue-client")).maxAttempts(1).build()) {
      assertThat(code(rogue::isServerLive)).isEqualTo(Status.Code.UNAVAILABLE);
    }
  }

  @Test
  void apiKey_authenticates_overTls() {
    try (QuiverClient anonymous = QuiverClient.builder().target(secured.target()).tlsTrust(pki.pem("ca")).build();
         QuiverClient wrongKey = QuiverClient.builder().target(secured.target()).tlsTrust(pki.pem("ca")).apiKey("nope").build();
         QuiverClient wrongToken = QuiverClient.builder().target(secured.target()).tlsTrust(pki.pem("ca"))
             .bearerToken("not.a.jwt").build();
         QuiverClient scorer = QuiverClient.builder().target(secured.target()).tlsTrust(pki.pem("ca")).apiKey(KEY).build()) {
      assertThat(code(() -> anonymous.infer(request()))).isEqualTo(Status.Code.UNAUTHENTICATED);
      assertThat(code(() -> wrongKey.infer(request()))).isEqualTo(Status.Code.UNAUTHENTICATED);
      assertThat(code(() -> wrongToken.infer(request()))).isEqualTo(Status.Code.UNAUTHENTICATED);
      assertThat(scorer.infer(request()).output("OUTPUT0").toFloatArray()).hasSize(16);
      assertThat(code(() -> scorer.modelMetadata("identity_fp32"))).isEqualTo(Status.Code.OK);
      assertThat(code(() -> scorer.repositoryIndex(false))).as("not admin").isEqualTo(Status.Code.PERMISSION_DENIED);
    }
  }

  @Test
  void rateLimited_carriesTheServersRetryDelay_andIsNotRetried() {
    try (QuiverClient scorer = QuiverClient.builder().target(secured.target()).tlsTrust(pki.pem("ca")).apiKey(LIMITED_KEY).build()) {
      QuiverException limited = null;
      for (int i = 0; i < 10 && limited == null; i++) {
        try {
          scorer.infer(request());
        } catch (QuiverException e) {
          limited = e;
        }
      }
      assertThat(limited).isNotNull();
      assertThat(limited.code()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(limited.retryDelay()).hasValueSatisfying(d -> assertThat(d).isPositive().isLessThanOrEqualTo(Duration.ofSeconds(100)));
      assertThat(limited.getMessage()).contains("retry after");
    }
  }

  @Test
  void modelsCli_reachesATlsControlPlane_throughTheClient() throws Exception {
    LiveQuiver withControl = LiveQuiver.start(LiveQuiver.options(repository)
        .withTls(TlsOptions.of(pki.pem("server"), pki.key("server"), null))
        .withControlPlane(io.quiver.control.grpc.ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1")
            ));
    try (withControl) {
      java.io.StringWriter out = new java.io.StringWriter();
      java.io.StringWriter err = new java.io.StringWriter();
      picocli.CommandLine cli = new picocli.CommandLine(new io.quiver.control.cli.ModelsCommand());
      cli.setOut(new java.io.PrintWriter(out, true));
      cli.setErr(new java.io.PrintWriter(err, true));
      assertThat(cli.execute("--control=" + withControl.controlTarget(), "--tls-ca=" + pki.pem("ca"), "list"))
          .as("stderr: %s", err).isZero();
      assertThat(out.toString()).containsPattern("identity_fp32\\s+1\\s+READY");
      assertThat(cli.execute("--control=" + withControl.controlTarget(), "list")).as("plaintext to a TLS port").isEqualTo(1);
      assertThat(err.toString()).contains("error: UNAVAILABLE");
    }
  }

  @Test
  void credentials_areNotSentOverPlaintext_unlessAllowed() throws Exception {
    LiveQuiver plain = LiveQuiver.start(LiveQuiver.options(repository).withSecurityConfig(pkiDir.resolve("security.json")));
    try (plain;
         QuiverClient refusing = QuiverClient.builder().target(plain.target()).apiKey(KEY).build();
         QuiverClient allowed = QuiverClient.builder().target(plain.target()).apiKey(KEY).credentialsOverPlaintext(true).build()) {
      assertThatThrownBy(() -> refusing.infer(request())).isInstanceOfSatisfying(QuiverException.class, e -> {
        assertThat(e.code()).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(e.description()).contains("refuses to send x-api-key over a connection without TLS");
      });
      assertThat(allowed.infer(request()).output("OUTPUT0").toFloatArray()).hasSize(16);
    }
  }
}
