package io.quiver.batching;

import io.quiver.core.spi.TransportExecutor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * A scheduler's dispatch rounds on transport threads: at most one round queued per transport thread at
 * a time, run after the work that thread is doing now (so the requests of one read form one batch), and
 * no wake-up when scheduled from the thread itself. Shared by the batchers (a round is whatever their
 * {@code round} consumer does on that thread).
 *
 * <p>Thread-safe. The list of transport threads seen is copy-on-write and grows once per transport
 * thread over the scheduler's life (a handful); scheduling allocates nothing.
 */
final class TransportRounds {
  private final Consumer<TransportExecutor> round;
  private final Runnable fallback;
  private volatile Round[] rounds = new Round[0];

  /**
   * @param round what a round does, on the transport thread it was scheduled for
   * @param fallback what to do instead when the transport refuses the task (it is shutting down)
   */
  TransportRounds(Consumer<TransportExecutor> round, Runnable fallback) {
    this.round = round;
    this.fallback = fallback;
  }

  /** Queues one round on {@code transport} unless one is queued there already. */
  void schedule(TransportExecutor transport) {
    roundFor(transport).schedule();
  }

  private Round roundFor(TransportExecutor transport) {
    Round[] seen = rounds;
    for (Round r : seen) {
      if (r.transport == transport) {
        return r;
      }
    }
    synchronized (this) { // once per transport thread in the scheduler's life
      seen = rounds;
      for (Round r : seen) {
        if (r.transport == transport) {
          return r;
        }
      }
      Round made = new Round(transport);
      Round[] grown = new Round[seen.length + 1];
      System.arraycopy(seen, 0, grown, 0, seen.length);
      grown[seen.length] = made;
      rounds = grown;
      return made;
    }
  }

  /** A dispatch round on one transport thread; at most one queued there at a time. */
  private final class Round implements Runnable {
    final TransportExecutor transport;
    private final AtomicBoolean scheduled = new AtomicBoolean();

    Round(TransportExecutor transport) {
      this.transport = transport;
    }

    void schedule() {
      if (!scheduled.get() && scheduled.compareAndSet(false, true)) {
        try {
          transport.execute(this); // from its own thread: queued behind the current work, no wake-up
        } catch (RejectedExecutionException e) {
          scheduled.set(false);
          fallback.run();
        }
      }
    }

    @Override
    public void run() {
      scheduled.set(false); // before dispatching: a request queued during this round schedules the next
      round.accept(transport);
    }
  }
}
