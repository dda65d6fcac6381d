package io.quiver.bench.perf;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.Channel;
import io.netty.channel.DefaultSelectStrategyFactory;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SelectStrategyFactory;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import java.util.concurrent.TimeUnit;

/**
 * The client side of a run: one gRPC connection served by one Netty event loop thread that this
 * class owns. Responses are handled on that thread (direct executor, as the server does), and the
 * open-loop sender runs there too, as scheduled tasks (timerfd under epoll: microsecond timers
 * without a second thread competing for the client's core). Also asks the control questions a run
 * needs before it starts (readiness, metadata): blocking, for the caller's thread only.
 */
public final class GrpcEndpoint implements AutoCloseable {
  /** Responses up to this size are accepted (gRPC's 4 MiB default is too small for big outputs). */
  public static final int MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

  private final EventLoopGroup group;
  private final ManagedChannel channel;

  private GrpcEndpoint(EventLoopGroup group, ManagedChannel channel) {
    this.group = group;
    this.channel = channel;
  }

  /** A plaintext channel to {@code host:port} on a one-thread event loop (epoll when available). */
  public static GrpcEndpoint open(String target) {
    return open(target, false);
  }

  /**
   * @param busyPoll whether the event loop polls without ever sleeping ({@link #newEventLoopGroup(boolean)})
   */
  public static GrpcEndpoint open(String target, boolean busyPoll) {
    int colon = target.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException("--url must be HOST:PORT; was '" + target + "'");
    }
    String host = target.substring(0, colon);
    int port = Integer.parseInt(target.substring(colon + 1));
    EventLoopGroup group = newEventLoopGroup(busyPoll);
    Class<? extends Channel> type = socketChannelType();
    ManagedChannel channel = NettyChannelBuilder.forAddress(host, port)
        .eventLoopGroup(group)
        .channelType(type)
        .usePlaintext()
        .directExecutor()
        .maxInboundMessageSize(MAX_MESSAGE_BYTES)
        .build();
    return new GrpcEndpoint(group, channel);
  }

  /**
   * A one-thread event loop group for the client (epoll when available). With {@code busyPoll} the
   * thread never sleeps in the kernel: each turn polls for I/O without waiting, then runs due tasks and
   * timers. Every answer and every send is then handled without a wake-up, which on these VMs costs
   * more client CPU than the request itself at a few thousand arrivals a second; the price is the
   * whole of the client's core, so the client's CPU per request means nothing in that mode.
   */
  static EventLoopGroup newEventLoopGroup(boolean busyPoll) {
    DefaultThreadFactory threads = new DefaultThreadFactory("perf-event-loop", true);
    SelectStrategyFactory strategy = busyPoll
        ? () -> (selectNow, hasTasks) -> selectNow.get() // never SelectStrategy.SELECT: no blocking wait
        : DefaultSelectStrategyFactory.INSTANCE;
    return Epoll.isAvailable()
        ? new EpollEventLoopGroup(1, threads, strategy)
        : new NioEventLoopGroup(1, threads, java.nio.channels.spi.SelectorProvider.provider(), strategy);
  }

  /** The socket channel type that goes with {@link #newEventLoopGroup(boolean)}. */
  static Class<? extends Channel> socketChannelType() {
    return Epoll.isAvailable() ? EpollSocketChannel.class : NioSocketChannel.class;
  }

  /** The event loop group (one thread) that serves this channel. */
  EventLoopGroup eventLoopGroup() {
    return group;
  }

  public ManagedChannel channel() {
    return channel;
  }

  /** The one event loop: the connection's I/O thread. */
  public EventLoop eventLoop() {
    return group.next();
  }

  /**
   * Waits until the model is ready, polling every 200 ms.
   *
   * @throws IllegalStateException when it is not ready within {@code timeoutNanos}
   */
  public void awaitModelReady(String model, String version, long timeoutNanos) throws InterruptedException {
    GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
    long deadline = System.nanoTime() + timeoutNanos;
    String last = "";
    while (true) {
      try {
        if (stub.withDeadlineAfter(2, TimeUnit.SECONDS)
            .modelReady(ModelReadyRequest.newBuilder().setName(model).setVersion(version).build()).getReady()) {
          return;
        }
        last = "model not ready";
      } catch (StatusRuntimeException e) {
        last = e.getStatus().toString();
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("model '" + model + "' not ready after waiting: " + last);
      }
      Thread.sleep(200);
    }
  }

  public ModelMetadataResponse metadata(String model, String version) {
    return GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .modelMetadata(ModelMetadataRequest.newBuilder().setName(model).setVersion(version).build());
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
  }
}
