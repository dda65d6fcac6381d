package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.core.InferenceException;
import io.quiver.examples.ExampleModels;
import io.quiver.registry.LocalModelRepository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Warm-up before a version takes traffic, with the real ONNX Runtime. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WarmupTest {
  @TempDir Path repo;
  private ModelManager manager;

  @AfterEach
  void close() {
    if (manager != null) {
      manager.close();
    }
  }

  private void simpleWithWarmup(String warmup) throws Exception {
    ExampleModels.writeSimple(repo);
    Path config = repo.resolve("simple/config.pbtxt");
    Files.writeString(config, Files.readString(config) + "\n" + warmup);
  }

  private ModelManager start() {
    manager = new ModelManager(new LocalModelRepository(repo), ModelManager.discoverRuntimes(), new DynamicBatcherFactory(),
        ModelManagerOptions.explicit());
    manager.start();
    return manager;
  }

  @Test
  void configuredWarmup_runsBeforeTheVersionServes_andIsNotCountedInStatistics() throws Exception {
    simpleWithWarmup("model_warmup [{ name: \"zeros\" batch_size: 2 count: 3 inputs { key: \"INPUT0\" value: { data_type: TYPE_INT32 "
        + "dims: [16] zero_data: true } } inputs { key: \"INPUT1\" value: { data_type: TYPE_INT32 dims: [16] random_data: true } } }]");
    start().load("simple");
    assertThat(manager.readyVersions("simple")).containsExactly(1L);
    LoadedVersion v = manager.acquire("simple", "");
    assertThat(v.stats().success().count()).as("warm-up is not counted").isZero();
    v.release();
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
  }

  @Test
  void failingWarmup_failsTheLoad_withTheReason() throws Exception {
    simpleWithWarmup("model_warmup [{ name: \"wrong_shape\" batch_size: 1 inputs { key: \"INPUT0\" value: { data_type: TYPE_INT32 "
        + "dims: [3] zero_data: true } } inputs { key: \"INPUT1\" value: { data_type: TYPE_INT32 dims: [16] zero_data: true } } }]");
    start();
    assertThatThrownBy(() -> manager.load("simple")).isInstanceOf(InferenceException.class)
        .hasMessageContaining("warm-up run 'wrong_shape' failed");
    assertThat(manager.isReady("simple", "")).isFalse();
    assertThat(manager.status("simple").get(0).reason()).contains("warm-up");
  }

  @Test
  void syntheticWarmup_runsWhenTheConfigHasNone() throws Exception {
    ExampleModels.writeSimple(repo);
    ExampleModels.writeIdentityBytes(repo);
    start().load("identity_bytes");
    manager.load("simple");
    assertThat(manager.isReady("identity_bytes", "1")).isTrue();
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
  }
}
