package io.quiver.pipeline;

import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.SchedulerDecorator;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * A per-model limit on requests in flight ({@code parameters { key: "quiver.max_inflight_requests" ...}},
 * the ask of triton-inference-server/server#8597): a request over the limit is refused at admission,
 * before it queues or any ensemble step runs, with RESOURCE_EXHAUSTED and a retry hint. Counts every
 * request the model's scheduler is given, whether from a client or from an ensemble's step.
 *
 * <p>Thread-safe and lock-free. An admitted request is forwarded as a request of its own (same inputs,
 * deadline, priority and transport; cancelled with the original), whose callback frees the slot and
 * answers the original: two small objects per request, only for models that set the limit.
 */
public final class AdmissionLimit implements InferenceScheduler, SchedulerDecorator {
  /** The config parameter that sets the limit. */
  public static final String PARAMETER = "quiver.max_inflight_requests";
  /** Largest limit accepted. */
  public static final int MAX_LIMIT = 1 << 20;
  private static final long MIN_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

  private final InferenceScheduler inner;
  private final int limit;
  private final String label;
  private final AtomicInteger admitted = new AtomicInteger();
  private final AtomicLong rejected = new AtomicLong();
  // Smoothed request latency (nanos) for the retry hint; updated racily by completing threads, which is fine for a hint.
  private volatile long averageLatencyNanos;

  AdmissionLimit(InferenceScheduler inner, int limit, String model, long version) {
    if (limit < 1 || limit > MAX_LIMIT) {
      throw new IllegalArgumentException("limit must be in [1, " + MAX_LIMIT + "]; was " + limit);
    }
    this.inner = inner;
    this.limit = limit;
    this.label = "model '" + model + "' version " + version;
  }

  @Override
  public InferenceScheduler inner() {
    return inner;
  }

  public int limit() {
    return limit;
  }

  /** Requests refused because the limit was reached. */
  public long rejectedRequests() {
    return rejected.get();
  }

  /**
   * @throws InferenceException RESOURCE_EXHAUSTED with a retry hint when {@code limit} requests are in
   *     flight; whatever the wrapped scheduler throws
   */
  @Override
  public void submit(InferRequest request) {
    if (admitted.incrementAndGet() > limit) {
      admitted.decrementAndGet();
      rejected.incrementAndGet();
      throw InferenceException.resourceExhausted(retryAfterNanos(),
          "%s has %d requests in flight, its limit (parameters %s); retry later", label, limit, PARAMETER);
    }
    Forward forward = new Forward(request);
    InferRequest forwarded = new InferRequest(request.modelName(), request.modelVersion(), request.id(),
        request.inputs(), request.outputIndices(), request.batchSize(), request.priority(), request.timeoutMicros(),
        request.deadlineNanos(), forward, request.transport()).cancelledWith(forward);
    try {
      inner.submit(forwarded);
    } catch (RuntimeException e) {
      admitted.decrementAndGet();
      throw e;
    }
  }

  /** Roughly when a slot frees: the average request latency spread over the slots, at least 1 ms. */
  private long retryAfterNanos() {
    return Math.max(MIN_RETRY_NANOS, averageLatencyNanos / limit);
  }

  private void completed(long latencyNanos) {
    admitted.decrementAndGet();
    long average = averageLatencyNanos;
    averageLatencyNanos = average == 0 ? latencyNanos : average + (latencyNanos - average) / 16;
  }

  /**
   * Early admission: refused here when the limit is reached now (submit would refuse too), else what the
   * wrapped scheduler says. Never blocks.
   */
  @Override
  public long admit(int priority) {
    if (admitted.get() >= limit) {
      throw InferenceException.resourceExhausted(retryAfterNanos(),
          "%s has %d requests in flight, its limit (parameters %s); retry later", label, limit, PARAMETER);
    }
    return inner.admit(priority);
  }

  @Override
  public int queuedRequests() {
    return inner.queuedRequests();
  }

  @Override
  public int inFlightRequests() {
    return inner.inFlightRequests();
  }

  @Override
  public InferenceStats stats() {
    return inner.stats();
  }

  @Override
  public void close() {
    inner.close();
  }

  /** Frees the slot and answers the original request with what the forwarded one got. */
  private final class Forward implements InferCallback, BooleanSupplier {
    private final InferRequest original;

    Forward(InferRequest original) {
      this.original = original;
    }

    @Override
    public boolean getAsBoolean() {
      return original.isCancelled();
    }

    @Override
    public void onSuccess(InferRequest forwarded, Tensor[] outputs) {
      completed(System.nanoTime() - forwarded.enqueueNanos());
      original.setEnqueueNanos(forwarded.enqueueNanos());
      original.recordTimings(forwarded.queueNanos(), forwarded.computeInputNanos(), forwarded.computeInferNanos(),
          forwarded.computeOutputNanos(), forwarded.executedBatchRows());
      original.callback().onSuccess(original, outputs);
    }

    @Override
    public void onFailure(InferRequest forwarded, InferenceException error) {
      completed(System.nanoTime() - forwarded.enqueueNanos());
      original.callback().onFailure(original, error);
    }
  }
}
