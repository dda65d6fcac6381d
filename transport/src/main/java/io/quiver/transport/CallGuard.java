package io.quiver.transport;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.KnownLength;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.core.InferenceException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongFieldUpdater;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Wraps every method of a gRPC service so that what a careless or hostile client sends is answered
 * cleanly and cheaply:
 *
 * <ul>
 *   <li><b>Unparseable messages are INVALID_ARGUMENT.</b> grpc-java turns an exception from a request
 *       marshaller into UNKNOWN ("Application error processing RPC") and a SEVERE log line with a stack
 *       trace, per message. Here the request marshaller never throws: a message that does not parse
 *       becomes a per-method sentinel instance, and the call's listener answers it with INVALID_ARGUMENT
 *       and a short reason. One WARN line per connection (and at most one a second in all) tells the
 *       operator; further ones are counted.</li>
 *   <li><b>Calls already past their deadline</b> are answered DEADLINE_EXCEEDED before their message is
 *       read or parsed.</li>
 *   <li><b>Unsent answers are bounded</b> (with an {@link AnswerBudget}): an answer still queued in the
 *       transport after its send is charged to the connection and credited when the stream drains or the
 *       call ends; while the connection is over its bound, message requests of its calls are held back
 *       (its streams are not read), new calls get RESOURCE_EXHAUSTED with RetryInfo before their message
 *       is parsed, and an answer about to be sent is dropped and its call reset with RESOURCE_EXHAUSTED
 *       (so requests read before the bound was reached cannot push it further than one answer).</li>
 *   <li>An exception escaping a handler is INTERNAL with the exception's class only (rate-limited log),
 *       never UNKNOWN.</li>
 * </ul>
 *
 * <p>Cost per call: one listener object (and, with a budget, one call wrapper); per answer an
 * {@code isReady()} check. Thread-safe and stateless apart from counters.
 */
public final class CallGuard {
  private static final Logger log = LoggerFactory.getLogger(CallGuard.class);
  private static final RateLimitedLog MALFORMED_LOG = new RateLimitedLog(log, 1, TimeUnit.SECONDS);
  private static final RateLimitedLog HANDLER_FAILURE_LOG = new RateLimitedLog(log, 1, TimeUnit.SECONDS);
  /** The retry hint sent with a refusal for a connection over its answer bound. */
  static final long BUDGET_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
  /** Longest parse-failure reason put into a status message. */
  private static final int MAX_REASON_CHARS = 120;
  /**
   * The reason the last parse on this thread failed. grpc-java parses a message and hands it to the
   * call's listener in one go on one thread, so the listener finds the reason of its own sentinel here.
   */
  private static final ThreadLocal<String> PARSE_FAILURE = new ThreadLocal<>();
  private static final AtomicLong MALFORMED = new AtomicLong();

  private CallGuard() {}

  /** The service with every method guarded; no answer bound. */
  public static ServerServiceDefinition guard(ServerServiceDefinition service) {
    return guard(service, null);
  }

