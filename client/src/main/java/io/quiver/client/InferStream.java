package io.quiver.client;

import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.Status;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelStreamInferResponse;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * One ModelStreamInfer stream: many requests over one HTTP/2 stream, each answered by a future. Made by
 * {@link QuiverClient#openStream}.
 *
 * <pre>{@code
 * try (InferStream stream = client.openStream()) {
 *   for (InferRequest r : requests) {
 *     stream.send(r).thenAccept(result -> use(result));   // waits while 64 requests are unanswered
 *   }
 *   stream.complete();                                    // no more requests
 *   stream.done().join();                                 // every answer arrived
 * }
 * }</pre>
 *
 * <p><b>Bounded memory.</b> At most {@code maxInFlight} requests are sent and not yet answered: {@link
 * #send} waits beyond that, and also while the transport's send buffer is full (gRPC's
 * {@code isReady()}), so a producer faster than the network or the server waits instead of queueing.
 * Answers are read one at a time: the next is read from the connection only after the previous one's
 * future has completed and its dependent actions (run on the delivering thread) have returned. A slow
 * consumer therefore slows the reading, HTTP/2 flow control slows the server, and nothing grows
 * without bound. For producers that must not block, {@link #trySend} returns null when there is no room
 * and {@link #onReady} says when there is.
 *
 * <p><b>Answers.</b> Correlated by request id: a request without one gets {@code s<N>}; two unanswered
 * requests may not share an id. An error the server answers in-band fails that request's future with a
 * {@link QuiverException} ({@link QuiverException#isInBand()}) and the stream goes on; a failure of the
 * stream itself fails every unanswered future and {@link #done()}.
 *
 * <p>Thread-safe: any thread may send. Futures complete on the client's executor, one answer at a
 * time; {@link #send} called from that delivering thread while the window is full would wait for an
 * answer only that thread can deliver, so it throws {@link IllegalStateException} instead (use
 * {@link #trySend} there). Cancelling one request's future does not cancel it on the server: a stream's
 * requests cannot be cancelled one by one; {@link #cancel()} cancels them all.
 */
public final class InferStream implements AutoCloseable {
  private final ClientCall<ModelInferRequest, ModelStreamInferResponse> call;
  private final int maxInFlight;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  // Guards every use of call (a ClientCall is not thread-safe) and the fields below; waits happen on it.
  private final Object lock = new Object();
  private final Map<String, CompletableFuture<InferResult>> pending = new HashMap<>();
  private long nextId;
  private boolean halfClosed;
  private QuiverException failure;
  private Runnable onReady;
  private volatile Thread delivering;

  InferStream(ClientCall<ModelInferRequest, ModelStreamInferResponse> call, int maxInFlight) {
    this.call = call;
    this.maxInFlight = maxInFlight;
    synchronized (lock) {
      call.start(new Listener(), new Metadata());
      call.request(1); // one answer at a time; the next is asked for once this one has been handled
    }
  }

  /**
   * Sends a request, waiting while {@code maxInFlight} requests are unanswered or the transport is not
   * ready. The returned future completes with the answer.
   *
   * @throws InterruptedException if interrupted while waiting (nothing was sent)
   * @throws QuiverException if the stream has failed
   * @throws IllegalStateException after {@link #complete()}, or when called from the delivering thread with no room
   * @throws IllegalArgumentException when an unanswered request already has this request's id
   */
  public CompletableFuture<InferResult> send(InferRequest request) throws InterruptedException {
    return send(request, true);
  }

  /** Like {@link #send}, but returns null at once instead of waiting when there is no room. */
  public CompletableFuture<InferResult> trySend(InferRequest request) {
    try {
      return send(request, false);
    } catch (InterruptedException e) {
      throw new AssertionError("trySend does not wait", e);
    }
  }

  private CompletableFuture<InferResult> send(InferRequest request, boolean wait) throws InterruptedException {
    ModelInferRequest message = request.toProto();
    CompletableFuture<InferResult> answer = new CompletableFuture<>();
    synchronized (lock) {
      while (true) {
        if (failure != null) {
          throw failure;
        }
        if (halfClosed) {
          throw new IllegalStateException("the stream was completed: no more requests can be sent");
        }
        if (pending.size() < maxInFlight && call.isReady()) {
          break;
        }
        if (!wait) {
          return null;
        }
        if (Thread.currentThread() == delivering) {
          throw new IllegalStateException("send() would wait for room that only this thread (the one delivering"
              + " answers) can make; use trySend() and onReady() in callbacks");
        }
        lock.wait();
      }
      String id = message.getId();
      if (id.isEmpty()) {
        id = "s" + (++nextId);
        message = message.toBuilder().setId(id).build();
      } else if (pending.containsKey(id)) {
        throw new IllegalArgumentException("request id '" + id + "' is already in flight on this stream");
      }
      pending.put(id, answer);
      call.sendMessage(message);
    }
    return answer;
  }

  /**
   * Runs {@code action} on the client's executor whenever room for another request may have appeared
   * (an answer arrived or the transport became ready). Replaces any earlier action.
   */
  public void onReady(Runnable action) {
    synchronized (lock) {
      this.onReady = action;
    }
  }

  /** Requests sent and not yet answered. */
  public int inFlight() {
    synchronized (lock) {
      return pending.size();
    }
  }

  /** The bound on {@link #inFlight()}. */
  public int maxInFlight() {
    return maxInFlight;
  }

  /** No more requests: the server completes the stream once it has answered every one. Idempotent. */
  public void complete() {
    synchronized (lock) {
      if (!halfClosed && failure == null && !done.isDone()) {
        halfClosed = true;
        call.halfClose();
      }
      halfClosed = true;
      lock.notifyAll();
    }
  }

  /** Cancels the stream: unanswered futures fail with CANCELLED and the server drops the stream. */
  public void cancel() {
    synchronized (lock) {
      call.cancel("cancelled by the caller", null);
    }
  }

  /** Completes when the server has completed the stream (normally, after {@link #complete()}), or fails with its error. */
  public CompletableFuture<Void> done() {
    return done;
  }

  /** Cancels the stream if it has not finished yet; after {@link #done()} completed, does nothing. */
  @Override
  public void close() {
    if (!done.isDone()) {
      cancel();
    }
  }

  /** Waits for {@link #done()} up to a timeout; true if the stream finished (normally or not). */
  public boolean awaitDone(long timeout, TimeUnit unit) throws InterruptedException {
    try {
      done.get(timeout, unit);
      return true;
    } catch (java.util.concurrent.ExecutionException e) {
      return true;
    } catch (java.util.concurrent.TimeoutException e) {
      return false;
    }
  }

  private final class Listener extends ClientCall.Listener<ModelStreamInferResponse> {
    @Override
    public void onMessage(ModelStreamInferResponse message) {
      String id = message.getInferResponse().getId();
      CompletableFuture<InferResult> answer;
      Runnable ready;
      synchronized (lock) {
        answer = pending.remove(id);
        ready = onReady;
        lock.notifyAll();
      }
      delivering = Thread.currentThread();
      try {
        if (answer != null) {
          // Dependent actions run here, inline: until they return, the next answer is not read.
          if (message.getErrorMessage().isEmpty()) {
            answer.complete(new InferResult(message.getInferResponse()));
          } else {
            answer.completeExceptionally(QuiverException.inBand(message.getErrorMessage(), id));
          }
        }
        if (ready != null) {
          ready.run();
        }
      } finally {
        delivering = null;
        synchronized (lock) {
          if (!done.isDone()) {
            call.request(1);
          }
        }
      }
    }

    @Override
    public void onReady() {
      Runnable ready;
      synchronized (lock) {
        ready = onReady;
        lock.notifyAll();
      }
      if (ready != null) {
        ready.run();
      }
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      List<CompletableFuture<InferResult>> unanswered;
      QuiverException error;
      synchronized (lock) {
        error = status.isOk() ? null : QuiverException.from(status, trailers, null);
        failure = error != null ? error : failure;
        unanswered = new ArrayList<>(pending.values());
        pending.clear();
        lock.notifyAll();
      }
      QuiverException forUnanswered = error != null ? error
          : QuiverException.of(Status.Code.INTERNAL, "the server completed the stream without answering this request");
      for (CompletableFuture<InferResult> answer : unanswered) {
        answer.completeExceptionally(forUnanswered);
      }
      if (error != null) {
        done.completeExceptionally(error);
      } else {
        done.complete(null);
      }
    }
  }
}
