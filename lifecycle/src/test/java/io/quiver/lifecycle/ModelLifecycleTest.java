package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.registry.LocalModelRepository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The lifecycle's desired state: written first, or kept in memory when the repository is read-only. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ModelLifecycleTest {
  @TempDir Path root;
  @TempDir Path cache;
  private final JavaIdentityRuntime runtime = new JavaIdentityRuntime();

  private ModelLifecycle lifecycle(LifecycleOptions options) {
    ModelManager manager = new ModelManager(new LocalModelRepository(root), List.of(runtime),
        new WorkerThreadSchedulerFactory(), ModelManagerOptions.defaults());
    return new ModelLifecycle(manager, options);
  }

  private void model(String name) throws Exception {
    JavaIdentityRuntime.write(root.resolve(name).resolve("1"), "identity FP32 4");
  }

  @Test
  void unload_isWrittenFirst_andARestartKeepsTheModelOut() throws Exception {
    model("a");
    model("b");
    try (ModelLifecycle lifecycle = lifecycle(new LifecycleOptions(0, cache))) {
      lifecycle.start();
      lifecycle.unload("b");
      assertThat(Files.readString(root.resolve(".quiver-desired-state.json"))).contains("\"b\"");
      assertThat(lifecycle.manager().isLoaded("b")).isFalse();
    }
    try (ModelLifecycle lifecycle = lifecycle(new LifecycleOptions(0, cache))) {
      lifecycle.start();
      assertThat(lifecycle.manager().isReady("a", "")).isTrue();
      assertThat(lifecycle.manager().isLoaded("b")).as("an operator's unload survives a restart").isFalse();
      lifecycle.load("b");
      assertThat(lifecycle.manager().isReady("b", "")).isTrue();
    }
  }

  @Test
  void inMemoryDesiredState_writesNothingIntoTheRepository() throws Exception {
    model("a");
    try (ModelLifecycle lifecycle = lifecycle(new LifecycleOptions(0, cache, false))) {
      lifecycle.start();
      lifecycle.unload("a");
      lifecycle.load("a");
      assertThat(lifecycle.desiredState().isPersistent()).isFalse();
      assertThat(lifecycle.desiredState().current().getModelsOrThrow("a").getLoaded()).isTrue();
    }
    assertThat(root.resolve(".quiver-desired-state.json")).doesNotExist();
  }

  /** A local repository that refuses to write its manifest, as a read-only mount does (root ignores permissions). */
  private static final class ReadOnlyManifest implements io.quiver.registry.WritableModelRepository {
    private final LocalModelRepository local;

    ReadOnlyManifest(Path root) {
      this.local = new LocalModelRepository(root);
    }

    @Override public String location() { return local.location(); }
    @Override public List<String> modelNames() { return local.modelNames(); }
    @Override public io.quiver.core.spi.RepositoryModel model(String name) { return local.model(name); }
    @Override public void putVersion(String model, long version, Path staged, String config) { local.putVersion(model, version, staged, config); }
    @Override public void removeVersion(String model, long version) { local.removeVersion(model, version); }
    @Override public String readConfigText(String model) { return local.readConfigText(model); }
    @Override public void writeConfigText(String model, String text) { local.writeConfigText(model, text); }
    @Override public StoredObject readDesiredState(String knownTag) { return local.readDesiredState(knownTag); }
    @Override public StoredObject readState(String name) { return local.readState(name); }
    @Override public void writeState(String name, byte[] contents) { local.writeState(name, contents); }
    @Override public List<String> listState(String prefix) { return local.listState(prefix); }
    @Override public StoredObject readVersionAttachment(String model, long version, String name, String knownTag) {
      return local.readVersionAttachment(model, version, name, knownTag);
    }
    @Override public void writeVersionAttachment(String model, long version, String name, byte[] contents) {
      local.writeVersionAttachment(model, version, name, contents);
    }

    @Override
    public void writeDesiredState(byte[] contents) {
      java.nio.file.FileSystemException cause = new java.nio.file.FileSystemException(
          location() + "/.quiver-desired-state.json", null, "Read-only file system");
      throw io.quiver.core.InferenceException.internal("cannot write the manifest: " + cause, cause);
    }
  }

  @Test
  void aRepositoryThatRefusesTheWrite_keepsTheDesiredStateInMemory_andTheOperationSucceeds() throws Exception {
    model("a");
    ModelManager manager = new ModelManager(new ReadOnlyManifest(root), List.of(runtime),
        new WorkerThreadSchedulerFactory(), ModelManagerOptions.defaults());
    try (ModelLifecycle lifecycle = new ModelLifecycle(manager, new LifecycleOptions(0, cache))) {
      lifecycle.start();
      assertThat(lifecycle.desiredState().isPersistent()).isTrue();
      lifecycle.unload("a");
      assertThat(lifecycle.manager().isLoaded("a")).isFalse();
      assertThat(lifecycle.desiredState().isPersistent()).as("switched to memory").isFalse();
      assertThat(lifecycle.desiredState().current().getModelsOrThrow("a").getLoaded()).isFalse();
      lifecycle.load("a");
      assertThat(lifecycle.manager().isReady("a", "")).isTrue();
    }
    assertThat(root.resolve(".quiver-desired-state.json")).doesNotExist();
  }

  @Test
  void theStartSweepsUploadsOfProcessesThatAreGone() throws Exception {
    Path staging = cache.resolve(LifecycleOptions.STAGING_FOLDER);
    Path dead = Files.createDirectories(staging.resolve("999999999-0000"));
    Files.writeString(dead.resolve("model.onnx"), "half an upload");
    Path foreign = Files.createDirectories(staging.resolve("not-ours"));
    Path alive = Files.createDirectories(staging.resolve(ProcessHandle.current().parent().map(ProcessHandle::pid)
        .orElse(1L) + "-1111"));
    try (ModelLifecycle lifecycle = lifecycle(new LifecycleOptions(0, null).withModelCacheDir(cache))) {
      lifecycle.start();
      assertThat(dead).doesNotExist();
      assertThat(foreign).as("entries that do not look like ours are left alone").exists();
      assertThat(alive).as("a live process's upload is left alone").exists();
      Path mine = lifecycle.uploads().newDirectory();
      assertThat(lifecycle.uploads().sweep()).as("an upload under way in this process is never swept").isZero();
      assertThat(mine).exists();
      lifecycle.uploads().release(mine);
      assertThat(mine).doesNotExist();
    }
  }
}
