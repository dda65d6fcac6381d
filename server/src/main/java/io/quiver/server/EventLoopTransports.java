package io.quiver.server;

import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.FastThreadLocal;
import io.quiver.core.spi.TransportExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The server's Netty event loops as {@link TransportExecutor}s, so that the batcher answers a batch with
 * one task per event loop (and the transports flush once per connection per batch). Each event loop
 * thread knows its own executor through a {@link FastThreadLocal} (an array slot on Netty's threads),
 * set once at start: a handler running on the loop finds it without any lookup by channel.
 *
 * <p>Thread-safe. {@link #install} once per event loop group, before the transports accept
 * connections.
 */
public final class EventLoopTransports {
  private static final FastThreadLocal<TransportExecutor> CURRENT = new FastThreadLocal<>();

  private EventLoopTransports() {}

  /** Gives every event loop of {@code group} its executor; blocks until each loop has it. */
  public static void install(EventLoopGroup group) {
    for (EventExecutor executor : group) {
      EventLoop loop = (EventLoop) executor;
      TransportExecutor transport = new Loop(loop);
      loop.submit(() -> CURRENT.set(transport)).syncUninterruptibly();
    }
  }

  /** The executor of the event loop running the caller, or null on any other thread. */
  public static TransportExecutor current() {
    return CURRENT.getIfExists();
  }

  private static final class Loop implements TransportExecutor {
    private final EventLoop loop;

    Loop(EventLoop loop) {
      this.loop = loop;
    }

    @Override
    public void execute(Runnable task) {
      loop.execute(task);
    }

    @Override
    public boolean inTransportThread() {
      return loop.inEventLoop();
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
      loop.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public String toString() {
      return "EventLoopTransport[" + loop + "]";
    }
  }
}
