package io.quiver.pipeline;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRouter;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler of one loaded ensemble version (Triton's {@code platform: "ensemble"}). It runs no
 * model itself: each request becomes an {@link EnsembleRun} that sends every step, as soon as the
 * tensors it reads exist, to the step model's own scheduler through the {@link ModelRouter} (so steps
 * batch with the step model's other traffic, and a hot swap of a step model reaches the next request),
 * and answers once the outputs asked for are written. Independent steps run at the same time.
 *
 * <p>Thread-safe: any number of transport threads submit; step answers arrive on the request's transport
 * thread (step requests carry it), or on the step's finishing thread for requests without one. Nothing
 * here blocks except {@link #close()}.
 */
public final class EnsembleScheduler implements InferenceScheduler {
  private static final Logger log = LoggerFactory.getLogger(EnsembleScheduler.class);
  /** How long {@link #close()} waits for accepted requests to be answered by their steps. */
  static final long CLOSE_WAIT_NANOS = TimeUnit.SECONDS.toNanos(30);

  private final EnsemblePlan plan;
  private final ModelRouter router;
  private final StepListener listener;
  private final InferenceStats stats;
  private final AtomicInteger inFlight = new AtomicInteger();
  private volatile boolean closing;

  EnsembleScheduler(EnsemblePlan plan, ModelRouter router, StepListener listener) {
    this.plan = plan;
    this.router = router;
    this.listener = listener;
    this.stats = new InferenceStats(Math.max(1, plan.signature.maxBatchSize()));
  }

  EnsemblePlan plan() {
    return plan;
  }

  ModelRouter router() {
    return router;
  }

  StepListener listener() {
    return listener;
  }

  /**
   * Starts the steps that read only the ensemble's inputs. Throws (and never calls the request's
   * callback) when the first of them is refused at once (queue full, step model not loaded); a refusal
   * after another step was accepted fails the request through its callback instead.
   *
   * @throws InferenceException UNAVAILABLE after {@link #close()}; the refusing step's error, naming the step
   */
  @Override
  public void submit(InferRequest request) {
    inFlight.incrementAndGet(); // before reading `closing`: close() sets closing, then waits for in-flight to reach 0
    if (closing) {
      inFlight.decrementAndGet();
      throw InferenceException.unavailable("%s is shutting down", plan.label);
    }
    request.setEnqueueNanos(System.nanoTime());
    try {
      new EnsembleRun(this, request).start();
    } catch (RuntimeException e) {
      inFlight.decrementAndGet();
      throw e;
    }
  }

  /** An accepted request was answered (called once per request that {@link #submit} accepted). */
  void answered() {
    inFlight.decrementAndGet();
  }

  /** Always 0: an ensemble queues nothing itself; its requests wait in their step models' queues. */
  @Override
  public int queuedRequests() {
    return 0;
  }

  @Override
  public int inFlightRequests() {
    return inFlight.get();
  }

  @Override
  public InferenceStats stats() {
    return stats;
  }

  /**
   * Refuses new requests and waits (up to 30 s) until every accepted one has been answered; their steps
   * run on the step models' schedulers, which stay open until their own unload. Idempotent.
   */
  @Override
  public void close() {
    closing = true;
    long deadline = System.nanoTime() + CLOSE_WAIT_NANOS;
    boolean interrupted = false;
    while (inFlight.get() > 0 && System.nanoTime() < deadline) {
      try {
        Thread.sleep(1);
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (inFlight.get() > 0) {
      log.warn("{}: {} request(s) still unanswered {} s after close began; their steps answer them later",
          plan.label, inFlight.get(), TimeUnit.NANOSECONDS.toSeconds(CLOSE_WAIT_NANOS));
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "EnsembleScheduler[" + plan.label + ", steps=" + plan.steps.length + ", inFlight=" + inFlight.get() + "]";
  }
}
