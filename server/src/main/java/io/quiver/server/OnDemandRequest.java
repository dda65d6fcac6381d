package io.quiver.server;

import io.opentelemetry.api.trace.Span;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ResidentWaiter;
import java.util.List;

/**
 * A request whose model was not resident when it arrived (lazy mode, or evicted under the memory
 * budget): it waits in the lifecycle's per-model queue ({@link io.quiver.lifecycle.ModelManager#awaitResident})
 * and is submitted by {@link DataPlane#submitTo} when the lifecycle hands it an acquired version, or
 * answered with the reason it cannot be (its deadline passed while the model loaded, the load failed,
 * shutdown). Until then the transport holds {@link #placeholder()}: cancelling it (the client went
 * away) makes the request be dropped instead of submitted. A cancel after the request was submitted
 * no longer reaches it (the answer is then discarded by the transport).
 *
 * <p>Threading: made on the transport thread that received the request; when that is an event loop,
 * the request is resumed (submitted, or answered with its failure) back on that loop, as every answer
 * of a connection is handled there; otherwise on the lifecycle thread that calls it. Allocated only
 * on this cold path; its methods run once.
 */
final class OnDemandRequest implements ResidentWaiter {
  private static final Tensor[] NO_TENSORS = {};
  private static final int[] NO_OUTPUTS = {};
  private static final InferCallback NEVER_RUN = new InferCallback() {
    @Override
    public void onSuccess(InferRequest request, Tensor[] outputs) {}

    @Override
    public void onFailure(InferRequest request, InferenceException error) {}
  };

  private final DataPlane plane;
  private final io.quiver.core.SequenceControl sequenceControl; // null: none
  private final OutputPlan plan; // released by submitTo, or here when the request never runs
  private final String id;
  private final List<Tensor> decoded;
  private final List<String> requestedOutputs;
  private final int priority;
  private final long timeoutMicros;
  private final long transportDeadlineNanos;
  private final DataPlane.Completion completion;
  private final String protocol;
  private final Span span;
  private final long startNanos;
  private final long waitDeadlineNanos;
  private final InferRequest placeholder;
  private final io.quiver.core.spi.TransportExecutor transport; // the event loop it came from; null elsewhere

  OnDemandRequest(DataPlane plane, String model, String id, List<Tensor> decoded, List<String> requestedOutputs,
      int priority, long timeoutMicros, long deadlineNanos, DataPlane.Completion completion, String protocol, Span span,
      long startNanos, io.quiver.core.SequenceControl sequenceControl, OutputPlan plan) {
    this.sequenceControl = sequenceControl;
    this.plan = plan;
    this.plane = plane;
    this.id = id;
    this.decoded = decoded;
    this.requestedOutputs = requestedOutputs;
    this.priority = priority;
    this.timeoutMicros = timeoutMicros;
    this.transportDeadlineNanos = deadlineNanos;
    this.completion = completion;
    this.protocol = protocol;
    this.span = span;
    this.startNanos = startNanos;
    // The wait honours the caller's deadline and its own `timeout` parameter, whichever ends first.
    long byTimeout = timeoutMicros > 0 ? startNanos + timeoutMicros * 1_000 : InferRequest.NO_DEADLINE;
    this.waitDeadlineNanos = deadlineNanos == InferRequest.NO_DEADLINE ? byTimeout
        : byTimeout == InferRequest.NO_DEADLINE || deadlineNanos - byTimeout < 0 ? deadlineNanos : byTimeout;
    this.placeholder = new InferRequest(model, 0, id, NO_TENSORS, NO_OUTPUTS, 1, priority, timeoutMicros, deadlineNanos,
        NEVER_RUN);
    this.transport = EventLoopTransports.current();
  }

  /** Runs {@code task} on the request's event loop (at once when already there); false when the loop is gone. */
  private boolean onTransport(Runnable task) {
    if (transport == null || transport.inTransportThread()) {
      task.run();
      return true;
    }
    try {
      transport.execute(task);
      return true;
    } catch (RuntimeException e) {
      return false; // the server is shutting down: the connection is gone with its loop
    }
  }

  /** When the wait ends at the latest ({@link InferRequest#NO_DEADLINE} when the caller set none). */
  long deadlineNanos() {
    return waitDeadlineNanos;
  }

  /** What the transport holds until the request is submitted: its model name and id, and cancellation. */
  InferRequest placeholder() {
    return placeholder;
  }

  @Override
  public boolean isCancelled() {
    return placeholder.isCancelled();
  }

  @Override
  public void resident(LoadedVersion version) {
    if (!onTransport(() -> submit(version))) {
      version.release();
      plane.failSpan(span, InferenceException.unavailable("the server is shutting down"));
    }
  }

  private void submit(LoadedVersion version) {
    try {
      // From here on it is an ordinary request: submitTo owns the hold, the span and the metrics.
      plane.submitTo(version, id, decoded, requestedOutputs, priority, timeoutMicros, transportDeadlineNanos, completion,
          protocol, span, startNanos, sequenceControl, plan);
    } catch (InferenceException e) {
      completion.failed(placeholder, e);
    } catch (RuntimeException e) {
      plane.logFailure(placeholder.modelName(), id, e);
      completion.failed(placeholder, InferenceException.internal("inference failed: " + e.getClass().getSimpleName(), e));
    }
  }

  @Override
  public void failed(InferenceException error) {
    plan.release();
    plane.failSpan(span, error);
    onTransport(() -> completion.failed(placeholder, error));
  }
}
