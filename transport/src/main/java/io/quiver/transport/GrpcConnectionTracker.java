package io.quiver.transport;

import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.ServerTransportFilter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gives every gRPC connection its {@link GrpcConnection} (in the transport's attributes) once its client
 * has sent the HTTP/2 preface, which also ends the connection's handshake timer; at the end, releases
 * what waited on it and logs how many malformed messages it sent beyond the first. Thread-safe.
 */
final class GrpcConnectionTracker extends ServerTransportFilter {
  private static final Logger log = LoggerFactory.getLogger(GrpcConnectionTracker.class);

  private final ConnectionLimiter limiter; // null: no handshake timers to stop
  private final AnswerBudget budget; // null: no answer bound

  GrpcConnectionTracker(ConnectionLimiter limiter, AnswerBudget budget) {
    this.limiter = limiter;
    this.budget = budget;
  }

  @Override
  public Attributes transportReady(Attributes attributes) {
    var remote = attributes.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    if (limiter != null) {
      limiter.handshakeDone(remote);
    }
    return attributes.toBuilder().set(GrpcConnection.KEY, new GrpcConnection(remote)).build();
  }

  @Override
  public void transportTerminated(Attributes attributes) {
    GrpcConnection connection = attributes.get(GrpcConnection.KEY);
    if (connection == null) {
      return;
    }
    if (budget != null) {
      budget.closed(connection);
    }
    int malformed = connection.malformedMessages();
    if (malformed > 1) {
      log.debug("connection from {} closed after {} malformed request messages", connection.peer(), malformed);
    }
  }
}
