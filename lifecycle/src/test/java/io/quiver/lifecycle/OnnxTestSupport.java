package io.quiver.lifecycle;

import io.quiver.core.DataType;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Requests to the example model {@code simple} (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, INT32 [1,16]). */
public final class OnnxTestSupport {
  private OnnxTestSupport() {}

  public static Tensor int32(String name, int... values) {
    ByteBuffer data = ByteBuffer.allocateDirect(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      data.putInt(v);
    }
    data.flip();
    return new Tensor(name, DataType.INT32, new long[] {1, values.length}, data);
  }

  public static int[] ints(Tensor t) {
    ByteBuffer b = t.data().duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int[] out = new int[b.remaining() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getInt();
    }
    return out;
  }

  public static int[] seq(int from) {
    int[] v = new int[16];
    for (int i = 0; i < 16; i++) {
      v[i] = from + i;
    }
    return v;
  }

  /** Submits a {@code simple} request to the version; the future completes with OUTPUT0, OUTPUT1. */
  public static CompletableFuture<Tensor[]> submitSimple(LoadedVersion version, int[] a, int[] b) {
    CompletableFuture<Tensor[]> result = new CompletableFuture<>();
    version.scheduler().submit(new InferRequest(version.name(), version.version(), "", new Tensor[] {int32("INPUT0", a),
        int32("INPUT1", b)}, new int[] {0, 1}, 1, 0, 0, InferRequest.NO_DEADLINE, new InferCallback() {
          @Override
          public void onSuccess(InferRequest r, Tensor[] out) {
            result.complete(out);
          }

          @Override
          public void onFailure(InferRequest r, InferenceException error) {
            result.completeExceptionally(error);
          }
        }));
    return result;
  }

  /** Runs one {@code simple} request and checks both outputs; returns the version that answered. */
  public static long inferSimpleAndCheck(ModelManager manager, String model) throws Exception {
    LoadedVersion v = manager.acquire(model, "");
    try {
      int[] a = seq(10);
      int[] b = seq(1);
      Tensor[] out = submitSimple(v, a, b).get(30, TimeUnit.SECONDS);
      int[] sum = ints(out[0]);
      int[] diff = ints(out[1]);
      for (int i = 0; i < 16; i++) {
        if (sum[i] != a[i] + b[i] || diff[i] != a[i] - b[i]) {
          throw new AssertionError("wrong result at " + i + ": " + sum[i] + ", " + diff[i]);
        }
      }
      return v.version();
    } finally {
      v.release();
    }
  }
}
