package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;

/**
 * One formed batch, recycled through a pool. Ownership moves, never shared: the agent fills a free
 * batch and hands it to a worker ({@link InstanceWorker#assign}, a volatile publish); the worker
 * gathers, runs, scatters and completes it (possibly through the {@link CompletionSequencer}), then
 * returns it to the agent's free queue (an MPSC queue: release on offer, acquire on poll), where the
 * agent reads the measurements the worker left in it.
 */
final class Batch {
  final InferRequest[] requests;
  /** Per request, its outputs (filled by the worker on success; cleared on recycle). */
  final Tensor[][] outputs;
  /** Per request, its end-to-end latency in nanoseconds (filled when completed, read by the agent). */
  final long[] latencies;
  /** Signature output positions the runner is asked for; {@code unionArrays[k]} has length k. */
  final int[][] unionArrays;
  /** Signature output position to its index in the union, valid for positions in the union. */
  final int[] unionPos;
  /** Scratch mark per signature output while computing the union (agent only). */
  final boolean[] outputMark;

  int count;
  int rows;
  /** The agent closed the batch because it could not grow (or reached a preferred size). */
  boolean full;
  int[] union;
  long sequence;
  InferenceException failure;
  long inputNanos;
  long inferNanos;
  long outputNanos;
  long computeStartNanos;
  /** Set by the finishing worker; read by whichever worker completes batches in order. */
  volatile boolean finished;

  Batch(int maxRequests, int signatureOutputs) {
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

  /** Agent thread, before filling: forget the previous batch. */
  void clear() {
    for (int i = 0; i < count; i++) {
      requests[i] = null;
      outputs[i] = null;
    }
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

  /** Agent thread: computes the union of the requests' outputs, in signature order, without allocating. */
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
}
