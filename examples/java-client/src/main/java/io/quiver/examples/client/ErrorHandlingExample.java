package io.quiver.examples.client;

import io.grpc.Status;
import io.quiver.client.InferRequest;
import io.quiver.client.InferResult;
import io.quiver.client.QuiverClient;
import io.quiver.client.QuiverException;
import io.quiver.client.Tensors;
import java.io.PrintStream;
import java.time.Duration;

/**
 * Errors: one exception type with the gRPC code, the server's message and its details. A request with a
 * wrong shape is refused with INVALID_ARGUMENT naming the field; an overloaded server's
 * RESOURCE_EXHAUSTED carries a RetryInfo delay, which {@link #inferWithBackoff} honours.
 * {@code java ... ErrorHandlingExample [HOST:PORT]}.
 */
public final class ErrorHandlingExample {
  private ErrorHandlingExample() {}

  public static void main(String[] args) throws InterruptedException {
    run(args.length > 0 ? args[0] : "localhost:8001", System.out);
  }

  /** Sends a malformed request and returns the error it gets. */
  public static QuiverException run(String target, PrintStream out) throws InterruptedException {
    try (QuiverClient client = QuiverClient.builder().target(target).build()) {
      try {
        client.infer(InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[8], 1, 8)).build());
        throw new IllegalStateException("a [1,8] input to identity_fp32 ([-1,16]) should have been refused");
      } catch (QuiverException e) {
        out.println("code=" + e.code() + " field=" + e.badRequestField() + " message=" + e.description());
        InferResult ok = inferWithBackoff(client,
            InferRequest.builder("identity_fp32").input("INPUT0", Tensors.fp32(new float[16], 1, 16)).build(), 5);
        out.println("then a good request: " + ok);
        return e;
      }
    }
  }

  /**
   * Retries a request refused for overload (RESOURCE_EXHAUSTED, or UNAVAILABLE once gRPC's own retries are
   * spent), waiting as long as the server's RetryInfo asks (or 100 ms when it did not say).
   */
  public static InferResult inferWithBackoff(QuiverClient client, InferRequest request, int attempts)
      throws InterruptedException {
    for (int attempt = 1; ; attempt++) {
      try {
        return client.infer(request);
      } catch (QuiverException e) {
        boolean overload = e.code() == Status.Code.RESOURCE_EXHAUSTED || e.code() == Status.Code.UNAVAILABLE;
        if (!overload || attempt >= attempts) {
          throw e;
        }
        Thread.sleep(e.retryDelay().orElse(Duration.ofMillis(100)).toMillis());
      }
    }
  }
}
