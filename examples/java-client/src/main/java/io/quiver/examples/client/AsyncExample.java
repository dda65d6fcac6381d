package io.quiver.examples.client;

import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensors;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;

/**
 * Asynchronous calls: many {@code mlp_classifier} requests in flight at once, each a
 * {@link CompletableFuture}; the dynamic batcher groups them on the server. {@code java ... AsyncExample
 * [HOST:PORT]}.
 */
public final class AsyncExample {
  private AsyncExample() {}

  public static void main(String[] args) {
    run(args.length > 0 ? args[0] : "localhost:8001", 64, System.out);
  }

  /** Sends {@code count} requests at once; returns the predicted class of each. */
  public static int[] run(String target, int count, PrintStream out) {
    try (QuiverClient client = QuiverClient.builder().target(target).build()) {
      SplittableRandom random = new SplittableRandom(7);
      List<CompletableFuture<Integer>> predictions = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        float[] features = new float[16];
        for (int k = 0; k < features.length; k++) {
          features[k] = (float) random.nextGaussian();
        }
        CompletableFuture<InferResult> call = client.inferAsync(InferRequest.builder("mlp_classifier")
            .input("features", Tensors.fp32(features, 1, 16)).build());
        predictions.add(call.thenApply(result -> argmax(result.output("probabilities").toFloatArray())));
      }
      CompletableFuture.allOf(predictions.toArray(new CompletableFuture<?>[0])).join();
      int[] classes = predictions.stream().mapToInt(CompletableFuture::join).toArray();
      int[] histogram = new int[4];
      for (int c : classes) {
        histogram[c]++;
      }
      out.println(count + " predictions, per class: " + java.util.Arrays.toString(histogram));
      return classes;
    }
  }

  static int argmax(float[] values) {
    int best = 0;
    for (int i = 1; i < values.length; i++) {
      if (values[i] > values[best]) {
        best = i;
      }
    }
    return best;
  }
}
