package io.quiver.transport;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts open connections over every port of the process, in all and per remote IP address, and refuses
 * those past {@link ConnectionOptions#maxConnections()} or {@link ConnectionOptions#maxConnectionsPerAddress()}.
 * Also keeps the handshake timers of gRPC connections whose HTTP/2 preface has not arrived yet, so that
 * the transport filter can stop them when it does. Thread-safe: an atomic total, a concurrent map per
 * address (entries removed when they reach 0).
 */
public final class ConnectionLimiter {
  private final int max;
  private final int maxPerAddress;
  private final AtomicInteger open = new AtomicInteger();
  private final ConcurrentHashMap<InetAddress, AtomicInteger> perAddress = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<SocketAddress, Future<?>> handshakes = new ConcurrentHashMap<>();

  public ConnectionLimiter(int max, int maxPerAddress) {
    this.max = max;
    this.maxPerAddress = maxPerAddress;
  }

  public static ConnectionLimiter of(ConnectionOptions options) {
    return new ConnectionLimiter(options.maxConnections(), options.maxConnectionsPerAddress());
  }

  /** Counts a new connection, or returns false (counting nothing) when a limit is reached. */
  public boolean tryAcquire(SocketAddress remote) {
    if (open.incrementAndGet() > max) {
      open.decrementAndGet();
      return false;
    }
    InetAddress address = address(remote);
    if (address != null) {
      boolean[] admitted = {false};
      perAddress.compute(address, (k, count) -> {
        AtomicInteger c = count == null ? new AtomicInteger() : count;
        if (c.get() < maxPerAddress) {
          c.incrementAndGet();
          admitted[0] = true;
        }
        return c.get() == 0 ? null : c;
      });
      if (!admitted[0]) {
        open.decrementAndGet();
        return false;
      }
    }
    return true;
  }

  /** Forgets a connection counted by {@link #tryAcquire}. */
  public void release(SocketAddress remote) {
    open.decrementAndGet();
    InetAddress address = address(remote);
    if (address != null) {
      perAddress.computeIfPresent(address, (k, count) -> count.decrementAndGet() <= 0 ? null : count);
    }
  }

  /** Open connections over all ports. */
  public int open() {
    return open.get();
  }

  /** Open connections from one address. */
  public int open(InetAddress address) {
    AtomicInteger count = perAddress.get(address);
    return count == null ? 0 : count.get();
  }

  public int max() {
    return max;
  }

  public int maxPerAddress() {
    return maxPerAddress;
  }

  void awaitHandshake(SocketAddress remote, Future<?> timer) {
    if (remote != null) {
      handshakes.put(remote, timer);
    }
  }

  /** The connection from {@code remote} finished its handshake: its timer stops. */
  void handshakeDone(SocketAddress remote) {
    if (remote != null) {
      Future<?> timer = handshakes.remove(remote);
      if (timer != null) {
        timer.cancel(false);
      }
    }
  }

  void forgetHandshake(SocketAddress remote, Future<?> timer) {
    if (remote != null) {
      handshakes.remove(remote, timer);
    }
  }

  private static InetAddress address(SocketAddress remote) {
    return remote instanceof InetSocketAddress inet ? inet.getAddress() : null;
  }
}
