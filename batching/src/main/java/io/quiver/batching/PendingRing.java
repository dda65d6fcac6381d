package io.quiver.batching;

import io.quiver.core.InferRequest;

/**
 * A FIFO of requests the agent has taken off its MPSC queue, with each one's queue-policy deadline
 * beside it. Owned by the agent thread alone (not thread-safe). Grows by doubling up to
 * {@code maxCapacity} (the level's queue bound, which admission control guarantees is never
 * exceeded), so steady state allocates nothing.
 */
final class PendingRing {
  private static final int INITIAL_CAPACITY = 64;

  private final int maxCapacity;
  private InferRequest[] requests;
  private long[] policyDeadlines;
  private int mask;
  private int head;
  private int size;

  PendingRing(int maxCapacity) {
    this.maxCapacity = maxCapacity;
    int capacity = Math.min(INITIAL_CAPACITY, ceilPow2(maxCapacity));
    this.requests = new InferRequest[capacity];
    this.policyDeadlines = new long[capacity];
    this.mask = capacity - 1;
  }

  int size() {
    return size;
  }

  boolean isEmpty() {
    return size == 0;
  }

  InferRequest get(int i) {
    return requests[(head + i) & mask];
  }

  long policyDeadline(int i) {
    return policyDeadlines[(head + i) & mask];
  }

  void addLast(InferRequest request, long policyDeadline) {
    if (size == requests.length) {
      grow();
    }
    int slot = (head + size) & mask;
    requests[slot] = request;
    policyDeadlines[slot] = policyDeadline;
    size++;
  }

  /** Removes the first {@code n} entries. */
  void removeFirst(int n) {
    for (int i = 0; i < n; i++) {
      requests[(head + i) & mask] = null; // let completed requests be collected
    }
    head = (head + n) & mask;
    size -= n;
  }

  /** Overwrites entry {@code i} in place (used by compaction). */
  void set(int i, InferRequest request, long policyDeadline) {
    int slot = (head + i) & mask;
    requests[slot] = request;
    policyDeadlines[slot] = policyDeadline;
  }

  /** Keeps the first {@code newSize} entries (after the caller compacted them to the front). */
  void truncate(int newSize) {
    for (int i = newSize; i < size; i++) {
      requests[(head + i) & mask] = null;
    }
    size = newSize;
  }

  private void grow() {
    int capacity = requests.length << 1;
    if (capacity > ceilPow2(maxCapacity) || capacity <= 0) {
      throw new IllegalStateException("pending ring over its bound " + maxCapacity); // admission control broke
    }
    InferRequest[] r = new InferRequest[capacity];
    long[] d = new long[capacity];
    for (int i = 0; i < size; i++) {
      r[i] = requests[(head + i) & mask];
      d[i] = policyDeadlines[(head + i) & mask];
    }
    requests = r;
    policyDeadlines = d;
    mask = capacity - 1;
    head = 0;
  }

  private static int ceilPow2(int n) {
    return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
  }
}
