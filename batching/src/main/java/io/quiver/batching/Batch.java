package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.TransportExecutor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One formed batch, recycled: each {@link ModelInstance} owns two and alternates between them, so one
 * can run while the other's answers are still being delivered. Ownership moves, never shared: the
 * dispatch owner fills a free batch and publishes it with the instance; the thread that runs the
 * instance gathers, runs, scatters and completes it (possibly through the {@link CompletionSequencer});
 * the transport threads its answers go to deliver them ({@link Delivery}); the last delivery frees it.
 */
final class Batch {
  /** The instance that owns this batch and which of its two slots it is. */
  final ModelInstance instance;
  final int slot;
  final InferRequest[] requests;
  /** Per request, its outputs (filled on success; cleared on recycle). */
  final Tensor[][] outputs;
  /** Per request, its end-to-end latency in nanoseconds (filled when completed, read by the dispatch owner). */
  final long[] latencies;
  /** Signature output positions the runner is asked for; {@code unionArrays[k]} has length k. */
  final int[][] unionArrays;
  /** Signature output position to its index in the union, valid for positions in the union. */
  final int[] unionPos;
  /** Scratch mark per signature output while computing the union (dispatch owner only). */
  final boolean[] outputMark;
  /** Delivery groups, one per transport thread among the requests; grown on demand, then reused. */
  Delivery[] deliveries = new Delivery[0];
  int deliveryCount;
  /** Groups not yet delivered; the one that brings it to zero frees the batch. */
  final AtomicInteger pendingDeliveries = new AtomicInteger();

  int count;
  int rows;
  /** The batch was closed because it could not grow (or reached a preferred size). */
  boolean full;
  int[] union;
  long sequence;
  InferenceException failure;
  long inputNanos;
  long inferNanos;
  long outputNanos;
  long computeStartNanos;
  /** Set by the finishing thread; read by whichever thread completes batches in order. */
  volatile boolean finished;

  Batch(ModelInstance instance, int slot, int maxRequests, int signatureOutputs) {
    this.instance = instance;
    this.slot = slot;
    requests = new InferRequest[maxRequests];
    outputs = new Tensor[maxRequests][];
    latencies = new long[maxRequests];
    unionArrays = new int[signatureOutputs + 1][];
    for (int k = 0; k <= signatureOutputs; k++) {
      unionArrays[k] = new int[k];
    }
    unionPos = new int[signatureOutputs];
    outputMark = new boolean[signatureOutputs];
  }

  /** Dispatch owner, before filling: forget the previous batch. */
  void clear() {
    for (int i = 0; i < count; i++) {
      requests[i] = null;
      outputs[i] = null;
    }
    for (int g = 0; g < deliveryCount; g++) {
      deliveries[g].clear();
    }
    deliveryCount = 0;
    count = 0;
    rows = 0;
    full = false;
    union = null;
    failure = null;
    inputNanos = 0;
    inferNanos = 0;
    outputNanos = 0;
    finished = false;
  }

  void add(InferRequest request) {
    requests[count++] = request;
    rows += request.batchSize();
  }

  /** Completing thread: the delivery group of {@code transport}, created on first use. */
  Delivery deliveryFor(TransportExecutor transport, DynamicBatcher batcher) {
    for (int g = 0; g < deliveryCount; g++) {
      if (deliveries[g].transport == transport) {
        return deliveries[g];
      }
    }
    if (deliveryCount == deliveries.length) {
      // A batch's requests come from at most as many transport threads as the server has event
      // loops, so this grows a few times over the batch's life, then never again.
      Delivery[] grown = new Delivery[deliveries.length + 2];
      System.arraycopy(deliveries, 0, grown, 0, deliveries.length);
      deliveries = grown;
    }
    Delivery d = deliveries[deliveryCount];
    if (d == null) {
      d = new Delivery(this, batcher, requests.length);
      deliveries[deliveryCount] = d;
    }
    d.transport = transport;
    deliveryCount++;
    return d;
  }

  /** Dispatch owner: computes the union of the requests' outputs, in signature order, without allocating. */
  void computeUnion() {
    boolean[] mark = outputMark;
    for (int i = 0; i < count; i++) {
      int[] wanted = requests[i].outputIndices();
      for (int j = 0; j < wanted.length; j++) {
        mark[wanted[j]] = true;
      }
    }
    int k = 0;
    for (int o = 0; o < mark.length; o++) {
      if (mark[o]) {
        k++;
      }
    }
    int[] u = unionArrays[k];
    int n = 0;
    for (int o = 0; o < mark.length; o++) {
      if (mark[o]) {
        mark[o] = false;
        unionPos[o] = n;
        u[n++] = o;
      }
    }
    union = u;
  }

  /**
   * The answers of one batch for one transport thread, delivered there as a single task: the
   * transport then writes them with one flush per connection (one wake-up per batch, not per
   * response). Reused with its batch; the member list is written by the completing thread before
   * {@link TransportExecutor#execute} publishes the task.
   */
  static final class Delivery implements Runnable {
    final Batch batch;
    final DynamicBatcher batcher;
    final int[] members;
    int memberCount;
    TransportExecutor transport;

    Delivery(Batch batch, DynamicBatcher batcher, int maxRequests) {
      this.batch = batch;
      this.batcher = batcher;
      this.members = new int[maxRequests];
    }

    void add(int requestIndex) {
      members[memberCount++] = requestIndex;
    }

    void clear() {
      memberCount = 0;
      transport = null;
    }

    @Override
    public void run() {
      batcher.deliverGroup(this);
    }
  }
}
