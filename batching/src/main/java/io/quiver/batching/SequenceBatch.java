package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.TransportExecutor;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One formed batch of a {@link SequenceBatcher}: per row, the request of the sequence in that row, or
 * none (a row the direct strategy fills with READY false). Recycled: each {@link SequenceInstance} owns
 * two and alternates, so one can run while the other's answers are being delivered. Ownership moves as
 * in the dynamic batcher's {@code Batch}: the dispatch owner fills it, the running thread executes and
 * completes it, the transport threads deliver it ({@link Delivery}), the last delivery frees it; the
 * owner reads its rows back (finished-batch queue) before it takes it again.
 */
final class SequenceBatch {
  final SequenceInstance instance;
  final int slot;
  /** Per row: its request (null: a not-ready row) and its sequence. */
  final InferRequest[] requests;
  final Sequence[] sequences;
  /** Per row, the outputs of its request (filled on success). */
  final Tensor[][] outputs;
  /** Signature output positions the runner is asked for; {@code unionArrays[k]} has length k. */
  final int[][] unionArrays;
  final int[] unionPos;
  final boolean[] outputMark;
  int rows;
  /** Rows that hold a request. */
  int count;
  int[] union;
  InferenceException failure;
  long computeStartNanos;
  long inputNanos;
  long inferNanos;
  long outputNanos;
  /** The dispatch owner has read this batch back (its sequences may run again); false from take to reclaim. */
  boolean reclaimed = true;
  Delivery[] deliveries = new Delivery[0];
  int deliveryCount;
  final AtomicInteger pendingDeliveries = new AtomicInteger();

  SequenceBatch(SequenceInstance instance, int slot, int maxRows, int signatureOutputs) {
    this.instance = instance;
    this.slot = slot;
    this.requests = new InferRequest[maxRows];
    this.sequences = new Sequence[maxRows];
    this.outputs = new Tensor[maxRows][];
    this.unionArrays = new int[signatureOutputs + 1][];
    for (int k = 0; k <= signatureOutputs; k++) {
      unionArrays[k] = new int[k];
    }
    this.unionPos = new int[signatureOutputs];
    this.outputMark = new boolean[signatureOutputs];
  }

  /** Dispatch owner, before filling. */
  void clear() {
    for (int r = 0; r < rows; r++) {
      requests[r] = null;
      sequences[r] = null;
      outputs[r] = null;
    }
    for (int g = 0; g < deliveryCount; g++) {
      deliveries[g].clear();
    }
    deliveryCount = 0;
    rows = 0;
    count = 0;
    union = null;
    failure = null;
    inputNanos = 0;
    inferNanos = 0;
    outputNanos = 0;
  }

  /** Dispatch owner: puts {@code request} of {@code sequence} in row {@code row} (null request: a not-ready row). */
  void set(int row, InferRequest request, Sequence sequence) {
    requests[row] = request;
    sequences[row] = sequence;
    rows = Math.max(rows, row + 1);
    if (request != null) {
      count++;
    }
  }

  /**
   * Dispatch owner: the union of the requests' outputs and every state output (the batcher must read
   * those), in signature order, without allocating.
   */
  void computeUnion(int[] stateOutputs) {
    boolean[] mark = outputMark;
    for (int r = 0; r < rows; r++) {
      if (requests[r] != null) {
        for (int index : requests[r].outputIndices()) {
          mark[index] = true;
        }
      }
    }
    for (int index : stateOutputs) {
      mark[index] = true;
    }
    int k = 0;
    for (boolean m : mark) {
      k += m ? 1 : 0;
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

  /** Completing thread: the delivery group of {@code transport}, created on first use and reused after. */
  Delivery deliveryFor(TransportExecutor transport, SequenceBatcher batcher) {
    for (int g = 0; g < deliveryCount; g++) {
      if (deliveries[g].transport == transport) {
        return deliveries[g];
      }
    }
    if (deliveryCount == deliveries.length) {
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

  /** The answers of one batch for one transport thread, delivered there as one task. */
  static final class Delivery implements Runnable {
    final SequenceBatch batch;
    final SequenceBatcher batcher;
    final int[] rows;
    int count;
    TransportExecutor transport;

    Delivery(SequenceBatch batch, SequenceBatcher batcher, int maxRows) {
      this.batch = batch;
      this.batcher = batcher;
      this.rows = new int[maxRows];
    }

    void add(int row) {
      rows[count++] = row;
    }

    void clear() {
      count = 0;
      transport = null;
    }

    @Override
    public void run() {
      batcher.deliverGroup(this);
    }
  }
}
