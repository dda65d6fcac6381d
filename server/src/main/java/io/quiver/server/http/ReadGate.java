package io.quiver.server.http;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;

/**
 * Whether a REST connection is read, from several independent reasons to stop: the connection reads
 * only while none holds. Each reason is paused and resumed by its owner; reading resumes when the last
 * one is lifted. Applied on the connection's event loop (calls from other threads hop there).
 */
public final class ReadGate {
  /** Why a connection is not read. */
  public enum Reason {
    /** Requests a client pipelined behind an outstanding inference are held (RestHandler). */
    PIPELINED,
    /** A request is being worked on off the event loop (repository load/unload, console API). */
    WORKING,
    /** The connection's unsent answers are above the write-buffer high-water mark: the client is not reading. */
    BACKPRESSURE
  }

  private static final AttributeKey<int[]> PAUSED = AttributeKey.valueOf(ReadGate.class, "paused");

  private ReadGate() {}

  public static void pause(Channel channel, Reason reason) {
    apply(channel, reason, true);
  }

  public static void resume(Channel channel, Reason reason) {
    apply(channel, reason, false);
  }

  /** Whether the connection is held for this reason now. Event loop only. */
  static boolean paused(Channel channel, Reason reason) {
    int[] mask = channel.attr(PAUSED).get();
    return mask != null && (mask[0] & (1 << reason.ordinal())) != 0;
  }

  private static void apply(Channel channel, Reason reason, boolean pause) {
    if (!channel.eventLoop().inEventLoop()) {
      channel.eventLoop().execute(() -> apply(channel, reason, pause)); // off the hot path: allocates
      return;
    }
    int[] mask = channel.attr(PAUSED).get();
    if (mask == null) {
      if (!pause) {
        return;
      }
      mask = new int[1];
      channel.attr(PAUSED).set(mask);
    }
    int before = mask[0];
    int bit = 1 << reason.ordinal();
    mask[0] = pause ? before | bit : before & ~bit;
    if ((before == 0) != (mask[0] == 0)) {
      channel.config().setAutoRead(mask[0] == 0);
    }
  }
}
