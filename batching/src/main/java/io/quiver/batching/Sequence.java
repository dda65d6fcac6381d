package io.quiver.batching;

import io.quiver.core.InferRequest;
import io.quiver.core.SequenceControl;
import java.util.ArrayDeque;

/**
 * One live sequence of a {@link SequenceBatcher}: its queued requests, the instance slot it holds (or
 * none while it waits in the backlog), and its implicit state between requests.
 *
 * <p>Owned by the batcher's dispatch owner, except {@link #state} and {@link #stateValid}, which the
 * thread that runs the sequence's batch writes after the run; the batch is handed to that thread (the
 * compute pool's queue, or the same thread) after the owner set {@link #inFlight}, and handed back
 * through the batcher's finished-batch queue before the owner clears it: at most one thread touches
 * them at a time.
 */
final class Sequence {
  final Object key;
  /** The id as the first request gave it (the CORRID control's value). */
  final SequenceControl id;
  final ArrayDeque<InferRequest> pending = new ArrayDeque<>(4);
  /** The instance and slot it holds; null / -1 while in the backlog or after release. */
  SequenceInstance instance;
  int slot = -1;
  /** A request of it is in a batch that has not been taken back by the owner yet. */
  boolean inFlight;
  /** Its END request was queued: the id no longer maps to it; released once that request is done. */
  boolean ended;
  boolean released;
  /** When its last request was queued or finished (idle timeout). */
  long lastActivityNanos;
  /** Per state of the model, the last state output of this sequence (one row). */
  final byte[][] state;
  boolean stateValid;

  Sequence(SequenceControl id, int states, long now) {
    this.key = id.key();
    this.id = id;
    this.state = new byte[states][];
    this.lastActivityNanos = now;
  }

  @Override
  public String toString() {
    return "sequence " + id.describe();
  }
}
