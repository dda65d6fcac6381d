package io.quiver.lifecycle;

import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * Requests the way the data plane sends them under lazy loading: {@link ModelManager#tryAcquire}, and
 * when the model is not resident {@link ModelManager#awaitResident}, then submit to the version's
 * scheduler. Models are {@link JavaIdentityRuntime} FP32 [4] identities with an offset (output = input
 * + offset), so every answer says which model computed it.
 */
final class LazyTestSupport {
  private LazyTestSupport() {}

  /** Writes {@code <root>/<name>/1/model.identity}: FP32 [4], output = input + offset, {@code memoryMb} MiB per instance. */
  static void model(Path root, String name, float offset, int memoryMb, long loadDelayMs) throws IOException {
    Files.createDirectories(root.resolve(name));
    StringBuilder file = new StringBuilder("identity FP32 4\noffset ").append(offset).append('\n');
    if (memoryMb > 0) {
      file.append("memory_mb ").append(memoryMb).append('\n');
    }
    if (loadDelayMs > 0) {
      file.append("load_delay_ms ").append(loadDelayMs).append('\n');
    }
    JavaIdentityRuntime.write(root.resolve(name).resolve("1"), file.toString());
  }

  /**
   * Sends one request ({@code x, x+1, x+2, x+3}) to {@code model}; completes with OUTPUT0, or
   * exceptionally with the InferenceException the request got. Never blocks.
   */
  static CompletableFuture<float[]> infer(ModelManager manager, String model, float x, long deadlineNanos) {
    CompletableFuture<float[]> result = new CompletableFuture<>();
    LoadedVersion version;
    try {
      version = manager.tryAcquire(model, "", null);
      if (version == null) {
        manager.awaitResident(model, "", null, deadlineNanos, new ResidentWaiter() {
          @Override
          public void resident(LoadedVersion v) {
            submit(v, x, deadlineNanos, result);
          }

          @Override
          public void failed(InferenceException error) {
            result.completeExceptionally(error);
          }
        });
        return result;
      }
    } catch (InferenceException e) {
      result.completeExceptionally(e);
      return result;
    }
    submit(version, x, deadlineNanos, result);
    return result;
  }

  private static void submit(LoadedVersion version, float x, long deadlineNanos, CompletableFuture<float[]> result) {
    ByteBuffer data = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 4; i++) {
      data.putFloat(x + i);
    }
    data.flip();
    InferRequest request = new InferRequest(version.name(), version.version(), "", new Tensor[] {
        new Tensor("INPUT0", DataType.FP32, new long[] {4}, data)}, new int[] {0}, 1, 0, 0, deadlineNanos,
        new InferCallback() {
          @Override
          public void onSuccess(InferRequest r, Tensor[] outputs) {
            version.release();
            ByteBuffer out = outputs[0].data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            float[] values = new float[4];
            for (int i = 0; i < 4; i++) {
              values[i] = out.getFloat();
            }
            result.complete(values);
          }

          @Override
          public void onFailure(InferRequest r, InferenceException error) {
            version.release();
            result.completeExceptionally(error);
          }
        });
    try {
      version.scheduler().submit(request);
    } catch (RuntimeException e) {
      version.release();
      result.completeExceptionally(e);
    }
  }

  /** Whether {@code out} is the answer of the model with {@code offset} to input {@code x}. */
  static boolean isAnswer(float[] out, float x, float offset) {
    for (int i = 0; i < 4; i++) {
      if (out[i] != x + i + offset) {
        return false;
      }
    }
    return true;
  }
}
