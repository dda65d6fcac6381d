package io.quiver.core;

import io.quiver.core.spi.TransportExecutor;
import java.util.function.BooleanSupplier;

/**
 * One validated inference request on its way through a scheduler to a runner.
 *
 * <p>Built by a transport (gRPC, REST) on its own thread after {@link RequestValidator} has checked
 * the inputs; handed to an {@code InferenceScheduler}; completed exactly once through its
 * {@link InferCallback}, on its {@link #transport()} thread when it has one, else on whatever thread
 * finishes it. Apart from {@link #cancel()} (any thread)
 * and the enqueue time (set by the scheduler before the request is published to its agent), fields
 * do not change after construction.
 */
public final class InferRequest {
  /** Sentinel for "no deadline". */
  public static final long NO_DEADLINE = Long.MAX_VALUE;

  /**
   * The priority of background work (batch jobs): below every level a model configures, served only
   * when no configured level has a request waiting, with its own queue bound. Negative, so no client
   * can ask for it: both transports refuse a negative {@code priority} parameter.
   */
  public static final int BACKGROUND_PRIORITY = Integer.MIN_VALUE;

  private final String modelName;
  private final long modelVersion;
  private final String id;
  private final Tensor[] inputs;
  private final int[] outputIndices;
  private final int batchSize;
  private final int priority;
  private final long timeoutMicros;
  private final long deadlineNanos;
  private final InferCallback callback;
  private final TransportExecutor transport; // null: answered on the finishing thread
  private final SequenceControl sequence; // null: not part of a sequence
  private volatile boolean cancelled;
  // Set once before the request is submitted (published to the scheduler with it): a request made on
  // behalf of another (an ensemble step) is cancelled when that one is.
  private BooleanSupplier cancelledWith;
  private long enqueueNanos;
  // Written by the scheduler on the completing thread before the success callback runs (on that thread,
  // or on a transport thread that the callback task is published to): plain fields suffice.
  private long queueNanos;
  private long computeInputNanos;
  private long computeInferNanos;
  private long computeOutputNanos;
  private int executedBatchRows;

  /**
   * @param inputs tensors in the model signature's input order (null for an absent optional input)
   * @param outputIndices positions in the signature's outputs of the outputs to return, in response order
   * @param batchSize rows this request contributes to a batch (1 for a model that does not batch)
   * @param priority requested priority level, 1 highest; 0 means the model's default level;
   *     {@link #BACKGROUND_PRIORITY} for background work
   * @param timeoutMicros the request's own `timeout` parameter in microseconds; 0 when not given
   * @param deadlineNanos absolute {@link System#nanoTime()} deadline from the transport (gRPC deadline), or {@link #NO_DEADLINE}
   */
  public InferRequest(String modelName, long modelVersion, String id, Tensor[] inputs, int[] outputIndices,
      int batchSize, int priority, long timeoutMicros, long deadlineNanos, InferCallback callback) {
    this(modelName, modelVersion, id, inputs, outputIndices, batchSize, priority, timeoutMicros, deadlineNanos, callback,
        null);
  }

  /**
   * @param transport the transport thread the request arrived on, where its callback should run (and
   *     where a scheduler may run short work); null answers the request on the thread that finishes it
   */
  public InferRequest(String modelName, long modelVersion, String id, Tensor[] inputs, int[] outputIndices,
      int batchSize, int priority, long timeoutMicros, long deadlineNanos, InferCallback callback,
      TransportExecutor transport) {
    this(modelName, modelVersion, id, inputs, outputIndices, batchSize, priority, timeoutMicros, deadlineNanos, callback,
        transport, null);
  }

  /**
   * @param sequence the request's sequence id and START/END flags (Triton's sequence batching), or null
   */
  public InferRequest(String modelName, long modelVersion, String id, Tensor[] inputs, int[] outputIndices,
      int batchSize, int priority, long timeoutMicros, long deadlineNanos, InferCallback callback,
      TransportExecutor transport, SequenceControl sequence) {
    this.sequence = sequence;
    this.transport = transport;
    this.modelName = modelName;
    this.modelVersion = modelVersion;
    this.id = id;
    this.inputs = inputs;
    this.outputIndices = outputIndices;
    this.batchSize = batchSize;
    this.priority = priority;
    this.timeoutMicros = timeoutMicros;
    this.deadlineNanos = deadlineNanos;
    this.callback = callback;
  }

  public String modelName() {
    return modelName;
  }

  public long modelVersion() {
    return modelVersion;
  }

  /** The client's request id; empty when none was given. */
  public String id() {
    return id;
  }

  /** Inputs in signature order; callers must not modify the array. */
  public Tensor[] inputs() {
    return inputs;
  }

  /** Signature positions of the outputs to return; callers must not modify the array. */
  public int[] outputIndices() {
    return outputIndices;
  }

  public int batchSize() {
    return batchSize;
  }

  public int priority() {
    return priority;
  }

  public long timeoutMicros() {
    return timeoutMicros;
  }

  public long deadlineNanos() {
    return deadlineNanos;
  }

  public InferCallback callback() {
    return callback;
  }

  /** The transport thread that should run the callback, or null for "whichever thread finishes it". */
  public TransportExecutor transport() {
    return transport;
  }

  /** The sequence this request belongs to (id, START, END), or null when it names none. */
  public SequenceControl sequence() {
    return sequence;
  }

  /** Marks the request cancelled (client gone); a scheduler drops it before it runs. Any thread. */
  public void cancel() {
    cancelled = true;
  }

  public boolean isCancelled() {
    return cancelled || (cancelledWith != null && cancelledWith.getAsBoolean());
  }

  /**
   * Makes this request count as cancelled whenever {@code source} says so (an ensemble's step request
   * follows the ensemble request and the ensemble run). Call before submitting it; the supplier must be
   * thread-safe and cheap, since schedulers ask while forming batches.
   */
  public InferRequest cancelledWith(BooleanSupplier source) {
    this.cancelledWith = source;
    return this;
  }

  /** Set by the scheduler when it accepts the request, before publishing it to other threads. */
  public void setEnqueueNanos(long nanos) {
    this.enqueueNanos = nanos;
  }

  public long enqueueNanos() {
    return enqueueNanos;
  }

  /**
   * Called by the scheduler before {@link InferCallback#onSuccess} (and before the callback is handed
   * to another thread, which then sees these values): how long the request waited, the compute times of
   * the batch it ran in (Triton charges each request of a batch the batch's full compute times), and
   * that batch's rows.
   */
  public void recordTimings(long queue, long computeInput, long computeInfer, long computeOutput, int batchRows) {
    this.queueNanos = queue;
    this.computeInputNanos = computeInput;
    this.computeInferNanos = computeInfer;
    this.computeOutputNanos = computeOutput;
    this.executedBatchRows = batchRows;
  }

  /** Rows of the batch this request ran in; 0 until it ran (valid in {@link InferCallback#onSuccess}). */
  public int executedBatchRows() {
    return executedBatchRows;
  }

  /** Time from acceptance to the start of its batch; valid in {@link InferCallback#onSuccess}. */
  public long queueNanos() {
    return queueNanos;
  }

  public long computeInputNanos() {
    return computeInputNanos;
  }

  public long computeInferNanos() {
    return computeInferNanos;
  }

  public long computeOutputNanos() {
    return computeOutputNanos;
  }

  @Override
  public String toString() {
    return "InferRequest{" + modelName + "/" + modelVersion + " id=" + id + " batch=" + batchSize + "}";
  }
}
