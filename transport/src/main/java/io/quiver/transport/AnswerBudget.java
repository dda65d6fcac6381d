package io.quiver.transport;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The bound on answer bytes that gRPC connections hold given to the transport but not yet sent, per
 * connection and over all of them. A client that does not read its answers fills its HTTP/2 flow-control
 * window, and then gRPC queues whatever the server sends; without a bound a few such clients hold the
 * server's memory. {@link CallGuard} charges an answer when the transport still holds it after the send
 * (the stream is not ready), and credits it when the stream becomes ready again or the call ends. While a
 * connection is over its bound (or all are over theirs together), its streams are not read any further and
 * its new calls are refused with RESOURCE_EXHAUSTED. Thread-safe, lock-free on the answer path.
 */
public final class AnswerBudget {
  private final long perConnection;
  private final long total;
  private final AtomicLong used = new AtomicLong();
  /** Connections with tasks waiting while the total bound was the reason. */
  private final ConcurrentLinkedQueue<GrpcConnection> blockedByTotal = new ConcurrentLinkedQueue<>();

  public AnswerBudget(long perConnection, long total) {
    if (perConnection < 1 || total < 1) {
      throw new IllegalArgumentException("answer bounds must be >= 1 byte");
    }
    this.perConnection = perConnection;
    this.total = total;
  }

  public static AnswerBudget of(ConnectionOptions options) {
    return new AnswerBudget(options.maxPendingAnswerBytesPerConnection(), options.maxPendingAnswerBytes());
  }

  /** Whether the connection (or all connections together) holds more unsent answer bytes than allowed. */
  public boolean exhausted(GrpcConnection connection) {
    return connection.pendingAnswerBytes.get() > perConnection || used.get() > total;
  }

  /** Unsent answer bytes over all connections (an estimate from above). */
  public long used() {
    return used.get();
  }

  public long perConnection() {
    return perConnection;
  }

  void charge(GrpcConnection connection, long bytes) {
    connection.pendingAnswerBytes.addAndGet(bytes);
    used.addAndGet(bytes);
  }

  void credit(GrpcConnection connection, long bytes) {
    connection.pendingAnswerBytes.addAndGet(-bytes);
    long inUse = used.addAndGet(-bytes);
    if (connection.waiting && !exhausted(connection)) {
      release(connection);
    }
    if (inUse <= total && !blockedByTotal.isEmpty()) {
      GrpcConnection blocked;
      while (used.get() <= total && (blocked = blockedByTotal.poll()) != null) {
        if (blocked.waiting && !exhausted(blocked)) {
          release(blocked);
        }
      }
    }
  }

  /** Runs {@code task} once the connection is within its bounds again (at once when it already is). */
  void await(GrpcConnection connection, Runnable task) {
    connection.await(task);
    if (used.get() > total) {
      blockedByTotal.add(connection);
    }
    // A credit may have come between the caller's check and the registration: look again.
    if (!exhausted(connection)) {
      release(connection);
    }
  }

  /** The connection is gone: its waiting tasks run now (they find their calls closed). */
  void closed(GrpcConnection connection) {
    connection.closed = true;
    release(connection);
  }

  private static void release(GrpcConnection connection) {
    Runnable[] tasks = connection.takeWaiters();
    if (tasks != null) {
      for (Runnable task : tasks) {
        task.run();
      }
    }
  }
}