  /**
   * The service with every method guarded (schema descriptor and handlers otherwise unchanged, so
   * reflection still describes it).
   *
   * @param budget the bound on unsent answers of each connection; null = none
   */
  public static ServerServiceDefinition guard(ServerServiceDefinition service, AnswerBudget budget) {
    ServiceDescriptor original = service.getServiceDescriptor();
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
        .setSchemaDescriptor(original.getSchemaDescriptor());
    List<ServerMethodDefinition<?, ?>> guarded = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> method : service.getMethods()) {
      ServerMethodDefinition<?, ?> g = guardMethod(method, budget);
      guarded.add(g);
      descriptor.addMethod(g.getMethodDescriptor());
    }
    ServerServiceDefinition.Builder builder = ServerServiceDefinition.builder(descriptor.build());
    for (ServerMethodDefinition<?, ?> method : guarded) {
      builder.addMethod(method);
    }
    return builder.build();
  }

  /** Malformed request messages answered INVALID_ARGUMENT since the process started (all services). */
  public static long malformedMessages() {
    return MALFORMED.get();
  }

  private static <Q, R> ServerMethodDefinition<Q, R> guardMethod(ServerMethodDefinition<Q, R> method,
      AnswerBudget budget) {
    MethodDescriptor<Q, R> descriptor = method.getMethodDescriptor();
    Q sentinel = null;
    if (descriptor.getRequestMarshaller() instanceof MethodDescriptor.PrototypeMarshaller<Q> prototyped
        && prototyped.getMessagePrototype() instanceof MessageLite prototype) {
      @SuppressWarnings("unchecked")
      Q fresh = (Q) prototype.newBuilderForType().buildPartial(); // a distinct instance: compared by identity
      if (fresh != prototype) {
        sentinel = fresh;
        descriptor = descriptor.toBuilder()
            .setRequestMarshaller(new SafeMarshaller<>(prototyped, sentinel))
            .build();
      }
    }
    return ServerMethodDefinition.create(descriptor,
        new GuardedHandler<>(method.getServerCallHandler(), sentinel, descriptor.getBareMethodName(), budget));
  }

  /** A request marshaller that never throws: what does not parse becomes the sentinel. */
  private static final class SafeMarshaller<T> implements MethodDescriptor.PrototypeMarshaller<T> {
    private final MethodDescriptor.PrototypeMarshaller<T> delegate;
    private final T sentinel;

    SafeMarshaller(MethodDescriptor.PrototypeMarshaller<T> delegate, T sentinel) {
      this.delegate = delegate;
      this.sentinel = sentinel;
    }

    @Override
    public T getMessagePrototype() {
      return delegate.getMessagePrototype();
    }

    @Override
    public Class<T> getMessageClass() {
      return delegate.getMessageClass();
    }

    @Override
    public InputStream stream(T value) {
      return delegate.stream(value);
    }

    @Override
    public T parse(InputStream stream) {
      try {
        return delegate.parse(stream);
      } catch (RuntimeException | StackOverflowError e) {
        PARSE_FAILURE.set(reason(e));
        return sentinel;
      }
    }
  }

  /** A short reason for a parse failure: protobuf's first sentence, without stack or class names. */
  static String reason(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof InvalidProtocolBufferException && t.getMessage() != null) {
        return shorten(t.getMessage());
      }
    }
    if (e instanceof StackOverflowError) {
      return "the message nests too deeply";
    }
    String message = e instanceof io.grpc.StatusRuntimeException s ? s.getStatus().getDescription() : e.getMessage();
    return message == null ? "unreadable message" : shorten(message);
  }

  private static String shorten(String message) {
    int end = message.indexOf(". ");
    String first = end > 0 ? message.substring(0, end + 1) : message;
    return first.length() > MAX_REASON_CHARS ? first.substring(0, MAX_REASON_CHARS) + "..." : first;
  }

  private static final ServerCall.Listener<Object> NOTHING = new ServerCall.Listener<>() {};

  @SuppressWarnings("unchecked")
  private static <Q> ServerCall.Listener<Q> nothing() {
    return (ServerCall.Listener<Q>) NOTHING;
  }

  private static final class GuardedHandler<Q, R> implements ServerCallHandler<Q, R> {
    private final ServerCallHandler<Q, R> next;
    private final Q sentinel; // null: messages of this method are not guarded (not protobuf)
    private final String method;
    private final AnswerBudget budget;

    GuardedHandler(ServerCallHandler<Q, R> next, Q sentinel, String method, AnswerBudget budget) {
      this.next = next;
      this.sentinel = sentinel;
      this.method = method;
      this.budget = budget;
    }

    @Override
    public ServerCall.Listener<Q> startCall(ServerCall<Q, R> call, Metadata headers) {
      GrpcConnection connection = call.getAttributes() == null ? null : call.getAttributes().get(GrpcConnection.KEY);
      Deadline deadline = Context.current().getDeadline();
      if (deadline != null && deadline.isExpired()) {
        closeQuietly(call, InferenceException.deadlineExceeded("%s: the call's deadline had passed when it arrived",
            method));
        return nothing();
      }
      CountingCall<Q, R> counting = null;
      if (budget != null && connection != null) {
        if (budget.exhausted(connection)) {
          closeQuietly(call, InferenceException.resourceExhausted(BUDGET_RETRY_NANOS,
              "%s: this connection holds %d bytes of answers its client has not read (limit %d); read them, or"
                  + " retry later", method, connection.pendingAnswerBytes(), budget.perConnection()));
          return nothing();
        }
        counting = new CountingCall<>(call, connection, budget);
      }
      ServerCall.Listener<Q> inner = next.startCall(counting != null ? counting : call, headers);
      return new GuardedListener<>(inner, call, sentinel, method, connection, counting);
    }
  }

  private static void closeQuietly(ServerCall<?, ?> call, Throwable error) {
    try {
      GrpcErrors.close(call, error);
    } catch (IllegalStateException e) {
      // already closed (a handler answered before it threw, or the client cancelled)
    }
  }

  /** The listener in front of the handler's: sentinels, handler failures, answer credits. */
  private static final class GuardedListener<Q, R> extends ForwardingServerCallListener.SimpleForwardingServerCallListener<Q> {
    private final ServerCall<Q, R> call;
    private final Q sentinel;
    private final String method;
    private final GrpcConnection connection;
    private final CountingCall<Q, R> counting;
    private boolean rejected; // transport thread (or the call's serializing executor) only

    GuardedListener(ServerCall.Listener<Q> delegate, ServerCall<Q, R> call, Q sentinel, String method,
        GrpcConnection connection, CountingCall<Q, R> counting) {
      super(delegate);
      this.call = call;
      this.sentinel = sentinel;
      this.method = method;
      this.connection = connection;
      this.counting = counting;
    }

    @Override
    public void onMessage(Q message) {
      if (rejected) {
        return;
      }
      if (message == sentinel) {
        reject();
        return;
      }
      try {
        super.onMessage(message);
      } catch (RuntimeException e) {
        handlerFailed(e);
      }
    }

    @Override
    public void onHalfClose() {
      if (rejected) {
        return;
      }
      try {
        super.onHalfClose();
      } catch (RuntimeException e) {
        handlerFailed(e);
      }
    }

    @Override
    public void onReady() {
      if (counting != null) {
        counting.creditAll();
      }
      if (!rejected) {
        super.onReady();
      }
    }

    @Override
    public void onCancel() {
      if (counting != null) {
        counting.creditAll();
      }
      super.onCancel();
    }

    @Override
    public void onComplete() {
      if (counting != null) {
        counting.creditAll();
      }
      super.onComplete();
    }

    private void reject() {
      rejected = true;
      String reason = PARSE_FAILURE.get();
      PARSE_FAILURE.remove();
      if (reason == null) {
        reason = "unreadable message";
      }
      MALFORMED.incrementAndGet();
      if (connection == null || connection.malformedMessages.getAndIncrement() == 0) {
        MALFORMED_LOG.warn("malformed request message for {} from {}: {} (answered INVALID_ARGUMENT; later ones on"
            + " this connection are counted, not logged)", method, connection == null ? "a client" : connection.peer(),
            reason);
      }
      try {
        call.close(Status.INVALID_ARGUMENT.withDescription(
            "the request message of " + method + " is not a valid protobuf message: " + reason), new Metadata());
      } catch (IllegalStateException e) {
        // already closed
      }
    }

    private void handlerFailed(RuntimeException e) {
      rejected = true;
      HANDLER_FAILURE_LOG.warn("handler of {} failed: {}", method, e.toString());
      log.debug("handler of {} failed", method, e);
      closeQuietly(call, e);
    }
  }

  /** Charges answers the transport still holds after their send; holds back message requests while over the bound. */
  private static final class CountingCall<Q, R> extends ForwardingServerCall.SimpleForwardingServerCall<Q, R> {
    private static final AtomicLongFieldUpdater<CountingCall<?, ?>> CHARGED = updater();

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static AtomicLongFieldUpdater<CountingCall<?, ?>> updater() {
      return (AtomicLongFieldUpdater) AtomicLongFieldUpdater.newUpdater(CountingCall.class, "charged");
    }

    private final GrpcConnection connection;
    private final AnswerBudget budget;
    private volatile long charged;
    private volatile boolean reset; // closed by the guard; the handler's later sends and close are dropped
    private int heldRequests; // guarded by this
    private boolean awaiting; // guarded by this
    private final Runnable resume = this::resume;

    CountingCall(ServerCall<Q, R> delegate, GrpcConnection connection, AnswerBudget budget) {
      super(delegate);
      this.connection = connection;
      this.budget = budget;
    }

    @Override
    public void sendMessage(R message) {
      if (reset) {
        return; // this call was reset for its connection's unread answers: nothing more goes out
      }
      if (connection.pendingAnswerBytes.get() > budget.perConnection()) {
        // The connection already holds more unread answers than allowed: this answer is dropped and its
        // call reset, rather than queued after the others (the bound holds whatever was read before).
        reset = true;
        StatusRuntimeException refusal = GrpcErrors.toStatus(InferenceException.resourceExhausted(BUDGET_RETRY_NANOS,
            "this connection holds %d bytes of answers its client has not read (limit %d); the answer was dropped",
            connection.pendingAnswerBytes(), budget.perConnection()));
        super.close(refusal.getStatus(), refusal.getTrailers() == null ? new Metadata() : refusal.getTrailers());
        return;
      }
      long size = sizeOf(message); // before the send: a stream answer is drained by it
      super.sendMessage(message);
      // Still ready: the transport holds less than its on-ready threshold for this stream; nothing to charge.
      if (size > 0 && !isReady()) {
        CHARGED.addAndGet(this, size);
        budget.charge(connection, size);
      }
    }

    @Override
    public void close(Status status, Metadata trailers) {
      if (!reset) {
        super.close(status, trailers);
      }
    }

    @Override
    public void request(int numMessages) {
      if (budget.exhausted(connection)) {
        boolean register;
        synchronized (this) {
          heldRequests += numMessages;
          register = !awaiting;
          awaiting = true;
        }
        if (register) {
          budget.await(connection, resume);
        }
        return;
      }
      super.request(numMessages);
    }

    /** The connection drained (or closed): pass on the requests held back. */
    private void resume() {
      int n;
      synchronized (this) {
        awaiting = false;
        n = heldRequests;
        heldRequests = 0;
      }
      if (n > 0) {
        request(n); // still over the bound: held again
      }
    }

    void creditAll() {
      long amount = CHARGED.getAndSet(this, 0);
      if (amount > 0) {
        budget.credit(connection, amount);
      }
    }

    private static long sizeOf(Object message) {
      if (message instanceof MessageLite m) {
        return m.getSerializedSize();
      }
      if (message instanceof KnownLength && message instanceof InputStream in) {
        try {
          return in.available();
        } catch (IOException e) {
          return 0;
        }
      }
      return 0;
    }
  }
}
