package io.quiver.examples.client;

import io.quiver.client.InferRequest;
import io.quiver.client.InferStream;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensors;
import java.io.PrintStream;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Streaming over ModelStreamInfer: {@code count} requests on one stream, at most {@code window}
 * unanswered at a time ({@code send} waits beyond that), answers handled as they arrive.
 * {@code java ... StreamingExample [HOST:PORT]}.
 */
public final class StreamingExample {
  private StreamingExample() {}

  public static void main(String[] args) throws InterruptedException {
    run(args.length > 0 ? args[0] : "localhost:8001", 1000, 32, System.out);
  }

  /** Streams {@code count} requests to {@code identity_fp32}; returns the sum of the first element of every answer. */
  public static long run(String target, int count, int window, PrintStream out) throws InterruptedException {
    try (QuiverClient client = QuiverClient.builder().target(target).build();
         InferStream stream = client.openStream(window, java.time.Duration.ofMinutes(5))) {
      AtomicLong sum = new AtomicLong();
      for (int i = 0; i < count; i++) {
        float[] row = new float[16];
        row[0] = i;
        stream.send(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(row, 1, 16)).build())
            .thenAccept(result -> sum.addAndGet((long) result.output("OUTPUT0").asFloatBuffer().get(0)));
      }
      stream.complete();
      stream.done().join();
      out.println(count + " answers over one stream; sum of first elements = " + sum.get());
      return sum.get();
    }
  }
}
