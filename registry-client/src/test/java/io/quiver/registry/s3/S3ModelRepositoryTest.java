package io.quiver.registry.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.registry.WritableModelRepository.StoredObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The S3 repository against a real S3 API (S3Proxy in-process on loopback). */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class S3ModelRepositoryTest {
  private static S3ProxyFixture s3;
  @TempDir Path cache;

  private static final String CONFIG = "name: \"adder\"\nmax_batch_size: 4\n"
      + "input [{ name: \"X\" data_type: TYPE_FP32 dims: [2] }]\noutput [{ name: \"Y\" data_type: TYPE_FP32 dims: [2] }]\n";

  @BeforeAll
  static void startS3() {
    s3 = S3ProxyFixture.start();
    s3.createBucket("models");
    s3.put("models", "repo/adder/config.pbtxt", CONFIG.getBytes(StandardCharsets.UTF_8));
    s3.put("models", "repo/adder/1/model.onnx", bytes(1000, 1));
    s3.put("models", "repo/adder/2/model.onnx", bytes(70_000, 2));
    s3.put("models", "repo/adder/2/assets/vocab.txt", "a\nb\n".getBytes(StandardCharsets.UTF_8));
    s3.put("models", "repo/adder/notaversion/x", bytes(3, 3));
    s3.put("models", "repo/noconfig/7/model.onnx", bytes(10, 4));
    s3.put("models", "repo/.hidden/1/model.onnx", bytes(10, 5));
    s3.put("models", "repo/README", bytes(10, 6));
  }

  @AfterAll
  static void stopS3() {
    s3.close();
  }

  private static byte[] bytes(int n, int seed) {
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (i * 31 + seed);
    }
    return b;
  }

  private S3ModelRepository repo(String url) {
    return S3ModelRepository.create(s3.options(url, cache));
  }

  @Test
  void modelNames_listsModelPrefixes_skippingHiddenAndPlainObjects() {
    try (S3ModelRepository repo = repo("s3://models/repo")) {
      assertThat(repo.modelNames()).containsExactly("adder", "noconfig");
      assertThat(repo.location()).isEqualTo("s3://models/repo/");
    }
  }

  @Test
  void model_readsConfigAndNumericVersions() {
    try (S3ModelRepository repo = repo("s3://models/repo/")) {
      RepositoryModel adder = repo.model("adder");
      assertThat(adder.hasConfigFile()).isTrue();
      assertThat(adder.declaredConfig().getMaxBatchSize()).isEqualTo(4);
      assertThat(adder.versions()).containsExactly(1L, 2L);
      RepositoryModel noconfig = repo.model("noconfig");
      assertThat(noconfig.hasConfigFile()).isFalse();
      assertThat(noconfig.declaredConfig().getName()).isEqualTo("noconfig");
      assertThat(noconfig.versions()).containsExactly(7L);
    }
  }

  @Test
  void model_readsTheConfigEveryCall_andParsesItOnlyWhenItsTextChanged() {
    s3.put("models", "edits/m/config.pbtxt", "name: \"m\"\nmax_batch_size: 4\n".getBytes(StandardCharsets.UTF_8));
    s3.put("models", "edits/m/1/model.onnx", bytes(10, 7));
    try (S3ModelRepository repo = repo("s3://models/edits")) {
      RepositoryModel first = repo.model("m");
      assertThat(repo.model("m").declaredConfig()).as("same text: the config parsed before")
          .isSameAs(first.declaredConfig());
      s3.put("models", "edits/m/config.pbtxt", "name: \"m\"\nmax_batch_size: 8\n".getBytes(StandardCharsets.UTF_8));
      assertThat(repo.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(8);
    }
  }

  @Test
  void versionDirectory_downloadsVerifiedFilesIntoTheCache_andReusesACurrentCopy() throws Exception {
    try (S3ModelRepository repo = repo("s3://models/repo")) {
      Path dir = repo.model("adder").versionDirectory(2);
      assertThat(dir).isEqualTo(cache.toAbsolutePath().normalize().resolve("adder/2"));
      assertThat(Files.readAllBytes(dir.resolve("model.onnx"))).isEqualTo(bytes(70_000, 2));
      assertThat(Files.readString(dir.resolve("assets/vocab.txt"))).isEqualTo("a\nb\n");
      long stamp = Files.getLastModifiedTime(dir.resolve(S3ModelRepository.CACHE_RECORD)).toMillis();
      Path marker = dir.resolve("marker-left-by-test");
      Files.writeString(marker, "x");

      Path again = repo.model("adder").versionDirectory(2);
      assertThat(again).isEqualTo(dir);
      assertThat(marker).exists(); // reused, not fetched again
      assertThat(Files.getLastModifiedTime(dir.resolve(S3ModelRepository.CACHE_RECORD)).toMillis()).isEqualTo(stamp);
      try (var leftovers = Files.list(cache.resolve("adder"))) {
        assertThat(leftovers.map(p -> p.getFileName().toString()).toList()).containsExactly("2");
      }
    }
  }

  @Test
  void versionDirectory_changedObject_isFetchedAgain() throws Exception {
    s3.put("models", "changing/m/1/model.onnx", bytes(100, 1));
    try (S3ModelRepository repo = repo("s3://models/changing")) {
      Path dir = repo.model("m").versionDirectory(1);
      assertThat(Files.readAllBytes(dir.resolve("model.onnx"))).isEqualTo(bytes(100, 1));
      s3.put("models", "changing/m/1/model.onnx", bytes(120, 9));
      Path again = repo.model("m").versionDirectory(1);
      assertThat(Files.readAllBytes(again.resolve("model.onnx"))).isEqualTo(bytes(120, 9));
    }
  }

  @Test
  void model_unknown_isNotFound() {
    try (S3ModelRepository repo = repo("s3://models/repo")) {
      assertThatThrownBy(() -> repo.model("nope")).isInstanceOfSatisfying(InferenceException.class,
          e -> assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND));
      assertThatThrownBy(() -> repo.model("../adder")).isInstanceOfSatisfying(InferenceException.class,
          e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    }
  }

  @Test
  void missingBucket_isNotFound_namingTheBucket() {
    try (S3ModelRepository repo = repo("s3://no-such-bucket/repo")) {
      assertThatThrownBy(repo::modelNames).isInstanceOfSatisfying(InferenceException.class, e -> {
        assertThat(e.code()).isEqualTo(ErrorCode.NOT_FOUND);
        assertThat(e.getMessage()).contains("bucket 'no-such-bucket' does not exist");
      });
    }
  }

  @Test
  void wrongCredentials_isFailedPrecondition_namingTheBucket() {
    S3RepositoryOptions bad = s3.options("s3://models/repo", cache).withCredentials(S3ProxyFixture.ACCESS_KEY, "wrong");
    try (S3ModelRepository repo = S3ModelRepository.create(bad)) {
      assertThatThrownBy(repo::modelNames).isInstanceOfSatisfying(InferenceException.class, e -> {
        assertThat(e.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION);
        assertThat(e.getMessage()).contains("access to bucket 'models'").contains("denied");
      });
    }
  }

  @Test
  void unreachableEndpoint_isUnavailable_afterRetries() throws Exception {
    int freePort;
    try (java.net.ServerSocket socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      freePort = socket.getLocalPort();
    }
    S3RepositoryOptions options = s3.options("s3://models/repo", cache)
        .withEndpoint(java.net.URI.create("http://127.0.0.1:" + freePort));
    try (S3ModelRepository repo = S3ModelRepository.create(options)) {
      assertThatThrownBy(repo::modelNames).isInstanceOfSatisfying(InferenceException.class, e -> {
        assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);
        assertThat(e.getMessage()).contains("unreachable").contains("127.0.0.1:" + freePort);
      });
    }
  }

  @Test
  void putVersion_uploadsFiles_andRefusesAnExistingVersion(@TempDir Path staged) throws Exception {
    Files.write(staged.resolve("model.onnx"), bytes(500, 7));
    Files.createDirectories(staged.resolve("sub"));
    Files.writeString(staged.resolve("sub/extra.txt"), "hello");
    try (S3ModelRepository repo = repo("s3://models/uploads")) {
      repo.putVersion("fresh", 3, staged, CONFIG.replace("adder", "fresh"));
      RepositoryModel fresh = repo.model("fresh");
      assertThat(fresh.versions()).containsExactly(3L);
      assertThat(fresh.hasConfigFile()).isTrue();
      assertThat(Files.readString(fresh.versionDirectory(3).resolve("sub/extra.txt"))).isEqualTo("hello");
      assertThatThrownBy(() -> repo.putVersion("fresh", 3, staged, null)).isInstanceOfSatisfying(
          InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.ALREADY_EXISTS));
    }
  }

  @Test
  void removeVersion_andConfigText_takeAnUploadBack(@TempDir Path staged) throws Exception {
    Files.write(staged.resolve("model.onnx"), bytes(200, 8));
    try (S3ModelRepository repo = repo("s3://models/takeback")) {
      repo.putVersion("m", 1, staged, CONFIG.replace("adder", "m"));
      repo.putVersion("m", 2, staged, null);
      repo.model("m").versionDirectory(2); // cached
      assertThat(repo.readConfigText("m")).isEqualTo(CONFIG.replace("adder", "m"));

      repo.removeVersion("m", 2);
      assertThat(repo.model("m").versions()).containsExactly(1L);
      assertThat(cache.resolve("m/2")).doesNotExist();
      repo.removeVersion("m", 2); // already gone: no error

      repo.writeConfigText("m", "name: \"m\"\nmax_batch_size: 2\n");
      assertThat(repo.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(2);
      repo.writeConfigText("m", null);
      assertThat(repo.readConfigText("m")).isNull();
      assertThat(repo.model("m").hasConfigFile()).isFalse();
    }
  }

  @Test
  void desiredState_readIsConditionalOnTheEtag() {
    try (S3ModelRepository repo = repo("s3://models/state")) {
      StoredObject absent = repo.readDesiredState(null);
      assertThat(absent.bytes()).isNull();
      assertThat(repo.readDesiredState(absent.tag())).isNull();

      repo.writeDesiredState("{\"a\":1}".getBytes(StandardCharsets.UTF_8));
      StoredObject first = repo.readDesiredState(absent.tag());
      assertThat(new String(first.bytes(), StandardCharsets.UTF_8)).isEqualTo("{\"a\":1}");
      assertThat(repo.readDesiredState(first.tag())).isNull();

      repo.writeDesiredState("{\"a\":2}".getBytes(StandardCharsets.UTF_8));
      StoredObject second = repo.readDesiredState(first.tag());
      assertThat(new String(second.bytes(), StandardCharsets.UTF_8)).isEqualTo("{\"a\":2}");
      assertThat(repo.modelNames()).isEmpty(); // the manifest is never taken for a model
    }
  }

  @Test
  void stateObjects_areWrittenReadAndListedBesideTheModels_andNeverTakenForModels() {
    try (S3ModelRepository repo = repo("s3://models/state")) {
      assertThat(repo.readState(".quiver-jobs/a.json").bytes()).isNull();
      assertThat(repo.listState(".quiver-jobs/")).isEmpty();
      repo.writeState(".quiver-jobs/b.json", "{\"b\":1}".getBytes(StandardCharsets.UTF_8));
      repo.writeState(".quiver-jobs/a.json", "{}".getBytes(StandardCharsets.UTF_8));
      repo.writeState(".quiver-jobs/a.json", "{\"a\":2}".getBytes(StandardCharsets.UTF_8));
      assertThat(new String(repo.readState(".quiver-jobs/a.json").bytes(), StandardCharsets.UTF_8)).isEqualTo("{\"a\":2}");
      assertThat(repo.listState(".quiver-jobs/")).containsExactly(".quiver-jobs/a.json", ".quiver-jobs/b.json");
      assertThat(repo.modelNames()).isEmpty();
      for (String bad : List.of("jobs/a.json", ".quiver-jobs/../x", ".quiver-jobs//x", "")) {
        assertThatThrownBy(() -> repo.writeState(bad, new byte[1])).as(bad).isInstanceOfSatisfying(InferenceException.class,
            e -> assertThat(e.code()).isEqualTo(io.quiver.core.ErrorCode.INVALID_ARGUMENT));
      }
    }
  }

  @Test
  void location_parsing() {
    assertThat(S3Location.parse("s3://b")).isEqualTo(new S3Location("b", ""));
    assertThat(S3Location.parse("s3://b/p/q")).isEqualTo(new S3Location("b", "p/q/"));
    assertThatThrownBy(() -> S3Location.parse("http://b/p")).isInstanceOf(InferenceException.class);
    assertThatThrownBy(() -> S3Location.parse("s3://b/../x")).isInstanceOf(InferenceException.class);
    assertThat(S3ModelRepository.isSafeRelativePath("a/b.onnx")).isTrue();
    for (String bad : List.of("../x", "a/../../x", "/abs", "a//b", "")) {
      assertThat(S3ModelRepository.isSafeRelativePath(bad)).as(bad).isFalse();
    }
  }

  @Test
  void versionAttachment_isStoredBesideTheVersion_readConditionally_andNeverTakenForAVersion(@TempDir Path staged)
      throws Exception {
    Files.write(staged.resolve("model.onnx"), bytes(100, 3));
    try (S3ModelRepository repo = repo("s3://models/attach")) {
      repo.putVersion("m", 1, staged, CONFIG.replace("adder", "m"));
      StoredObject absent = repo.readVersionAttachment("m", 1, "profile.pb", null);
      assertThat(absent.bytes()).isNull();
      assertThat(repo.readVersionAttachment("m", 1, "profile.pb", absent.tag())).isNull();

      repo.writeVersionAttachment("m", 1, "profile.pb", new byte[] {1, 2, 3});
      StoredObject first = repo.readVersionAttachment("m", 1, "profile.pb", absent.tag());
      assertThat(first.bytes()).containsExactly(1, 2, 3);
      assertThat(repo.readVersionAttachment("m", 1, "profile.pb", first.tag())).isNull();
      repo.writeVersionAttachment("m", 1, "profile.pb", new byte[] {4});
      assertThat(repo.readVersionAttachment("m", 1, "profile.pb", first.tag()).bytes()).containsExactly(4);
      assertThat(repo.readVersionAttachment("m", 2, "profile.pb", null).bytes()).isNull();

      assertThat(repo.model("m").versions()).containsExactly(1L);
      assertThat(repo.modelNames()).containsExactly("m");
      try (var files = Files.list(repo.model("m").versionDirectory(1))) {
        assertThat(files.map(f -> f.getFileName().toString()).filter(n -> !n.startsWith(".quiver-"))).containsExactly("model.onnx");
      }
      assertThatThrownBy(() -> repo.writeVersionAttachment("m", 1, "../x", new byte[0])).isInstanceOfSatisfying(
          InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    }
  }
}
