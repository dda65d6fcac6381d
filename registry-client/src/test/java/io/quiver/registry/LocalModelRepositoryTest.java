package io.quiver.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.spi.RepositoryModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LocalModelRepositoryTest {
  @TempDir Path root;

  private void version(String model, String version) throws Exception {
    Files.writeString(Files.createDirectories(root.resolve(model).resolve(version)).resolve("model.onnx"), "x");
  }

  @Test
  void modelNames_listsModelDirectoriesSortedSkippingHiddenAndFiles() throws Exception {
    version("zeta", "1");
    version("alpha", "1");
    Files.createDirectories(root.resolve(".git"));
    Files.createDirectories(root.resolve("..hidden"));
    Files.writeString(root.resolve("README.md"), "not a model");

    assertThat(new LocalModelRepository(root).modelNames()).containsExactly("alpha", "zeta");
  }

  @Test
  void model_readsConfigAndNumericVersionsOnly() throws Exception {
    version("m", "1");
    version("m", "10");
    version("m", "2");
    Files.createDirectories(root.resolve("m/.3"));
    Files.createDirectories(root.resolve("m/latest"));
    Files.createDirectories(root.resolve("m/04"));
    Files.writeString(root.resolve("m/5"), "a file, not a version directory");
    Files.writeString(root.resolve("m/config.pbtxt"), "name: \"m\"\nmax_batch_size: 4\n");

    RepositoryModel model = new LocalModelRepository(root).model("m");

    assertThat(model.name()).isEqualTo("m");
    assertThat(model.hasConfigFile()).isTrue();
    assertThat(model.declaredConfig().getMaxBatchSize()).isEqualTo(4);
    assertThat(model.versions()).containsExactly(1L, 2L, 10L);
    assertThat(model.versionDirectory(10)).isEqualTo(root.toAbsolutePath().normalize().resolve("m/10"));
  }

  @Test
  void model_readsTheConfigEveryCall_andParsesItOnlyWhenItsTextChanged() throws Exception {
    version("m", "1");
    Path config = root.resolve("m/config.pbtxt");
    Files.writeString(config, "name: \"m\"\nmax_batch_size: 4\n");
    LocalModelRepository repository = new LocalModelRepository(root);

    RepositoryModel first = repository.model("m");
    assertThat(repository.model("m").declaredConfig()).as("same text: the config parsed before")
        .isSameAs(first.declaredConfig());

    Files.writeString(config, "name: \"m\"\nmax_batch_size: 8\n"); // same size, same second: only the text differs
    assertThat(repository.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(8);

    Files.writeString(config, "name: \"m\"\nmax_batch_size: [\n");
    assertThatThrownBy(() -> repository.model("m")).hasMessageContaining("config.pbtxt:2:");
    Files.writeString(config, "name: \"m\"\nmax_batch_size: 8\n"); // back to the text last parsed well
    assertThat(repository.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(8);

    Files.delete(config);
    assertThat(repository.model("m").declaredConfig().getMaxBatchSize()).as("no config: only the name").isZero();
    Files.writeString(config, "name: \"m\"\nmax_batch_size: 2\n");
    assertThat(repository.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(2);
  }

  @Test
  void model_withoutConfigFile_declaresOnlyTheName() throws Exception {
    version("bare", "1");
    RepositoryModel model = new LocalModelRepository(root).model("bare");
    assertThat(model.hasConfigFile()).isFalse();
    assertThat(model.declaredConfig().getName()).isEqualTo("bare");
    assertThat(model.declaredConfig().getInputCount()).isZero();
  }

  @Test
  void model_missing_isNotFound() {
    assertThatThrownBy(() -> new LocalModelRepository(root).model("nope"))
        .hasFieldOrPropertyWithValue("code", ErrorCode.NOT_FOUND)
        .hasMessageContaining("'nope'");
  }

  @Test
  void versionDirectory_ofAbsentVersion_isNotFound() throws Exception {
    version("m", "1");
    RepositoryModel model = new LocalModelRepository(root).model("m");
    assertThatThrownBy(() -> model.versionDirectory(2))
        .hasFieldOrPropertyWithValue("code", ErrorCode.NOT_FOUND)
        .hasMessageContaining("no version 2");
  }

  @Test
  void model_withUnknownConfigField_isInvalidArgumentNamingIt() throws Exception {
    version("seq", "1");
    Files.writeString(root.resolve("seq/config.pbtxt"), "name: \"seq\"\nmodel_transaction_policy { decoupled: true }\n");
    assertThatThrownBy(() -> new LocalModelRepository(root).model("seq"))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("model_transaction_policy")
        .hasMessageContaining("config.pbtxt:2:");
  }

  @ParameterizedTest
  @ValueSource(strings = {"../etc", "..", "a/b", "a\\b", ".hidden", "x/../../y", "nul\u0000", "tab\tname", ""})
  void model_pathTraversalOrControlCharName_isInvalidArgument(String name) throws Exception {
    Files.createDirectories(root.resolve("inside"));
    assertThatThrownBy(() -> new LocalModelRepository(root.resolve("inside")).model(name))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("model name");
  }

  @Test
  void constructor_missingRoot_isNotFound() {
    assertThatThrownBy(() -> new LocalModelRepository(root.resolve("absent")))
        .hasFieldOrPropertyWithValue("code", ErrorCode.NOT_FOUND);
  }

  @Test
  void parseVersion_acceptsOnlyCanonicalNumbers() {
    assertThat(LocalModelRepository.parseVersion("0")).isZero();
    assertThat(LocalModelRepository.parseVersion("42")).isEqualTo(42);
    assertThat(LocalModelRepository.parseVersion("042")).isEqualTo(-1);
    assertThat(LocalModelRepository.parseVersion("-1")).isEqualTo(-1);
    assertThat(LocalModelRepository.parseVersion("1e3")).isEqualTo(-1);
    assertThat(LocalModelRepository.parseVersion("1234567890123456789")).isEqualTo(-1);
  }

  @Test
  void stateObjects_areReplacedAtomicallyAndListed_andNeverTakenForModels() throws Exception {
    LocalModelRepository repo = new LocalModelRepository(root);
    assertThat(repo.readState(".quiver-jobs/a.json").bytes()).isNull();
    assertThat(repo.listState(".quiver-jobs/")).isEmpty();
    repo.writeState(".quiver-jobs/b.json", new byte[] {1});
    repo.writeState(".quiver-jobs/a.json", new byte[] {2});
    repo.writeState(".quiver-jobs/a.json", new byte[] {3, 4});
    assertThat(repo.readState(".quiver-jobs/a.json").bytes()).containsExactly(3, 4);
    assertThat(repo.listState(".quiver-jobs/")).containsExactly(".quiver-jobs/a.json", ".quiver-jobs/b.json");
    assertThat(repo.modelNames()).isEmpty();
    assertThat(Files.list(root.resolve(".quiver-jobs"))).hasSize(2); // no temporary files left
    for (String bad : java.util.List.of("a.json", ".quiver-jobs/../../x", "/abs", ".quiver-jobs/")) {
      assertThatThrownBy(() -> repo.writeState(bad, new byte[1])).as(bad)
          .isInstanceOfSatisfying(io.quiver.core.InferenceException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    }
  }

  @Test
  void versionAttachment_isStoredBesideTheVersion_readConditionally_andNeverTakenForAVersion() throws Exception {
    version("m", "1");
    LocalModelRepository repo = new LocalModelRepository(root);
    WritableModelRepository.StoredObject absent = repo.readVersionAttachment("m", 1, "profile.pb", null);
    assertThat(absent.bytes()).isNull();
    assertThat(repo.readVersionAttachment("m", 1, "profile.pb", absent.tag())).isNull();

    repo.writeVersionAttachment("m", 1, "profile.pb", new byte[] {1, 2, 3});
    assertThat(root.resolve("m/.quiver/1/profile.pb")).exists();
    WritableModelRepository.StoredObject first = repo.readVersionAttachment("m", 1, "profile.pb", absent.tag());
    assertThat(first.bytes()).containsExactly(1, 2, 3);
    assertThat(repo.readVersionAttachment("m", 1, "profile.pb", first.tag())).isNull();
    repo.writeVersionAttachment("m", 1, "profile.pb", new byte[] {4, 5, 6, 7});
    assertThat(repo.readVersionAttachment("m", 1, "profile.pb", first.tag()).bytes()).containsExactly(4, 5, 6, 7);

    assertThat(repo.model("m").versions()).containsExactly(1L);
    assertThat(repo.modelNames()).containsExactly("m");
    for (String bad : new String[] {"../x", ".hidden", "a/b", ""}) {
      assertThatThrownBy(() -> repo.writeVersionAttachment("m", 1, bad, new byte[0]))
          .isInstanceOfSatisfying(io.quiver.core.InferenceException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT));
    }
    assertThatThrownBy(() -> repo.readVersionAttachment("../m", 1, "p", null))
        .isInstanceOf(io.quiver.core.InferenceException.class);
  }

  @Test
  void removeVersion_andConfigText_takeAnUploadBack() throws Exception {
    version("m", "1");
    version("m", "2");
    LocalModelRepository repo = new LocalModelRepository(root);
    assertThat(repo.readConfigText("m")).isNull();
    repo.writeConfigText("m", "name: \"m\"\nmax_batch_size: 4\n");
    assertThat(repo.model("m").declaredConfig().getMaxBatchSize()).isEqualTo(4);

    repo.removeVersion("m", 2);
    assertThat(repo.model("m").versions()).containsExactly(1L);
    repo.removeVersion("m", 2);
    try (var left = Files.list(root.resolve("m"))) {
      assertThat(left.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("1", "config.pbtxt");
    }
    repo.writeConfigText("m", null);
    assertThat(repo.model("m").hasConfigFile()).isFalse();
  }
}
