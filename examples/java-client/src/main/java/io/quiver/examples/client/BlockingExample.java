package io.quiver.examples.client;

import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.ModelMetadata;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensors;
import java.io.PrintStream;
import java.util.Arrays;

/**
 * Blocking calls: health, metadata, a typed FP32 call to {@code identity_fp32}, and {@code simple}'s
 * two INT32 inputs and outputs. {@code java ... BlockingExample [HOST:PORT]} (default localhost:8001).
 */
public final class BlockingExample {
  private BlockingExample() {}

  public static void main(String[] args) {
    run(args.length > 0 ? args[0] : "localhost:8001", System.out);
  }

  /** Runs the example against {@code target}; returns {@code simple}'s OUTPUT0 (the sums). */
  public static int[] run(String target, PrintStream out) {
    try (QuiverClient client = QuiverClient.builder().target(target).build()) {
      out.println("live=" + client.isServerLive() + " ready=" + client.isServerReady()
          + " identity_fp32 ready=" + client.isModelReady("identity_fp32"));

      // A typed call in five lines.
      float[] values = new float[16];
      for (int i = 0; i < values.length; i++) {
        values[i] = i * 0.5f;
      }
      InferResult result = client.infer(InferRequest.builder("identity_fp32")
          .input("INPUT0", Tensors.fp32(values, 1, 16)).build());
      out.println("identity_fp32 -> " + Arrays.toString(result.output("OUTPUT0").toFloatArray()));

      // Metadata describes the inputs; validate() checks a request against it before sending.
      ModelMetadata simple = client.modelMetadata("simple");
      out.println(simple);
      int[] a = new int[16];
      int[] b = new int[16];
      Arrays.setAll(a, i -> i);
      Arrays.fill(b, 1);
      InferRequest request = InferRequest.builder("simple")
          .input("INPUT0", Tensors.int32(a, 1, 16))
          .input("INPUT1", Tensors.int32(b, 1, 16))
          .id("blocking-example")
          .build();
      simple.validate(request);
      InferResult sums = client.infer(request);
      int[] sum = sums.output("OUTPUT0").toIntArray();
      out.println("simple v" + sums.modelVersion() + " id=" + sums.id() + " OUTPUT0=" + Arrays.toString(sum)
          + " OUTPUT1=" + Arrays.toString(sums.output("OUTPUT1").toIntArray()));
      return sum;
    }
  }
}
