package io.quiver.transport;

import io.grpc.Attributes;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What Quiver keeps about one gRPC connection (an HTTP/2 transport): its peer, the answer bytes it holds
 * unsent (see {@link AnswerBudget}), the tasks waiting for those to drain, and how many malformed
 * messages it sent. Installed in the transport's attributes by {@link GrpcConnectionTracker}; calls
 * find it with {@code call.getAttributes().get(GrpcConnection.KEY)}. Thread-safe: counters are atomics,
 * the waiters are guarded by this object.
 */
public final class GrpcConnection {
  /** The transport attribute under which each connection's object lives. */
  public static final Attributes.Key<GrpcConnection> KEY = Attributes.Key.create("quiver.connection");

  private final String peer;
  final AtomicLong pendingAnswerBytes = new AtomicLong();
  final AtomicInteger malformedMessages = new AtomicInteger();
  private ArrayDeque<Runnable> waiters; // guarded by this; created on first use
  volatile boolean waiting; // a cheap "any waiters?" for the crediting path
  volatile boolean closed;

  GrpcConnection(SocketAddress remote) {
    this.peer = remote == null ? "unknown" : remote.toString();
  }

  /** The remote address, for logs. */
  public String peer() {
    return peer;
  }

  /** Answer bytes given to the transport and not yet sent (an estimate from above). */
  public long pendingAnswerBytes() {
    return pendingAnswerBytes.get();
  }

  /** Malformed messages this connection sent so far. */
  public int malformedMessages() {
    return malformedMessages.get();
  }

  /** Queues a task to run once the connection's answers have drained below its bound (or it closed). */
  void await(Runnable task) {
    synchronized (this) {
      if (!closed) {
        if (waiters == null) {
          waiters = new ArrayDeque<>(4);
        }
        waiters.add(task);
        waiting = true;
        return;
      }
    }
    task.run();
  }

  /** Takes every waiting task (to run outside the lock), or null. */
  Runnable[] takeWaiters() {
    synchronized (this) {
      if (waiters == null || waiters.isEmpty()) {
        waiting = false;
        return null;
      }
      Runnable[] out = waiters.toArray(new Runnable[0]);
      waiters.clear();
      waiting = false;
      return out;
    }
  }
}
