package io.quiver.server;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A test runtime (found by ServiceLoader in the server's tests) that really computes, an FP32 identity
 * INPUT0 → OUTPUT0 of {@code [-1, 16]}, but whose runs a test can hold: each run takes a permit of its
 * model's gate ({@link #close} takes them all away, {@link #open} gives them back) and then sleeps the
 * model file's {@code sleep_ms}. Lets tests fill a queue deterministically and give batches a known cost.
 * Its models must not run on the event loop: write them with {@link #write}, which sets the inline bound to 0.
 */
public final class GatedRuntime implements ModelRuntime {
  static final String PLATFORM = "quiver_test_gated";
  static final String MODEL_FILE = "model.gated";
  private static final ConcurrentHashMap<String, Semaphore> GATES = new ConcurrentHashMap<>();

  /** Writes model {@code name} (max_batch_size {@code maxBatch}, queue bound {@code queue}) into the repository. */
  static Path write(Path repository, String name, int maxBatch, int queue, long sleepMillis) throws IOException {
    Path dir = repository.resolve(name);
    Files.createDirectories(dir.resolve("1"));
    Files.writeString(dir.resolve("1").resolve(MODEL_FILE), "sleep_ms " + sleepMillis + "\n");
    Files.writeString(dir.resolve("config.pbtxt"), "name: \"" + name + "\"\nplatform: \"" + PLATFORM + "\"\n"
        + "max_batch_size: " + maxBatch + "\n"
        + "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n"
        + "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n"
        + "dynamic_batching { max_queue_delay_microseconds: 0 default_queue_policy { max_queue_size: " + queue + " } }\n"
        + "parameters { key: \"quiver.inline_max_us\" value { string_value: \"0\" } }\n");
    return dir;
  }

  /** Runs of the model wait until {@link #open}. */
  static void close(String model) {
    gate(model).drainPermits();
  }

  static void open(String model) {
    gate(model).release(1_000_000);
  }

  private static Semaphore gate(String model) {
    return GATES.computeIfAbsent(model, m -> new Semaphore(1_000_000));
  }

  @Override
  public String name() {
    return "gated";
  }

  @Override
  public String platform() {
    return PLATFORM;
  }

  @Override
  public boolean handles(String platform, String backend) {
    return PLATFORM.equals(platform);
  }

  @Override
  public String defaultModelFilename() {
    return MODEL_FILE;
  }

  @Override
  public ModelConfig completeConfig(ModelConfig declared, Path modelFile) {
    return declared;
  }

  @Override
  public ModelRunner newRunner(ModelConfig completed, Path modelFile, InstanceSpec instance) {
    long sleep;
    try {
      sleep = Long.parseLong(Files.readString(modelFile).trim().substring("sleep_ms ".length()).trim());
    } catch (IOException | RuntimeException e) {
      throw InferenceException.invalidArgument("%s is not a gated test model: %s", modelFile, e);
    }
    String model = completed.getName();
    return new ModelRunner() {
      @Override
      public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
        Semaphore gate = gate(model);
        try {
          if (!gate.tryAcquire(30, TimeUnit.SECONDS)) {
            throw InferenceException.internal("gate of " + model + " stayed closed for 30 s", null);
          }
          gate.release();
          if (sleep > 0) {
            Thread.sleep(sleep);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw InferenceException.internal("interrupted", e);
        }
        Tensor in = inputs[0];
        ByteBuffer copy = ByteBuffer.allocateDirect(in.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(in.data().duplicate()).flip();
        return new Tensor[] {new Tensor("OUTPUT0", DataType.FP32, in.shape().clone(), copy)};
      }

      @Override
      public void close() {}
    };
  }
}
