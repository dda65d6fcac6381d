package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.ints;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.rpc.RetryInfo;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSSigner;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.MACSigner;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelStreamInferResponse;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerReadyRequest;
import io.quiver.server.security.SecurityPolicy;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** Authentication (API keys, JWT RS256/ES256), per-model authorization, rate limits and audit, over gRPC and REST. */
class SecurityTest {
  static final String ISSUER = "https://idp.test";
  static final String AUDIENCE = "quiver";
  @TempDir static Path repository;
  @TempDir static Path configDir;
  static QuiverServer server;
  static ManagedChannel channel;
  static HttpClient http;
  static RSAKey rsa;
  static ECKey ec;
  static ListAppender<ILoggingEvent> audit;

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeSimple(repository);
    rsa = new RSAKeyGenerator(2048).keyID("rsa-1").generate();
    ec = new ECKeyGenerator(Curve.P_256).keyID("ec-1").generate();
    Files.writeString(configDir.resolve("jwks.json"), new JWKSet(List.<JWK>of(rsa, ec)).toPublicJWKSet().toString());
    Files.writeString(configDir.resolve("security.json"), """
        {
          "api_keys": [
            {"name": "scorer", "sha256": "%s", "roles": ["scorer"]},
            {"name": "operator", "sha256": "%s", "roles": ["admin"]},
            {"name": "limited", "sha256": "%s", "roles": ["admin"]},
            {"name": "limited-rest", "sha256": "%s", "roles": ["admin"]}
          ],
          "jwt": {"jwks_file": "jwks.json", "issuer": "%s", "audience": "%s"},
          "roles": {
            "scorer": {"models": {"identity_fp32": ["infer", "metadata"]}},
            "reader": {"models": {"*": ["metadata"]}},
            "admin": {"models": {"*": ["infer", "metadata"]}, "admin": true}
          },
          "rate_limits": {
            "principals": {"limited": {"per_second": 0.01, "burst": 2}, "limited-rest": {"per_second": 0.01, "burst": 1}},
            "per_model": {"simple": {"per_second": 0.01, "burst": 3}}
          }
        }
        """.formatted(sha256("scorer-key"), sha256("admin-key"), sha256("limited-key"), sha256("limited-rest-key"),
        ISSUER, AUDIENCE));
    audit = new ListAppender<>();
    audit.start();
    ((Logger) LoggerFactory.getLogger("quiver.audit")).addAppender(audit);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 1, 2_000, 0, -1, 1024 * 1024, false)
        .withSecurityConfig(configDir.resolve("security.json"))
        .withControlPlane(io.quiver.control.grpc.ControlPlaneOptions.defaults().withPort(0)
            .withBindAddress("127.0.0.1"));
    server = new QuiverServer(options).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.close();
    ((Logger) LoggerFactory.getLogger("quiver.audit")).detachAppender(audit);
  }

  @Test
  void controlPlane_needsAnAdmin() throws Exception {
    ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
    try {
      var request = io.quiver.proto.control.v1.ListModelsRequest.getDefaultInstance();
      java.util.function.BiFunction<String, String, io.quiver.proto.control.v1.ModelControlGrpc.ModelControlBlockingStub>
          as = (header, value) -> {
            var stub = io.quiver.proto.control.v1.ModelControlGrpc.newBlockingStub(control)
                .withDeadlineAfter(10, TimeUnit.SECONDS);
            if (header == null) {
              return stub;
            }
            Metadata md = new Metadata();
            md.put(Metadata.Key.of(header, Metadata.ASCII_STRING_MARSHALLER), value);
            return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
          };
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> as.apply(null, null).listModels(request))
          .satisfies(e -> assertThat(io.grpc.Status.fromThrowable(e).getCode()).isEqualTo(io.grpc.Status.Code.UNAUTHENTICATED));
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> as.apply("x-api-key", "scorer-key").listModels(request))
          .satisfies(e -> assertThat(io.grpc.Status.fromThrowable(e).getCode()).isEqualTo(io.grpc.Status.Code.PERMISSION_DENIED));
      assertThat(as.apply("x-api-key", "admin-key").listModels(request).getModelsList())
          .extracting(m -> m.getName()).contains("identity_fp32", "simple");
    } finally {
      control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  static String sha256(String key) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
  }

  static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub(String header, String value) {
    var stub = GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    if (header == null) {
      return stub;
    }
    Metadata md = new Metadata();
    md.put(Metadata.Key.of(header, Metadata.ASCII_STRING_MARSHALLER), value);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub apiKey(String key) {
    return stub("x-api-key", key);
  }

  static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub bearer(String token) {
    return stub("authorization", "Bearer " + token);
  }

  static String token(JWSAlgorithm alg, JWK key, JWTClaimsSet claims) throws Exception {
    JWSSigner signer = key instanceof RSAKey r ? new RSASSASigner(r) : new ECDSASigner((ECKey) key);
    SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(alg).keyID(key.getKeyID()).type(JOSEObjectType.JWT).build(), claims);
    jwt.sign(signer);
    return jwt.serialize();
  }

  static JWTClaimsSet.Builder claims(String subject, String... roles) {
    return new JWTClaimsSet.Builder().subject(subject).issuer(ISSUER).audience(AUDIENCE)
        .expirationTime(new Date(System.currentTimeMillis() + 600_000)).claim("roles", List.of(roles));
  }

  static ModelInferRequest identity() {
    return ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(input("INPUT0", "FP32", 1, 16)).addRawInputContents(floats(new float[16])).build();
  }

  static ModelInferRequest simple() {
    int[] v = new int[16];
    return ModelInferRequest.newBuilder().setModelName("simple")
        .addInputs(input("INPUT0", "INT32", 1, 16)).addInputs(input("INPUT1", "INT32", 1, 16))
        .addRawInputContents(ints(v)).addRawInputContents(ints(v)).build();
  }

  static Status.Code code(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  @Test
  void healthStaysOpen_everythingElseNeedsACredential() {
    assertThat(stub(null, null).serverLive(ServerLiveRequest.getDefaultInstance()).getLive()).isTrue();
    assertThat(stub(null, null).serverReady(ServerReadyRequest.getDefaultInstance()).getReady()).isTrue();
    assertThat(HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance()).getStatus())
        .isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    assertThat(code(() -> stub(null, null).modelInfer(identity()))).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(code(() -> stub(null, null).modelMetadata(ModelMetadataRequest.newBuilder().setName("simple").build())))
        .isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(code(() -> apiKey("wrong-key").modelInfer(identity()))).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(code(() -> stub("authorization", "Basic dTpw").modelInfer(identity()))).isEqualTo(Status.Code.UNAUTHENTICATED);
  }

  @Test
  void apiKey_rolesGrantInferPerModel_andAdministrationSeparately() {
    assertThat(apiKey("scorer-key").modelInfer(identity()).getRawOutputContentsCount()).isEqualTo(1);
    assertThat(code(() -> apiKey("scorer-key").modelInfer(simple()))).isEqualTo(Status.Code.PERMISSION_DENIED);
    assertThat(code(() -> apiKey("scorer-key").modelMetadata(ModelMetadataRequest.newBuilder().setName("simple").build())))
        .isEqualTo(Status.Code.PERMISSION_DENIED);
    assertThat(code(() -> apiKey("scorer-key").repositoryIndex(RepositoryIndexRequest.getDefaultInstance())))
        .isEqualTo(Status.Code.PERMISSION_DENIED);
    assertThat(apiKey("admin-key").repositoryIndex(RepositoryIndexRequest.getDefaultInstance()).getModelsCount()).isEqualTo(2);
  }

  @Test
  void monitoringReport_needsMetadataOnTheModel() {
    var request = io.quiver.proto.monitoring.v1.GetModelMonitoringRequest.newBuilder();
    assertThat(code(() -> monitoring(null).getModelMonitoring(request.setName("identity_fp32").build())))
        .isEqualTo(Status.Code.UNAUTHENTICATED);
    // Authorized (metadata on identity_fp32): the answer is about monitoring itself (the model is not monitored).
    assertThat(code(() -> monitoring("scorer-key").getModelMonitoring(request.setName("identity_fp32").build())))
        .isEqualTo(Status.Code.FAILED_PRECONDITION);
    assertThat(code(() -> monitoring("scorer-key").getModelMonitoring(request.setName("simple").build())))
        .isEqualTo(Status.Code.PERMISSION_DENIED);
  }

  static io.quiver.proto.monitoring.v1.ModelMonitoringGrpc.ModelMonitoringBlockingStub monitoring(String apiKey) {
    var stub = io.quiver.proto.monitoring.v1.ModelMonitoringGrpc.newBlockingStub(channel)
        .withDeadlineAfter(30, java.util.concurrent.TimeUnit.SECONDS);
    if (apiKey == null) {
      return stub;
    }
    Metadata md = new Metadata();
    md.put(Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER), apiKey);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  @Test
  void streamInfer_deniedModelIsAnInBandError_andTheStreamGoesOn() throws Exception {
    Metadata md = new Metadata();
    md.put(GrpcSecurityInterceptor.API_KEY, "scorer-key");
    var async = GRPCInferenceServiceGrpc.newStub(channel).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
    CompletableFuture<List<ModelStreamInferResponse>> done = new CompletableFuture<>();
    List<ModelStreamInferResponse> responses = new java.util.concurrent.CopyOnWriteArrayList<>();
    StreamObserver<ModelInferRequest> requests = async.modelStreamInfer(new StreamObserver<>() {
      @Override
      public void onNext(ModelStreamInferResponse value) {
        responses.add(value);
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {
        done.complete(responses);
      }
    });
    requests.onNext(simple().toBuilder().setId("denied").build());
    requests.onNext(identity().toBuilder().setId("allowed").build());
    requests.onCompleted();
    List<ModelStreamInferResponse> out = done.get(10, TimeUnit.SECONDS);
    assertThat(out).hasSize(2);
    assertThat(out).filteredOn(r -> r.getInferResponse().getId().equals("denied"))
        .singleElement().satisfies(r -> assertThat(r.getErrorMessage()).contains("may not perform infer"));
    assertThat(out).filteredOn(r -> r.getInferResponse().getId().equals("allowed"))
        .singleElement().satisfies(r -> assertThat(r.getErrorMessage()).isEmpty());
  }

  @Test
  void jwt_rs256AndEs256_areVerified_claimsChecked() throws Exception {
    String reader = token(JWSAlgorithm.RS256, rsa, claims("alice", "reader").build());
    assertThat(bearer(reader).modelMetadata(ModelMetadataRequest.newBuilder().setName("simple").build()).getName())
        .isEqualTo("simple");
    assertThat(code(() -> bearer(reader).modelInfer(identity()))).isEqualTo(Status.Code.PERMISSION_DENIED);
    String scorer = token(JWSAlgorithm.ES256, ec, claims("bob", "scorer").build());
    assertThat(code(() -> bearer(scorer).modelInfer(identity()))).isEqualTo(Status.Code.OK);

    long now = System.currentTimeMillis();
    RSAKey stranger = new RSAKeyGenerator(2048).keyID("rsa-1").generate();
    List<String> refused = List.of(
        token(JWSAlgorithm.RS256, rsa, claims("c", "admin").expirationTime(new Date(now - 3_600_000)).build()),
        token(JWSAlgorithm.RS256, rsa, claims("c", "admin").notBeforeTime(new Date(now + 3_600_000)).build()),
        token(JWSAlgorithm.RS256, rsa, claims("c", "admin").audience("someone-else").build()),
        token(JWSAlgorithm.RS256, rsa, claims("c", "admin").issuer("https://evil.test").build()),
        token(JWSAlgorithm.RS256, rsa, new JWTClaimsSet.Builder().subject("c").issuer(ISSUER).audience(AUDIENCE).build()),
        token(JWSAlgorithm.RS256, stranger, claims("c", "admin").build()),
        hs256(claims("c", "admin").build()),
        "not-a-jwt");
    for (String t : refused) {
      assertThat(code(() -> bearer(t).modelInfer(identity()))).as(t).isEqualTo(Status.Code.UNAUTHENTICATED);
    }
  }

  static String hs256(JWTClaimsSet claims) throws Exception {
    SignedJWT jwt = new SignedJWT(new JWSHeader(JWSAlgorithm.HS256), claims);
    jwt.sign(new MACSigner(new byte[32]));
    return jwt.serialize();
  }

  @Test
  void rateLimit_perPrincipalAndPerModel_areResourceExhaustedWithRetryInfo() {
    assertThat(code(() -> apiKey("limited-key").modelInfer(identity()))).isEqualTo(Status.Code.OK);
    assertThat(code(() -> apiKey("limited-key").modelInfer(identity()))).isEqualTo(Status.Code.OK);
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> apiKey("limited-key").modelInfer(identity()));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    com.google.rpc.Status details = StatusProto.fromThrowable(e);
    assertThat(details.getDetailsList()).anySatisfy(any -> {
      assertThat(any.is(RetryInfo.class)).isTrue();
      assertThat(any.unpack(RetryInfo.class).getRetryDelay().getSeconds()).isGreaterThan(0);
    });
    // The model 'simple' has a bucket of 3 shared by every caller.
    int ok = 0;
    for (int i = 0; i < 5; i++) {
      if (code(() -> apiKey("admin-key").modelInfer(simple())) == Status.Code.OK) {
        ok++;
      }
    }
    assertThat(ok).isEqualTo(3);
  }

  @Test
  void rest_401_403_429_andOpenHealth() throws Exception {
    String base = "http://127.0.0.1:" + server.httpPort();
    assertThat(send(base + "/v2/health/ready", null, null, null).statusCode()).isEqualTo(200);
    HttpResponse<String> anonymous = send(base + "/v2/models/identity_fp32", null, null, null);
    assertThat(anonymous.statusCode()).isEqualTo(401);
    assertThat(anonymous.headers().firstValue("www-authenticate")).hasValue("Bearer");
    assertThat(anonymous.body()).contains("\"error\"");
    String body = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":"
        + java.util.Arrays.toString(new float[16]) + "}]}";
    assertThat(send(base + "/v2/models/identity_fp32/infer", body, "x-api-key", "scorer-key").statusCode()).isEqualTo(200);
    assertThat(send(base + "/v2/models/simple", null, "x-api-key", "scorer-key").statusCode()).isEqualTo(403);
    assertThat(send(base + "/v2/repository/index", "{}", "x-api-key", "scorer-key").statusCode()).isEqualTo(403);
    assertThat(send(base + "/v2/logging", null, "x-api-key", "scorer-key").statusCode()).isEqualTo(403);
    assertThat(send(base + "/v2/repository/index", "{}", "x-api-key", "admin-key").statusCode()).isEqualTo(200);
    String reader = token(JWSAlgorithm.ES256, ec, claims("carol", "reader").build());
    assertThat(send(base + "/v2/models/simple", null, "authorization", "Bearer " + reader).statusCode()).isEqualTo(200);
    assertThat(send(base + "/v2/models/simple/infer", body, "authorization", "Bearer " + reader).statusCode()).isEqualTo(403);

    assertThat(send(base + "/v2/models/identity_fp32/infer", body, "x-api-key", "limited-rest-key").statusCode()).isEqualTo(200);
    HttpResponse<String> limited = send(base + "/v2/models/identity_fp32/infer", body, "x-api-key", "limited-rest-key");
    assertThat(limited.statusCode()).isEqualTo(429);
    assertThat(limited.headers().firstValue("retry-after")).isPresent();
  }

  @Test
  void audit_logsFailuresAndDenials_withPrincipalAndPeer() {
    code(() -> apiKey("nobody's-key").modelInfer(identity()));
    code(() -> apiKey("scorer-key").modelInfer(simple()));
    assertThat(audit.list).anySatisfy(e -> {
      assertThat(e.getLoggerName()).isEqualTo("quiver.audit");
      assertThat(e.getFormattedMessage()).contains("authentication failed").contains("127.0.0.1");
      assertThat(e.getKeyValuePairs()).anySatisfy(kv -> assertThat(kv.key).isEqualTo("peer"));
    });
    assertThat(audit.list).anySatisfy(e -> {
      assertThat(e.getFormattedMessage()).contains("'scorer' denied infer on model 'simple'").contains("127.0.0.1");
      assertThat(e.getKeyValuePairs()).anySatisfy(kv -> {
        assertThat(kv.key).isEqualTo("principal");
        assertThat(kv.value).isEqualTo("scorer");
      });
    });
    assertThat(SecurityPolicy.AUDIT.getName()).isEqualTo("quiver.audit");
  }

  @Test
  void sharedMemoryRegions_belongToThePrincipalThatRegisteredThem() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(io.quiver.server.shm.SharedMemoryRegistry.supported(
        io.quiver.server.shm.SharedMemoryRegistry.DEFAULT_ROOT));
    Path object = io.quiver.server.shm.SharedMemoryRegistry.DEFAULT_ROOT.resolve(
        "quiver-security-test-" + ProcessHandle.current().pid());
    Files.write(object, new byte[64]);
    try {
      var register = io.quiver.proto.inference.SystemSharedMemoryRegisterRequest.newBuilder().setName("scorers")
          .setKey("/" + object.getFileName()).setByteSize(64).build();
      assertThat(code(() -> stub(null, null).systemSharedMemoryRegister(register)))
          .isEqualTo(Status.Code.UNAUTHENTICATED);
      apiKey("scorer-key").systemSharedMemoryRegister(register);
      var all = io.quiver.proto.inference.SystemSharedMemoryStatusRequest.getDefaultInstance();
      assertThat(apiKey("scorer-key").systemSharedMemoryStatus(all).getRegionsMap()).containsKey("scorers");
      // Another principal neither sees nor uses nor removes it.
      assertThat(apiKey("admin-key").systemSharedMemoryStatus(all).getRegionsMap()).doesNotContainKey("scorers");
      ModelInferRequest viaRegion = ModelInferRequest.newBuilder().setModelName("identity_fp32")
          .addInputs(input("INPUT0", "FP32", 1, 16).toBuilder()
              .putParameters("shared_memory_region", io.quiver.proto.inference.InferParameter.newBuilder()
                  .setStringParam("scorers").build())
              .putParameters("shared_memory_byte_size", io.quiver.proto.inference.InferParameter.newBuilder()
                  .setInt64Param(64).build()))
          .build();
      assertThat(code(() -> apiKey("admin-key").modelInfer(viaRegion))).isEqualTo(Status.Code.NOT_FOUND);
      apiKey("admin-key").systemSharedMemoryUnregister(
          io.quiver.proto.inference.SystemSharedMemoryUnregisterRequest.newBuilder().setName("scorers").build());
      assertThat(apiKey("scorer-key").systemSharedMemoryStatus(all).getRegionsMap()).containsKey("scorers");
      // REST: the same rule.
      String base = "http://127.0.0.1:" + server.httpPort();
      assertThat(send(base + "/v2/systemsharedmemory/region/scorers/status", null, "x-api-key", "admin-key")
          .statusCode()).isEqualTo(404);
      assertThat(send(base + "/v2/systemsharedmemory/region/scorers/status", null, "x-api-key", "scorer-key")
          .statusCode()).isEqualTo(200);
      // Its owner uses it, and removes it.
      assertThat(apiKey("scorer-key").modelInfer(viaRegion).getOutputsCount()).isEqualTo(1);
      apiKey("scorer-key").systemSharedMemoryUnregister(
          io.quiver.proto.inference.SystemSharedMemoryUnregisterRequest.getDefaultInstance());
      assertThat(apiKey("scorer-key").systemSharedMemoryStatus(all).getRegionsMap()).isEmpty();
    } finally {
      Files.deleteIfExists(object);
    }
  }

  static HttpResponse<String> send(String url, String body, String header, String value) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url));
    if (header != null) {
      request.header(header, value);
    }
    request.method(body == null ? "GET" : "POST",
        body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }
}
