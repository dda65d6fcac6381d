package io.quiver.client;

import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.Status;

/**
 * A client-streaming call whose {@link #send} waits until the transport is ready for another message
 * (gRPC's {@code isReady()}), so that a sender faster than the network holds about one message in memory
 * instead of queueing everything. Used by one sending thread; the listener runs on the client's executor.
 */
final class FlowControlledCall<Q, R> {
  private final ClientCall<Q, R> call;
  private final Object lock = new Object();
  // Guarded by lock.
  private R response;
  private Status status;
  private Metadata trailers;

  FlowControlledCall(ClientCall<Q, R> call) {
    this.call = call;
    synchronized (lock) {
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onMessage(R message) {
          synchronized (lock) {
            response = message;
          }
        }

        @Override
        public void onReady() {
          synchronized (lock) {
            lock.notifyAll();
          }
        }

        @Override
        public void onClose(Status closing, Metadata closingTrailers) {
          synchronized (lock) {
            status = closing;
            trailers = closingTrailers;
            lock.notifyAll();
          }
        }
      }, new Metadata());
      call.request(2);
    }
  }

  /** Sends once the transport is ready; throws the call's error if it already ended. */
  void send(Q message) throws InterruptedException {
    synchronized (lock) {
      while (status == null && !call.isReady()) {
        lock.wait();
      }
      if (status != null) {
        throw failure();
      }
      call.sendMessage(message);
    }
  }

  /** Half-closes and waits for the answer. */
  R finish() throws InterruptedException {
    synchronized (lock) {
      if (status == null) {
        call.halfClose();
      }
      while (status == null) {
        lock.wait();
      }
      if (!status.isOk()) {
        throw failure();
      }
      if (response == null) {
        throw QuiverException.of(Status.Code.INTERNAL, "the server closed the call without a response");
      }
      return response;
    }
  }

  void cancel(String why, Throwable cause) {
    synchronized (lock) {
      call.cancel(why, cause);
    }
  }

  private QuiverException failure() {
    return status.isOk()
        ? QuiverException.of(Status.Code.INTERNAL, "the server answered before the upload was complete")
        : QuiverException.from(status, trailers, null);
  }
}
