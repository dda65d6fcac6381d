package io.quiver.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.lifecycle.ModelVersionStatus.State;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.registry.LocalModelRepository;
import io.quiver.runtime.onnxruntime.OnnxRuntime;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The manager over the real ONNX Runtime adapter, found through ServiceLoader, and the example models. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class OnnxModelManagerTest {
  @TempDir Path repo;
  private ModelManager manager;

  @AfterEach
  void close() {
    if (manager != null) {
      manager.close();
    }
  }

  private static SchedulerFactory schedulers() {
    return TestSchedulers.factory();
  }

  private ModelManager start(ModelManagerOptions options) {
    manager = new ModelManager(new LocalModelRepository(repo), ModelManager.discoverRuntimes(), schedulers(), options);
    manager.start();
    return manager;
  }

  private static Tensor int32(String name, int... values) {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      data.putInt(v);
    }
    data.flip();
    return new Tensor(name, DataType.INT32, new long[] {1, values.length}, data);
  }

  private static Tensor[] infer(LoadedVersion version, Tensor... inputs) throws Exception {
    CompletableFuture<Tensor[]> result = new CompletableFuture<>();
    int[] outputs = new int[version.signature().outputs().size()];
    for (int i = 0; i < outputs.length; i++) {
      outputs[i] = i;
    }
    version.scheduler().submit(new InferRequest(version.name(), version.version(), "", inputs, outputs, 1, 0, 0,
        InferRequest.NO_DEADLINE, new InferCallback() {
          @Override
          public void onSuccess(InferRequest r, Tensor[] out) {
            result.complete(out);
          }

          @Override
          public void onFailure(InferRequest r, InferenceException error) {
            result.completeExceptionally(error);
          }
        }));
    return result.get(30, TimeUnit.SECONDS);
  }

  private static int[] ints(Tensor t) {
    ByteBuffer b = t.data();
    int[] out = new int[b.remaining() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getInt();
    }
    return out;
  }

  @Test
  void discoverRuntimes_findsTheOnnxRuntimeAdapter() {
    List<ModelRuntime> runtimes = ModelManager.discoverRuntimes();
    assertThat(runtimes).anyMatch(r -> r instanceof OnnxRuntime);
  }

  @Test
  void start_exampleRepositoryWithACorruptModel_servesTheGoodOnes() throws Exception {
    List<String> good = new java.util.ArrayList<>(ExampleModels.writeExampleRepository(repo));
    // The example ensembles need the pipeline's scheduler factory, which the server installs (server's
    // EnsembleTest); with the bare batcher they fail to load like any model whose runtime is missing.
    List<String> ensembles = List.of("mlp_pipeline", "classify_and_score");
    good.removeAll(ensembles);
    ExampleModels.writeCorruptModel(repo, "corrupt");
    start(ModelManagerOptions.defaults());

    for (String name : good) {
      assertThat(manager.isReady(name, "1")).as(name).isTrue();
    }
    for (String name : ensembles) {
      assertThat(manager.isReady(name, "1")).as(name).isFalse();
    }
    ModelVersionStatus corrupt = manager.index().stream().filter(s -> s.name().equals("corrupt")).findFirst().orElseThrow();
    assertThat(corrupt.state()).isEqualTo(State.UNAVAILABLE);
    assertThat(corrupt.version()).isEqualTo("1");
    assertThat(corrupt.reason()).contains("corrupt/1/model.onnx").contains("ONNX Runtime cannot load");
    assertThat(manager.allReady()).isFalse();
    InferenceException e = null;
    try {
      manager.acquire("corrupt", "");
    } catch (InferenceException ex) {
      e = ex;
    }
    assertThat(e).isNotNull();
    assertThat(e.code()).isEqualTo(ErrorCode.UNAVAILABLE);

    // simple: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, computed by ONNX Runtime.
    int[] a = new int[16];
    int[] b = new int[16];
    int[] sum = new int[16];
    int[] diff = new int[16];
    for (int i = 0; i < 16; i++) {
      a[i] = i * 7 - 20;
      b[i] = 3 - i;
      sum[i] = a[i] + b[i];
      diff[i] = a[i] - b[i];
    }
    LoadedVersion simple = manager.acquire("simple", "");
    try {
      Tensor[] out = infer(simple, int32("INPUT0", a), int32("INPUT1", b));
      assertThat(ints(out[0])).containsExactly(sum);
      assertThat(ints(out[1])).containsExactly(diff);
    } finally {
      simple.release();
    }
  }

  @Test
  void load_withoutConfigFile_completesTheConfigFromTheModel() throws Exception {
    ExampleModels.writeIdentityInt64NoConfig(repo);
    start(ModelManagerOptions.explicit(ExampleModels.NO_CONFIG_MODEL));

    LoadedVersion v = manager.acquire(ExampleModels.NO_CONFIG_MODEL, "");
    v.release();
    ModelConfig config = v.config();
    assertThat(config.getPlatform()).isEqualTo(OnnxRuntime.PLATFORM);
    assertThat(config.getInput(0).getName()).isEqualTo("INPUT0");
    assertThat(config.getInput(0).getDataType()).isEqualTo(io.quiver.proto.inference.DataType.TYPE_INT64);
    assertThat(config.getInstanceGroup(0).getCount()).isEqualTo(1);
    assertThat(v.runtimeName()).isEqualTo(OnnxRuntime.NAME);
  }

  @Test
  void explicitMode_loadsOnlyTheNamedModel_andUnloadClosesIt() throws Exception {
    ExampleModels.writeIdentityFp32(repo);
    ExampleModels.writeSimple(repo);
    start(ModelManagerOptions.explicit("simple"));

    assertThat(manager.isReady("simple", "")).isTrue();
    assertThat(manager.isReady("identity_fp32", "")).isFalse();
    assertThat(manager.allReady()).isTrue();

    manager.load("identity_fp32");
    assertThat(manager.readyVersions("identity_fp32")).containsExactly(1L);
    manager.unload("simple");
    assertThat(manager.isReady("simple", "")).isFalse();
    assertThat(manager.isReady("identity_fp32", "1")).isTrue();
  }

  @Test
  void load_corruptSecondVersion_keepsServingTheFirst() throws Exception {
    ExampleModels.writeSimple(repo);
    start(ModelManagerOptions.defaults());
    Files.createDirectories(repo.resolve("simple/2"));
    Files.write(repo.resolve("simple/2/model.onnx"), new byte[] {1, 2, 3, 4, 5});

    InferenceException e = null;
    try {
      manager.load("simple");
    } catch (InferenceException ex) {
      e = ex;
    }
    assertThat(e).isNotNull();
    assertThat(e.getMessage()).contains("version 2");
    assertThat(manager.readyVersions("simple")).containsExactly(1L);
    LoadedVersion v = manager.acquire("simple", "");
    try {
      assertThat(ints(infer(v, int32("INPUT0", new int[16]), int32("INPUT1", new int[16]))[0])).containsOnly(0);
    } finally {
      v.release();
    }
  }
}
