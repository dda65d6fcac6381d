package io.quiver.server;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapSetter;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.server.tracing.ServerTracing;

/**
 * Carries W3C trace context across ModelInfer and ModelStreamInfer calls: reads {@code traceparent} /
 * {@code tracestate} from the request metadata into a {@link CallTrace} that the handler finds in the
 * gRPC {@link Context}, and writes the server span's {@code traceparent} into the response headers (or
 * into the trailers of a call that fails before sending headers) so the client can correlate.
 *
 * <p>Installed on the inference service only while tracing is on; other methods pass through untouched.
 */
final class GrpcTracingInterceptor implements ServerInterceptor {
  static final Context.Key<CallTrace> CALL_TRACE = Context.key("quiver-call-trace");

  private static final TextMapGetter<Metadata> GETTER = new TextMapGetter<>() {
    @Override
    public Iterable<String> keys(Metadata carrier) {
      return carrier.keys();
    }

    @Override
    public String get(Metadata carrier, String key) {
      return carrier == null ? null : carrier.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
    }
  };
  private static final TextMapSetter<Metadata> SETTER =
      (carrier, key, value) -> carrier.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);

  private static final String MODEL_INFER = GRPCInferenceServiceGrpc.getModelInferMethod().getFullMethodName();
  private static final String MODEL_STREAM_INFER =
      GRPCInferenceServiceGrpc.getModelStreamInferMethod().getFullMethodName();

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    if (!method.equals(MODEL_INFER) && !method.equals(MODEL_STREAM_INFER)) {
      return next.startCall(call, headers);
    }
    CallTrace trace = new CallTrace(ServerTracing.extract(headers, GETTER));
    ServerCall<Q, R> traced = new SimpleForwardingServerCall<>(call) {
      private boolean headersSent; // the transport calls sendHeaders and close from one serialized context

      @Override
      public void sendHeaders(Metadata responseHeaders) {
        headersSent = true;
        ServerTracing.inject(trace.spanContext, responseHeaders, SETTER);
        super.sendHeaders(responseHeaders);
      }

      @Override
      public void close(Status status, Metadata trailers) {
        if (!headersSent) {
          ServerTracing.inject(trace.spanContext, trailers, SETTER);
        }
        super.close(status, trailers);
      }
    };
    return Contexts.interceptCall(Context.current().withValue(CALL_TRACE, trace), traced, headers, next);
  }

  /** One call's trace context: the caller's, and the first server span started in it (what the answer carries). */
  static final class CallTrace {
    final io.opentelemetry.context.Context parent;
    // Written on the event loop before the request is submitted; read by the thread that sends the
    // answer, which the scheduler's queue already orders after the write. Volatile for the stream case.
    volatile SpanContext spanContext;

    CallTrace(io.opentelemetry.context.Context parent) {
      this.parent = parent;
    }

    /** Remembers the span the response headers will name: the first one of the call. */
    void started(SpanContext span) {
      if (spanContext == null) {
        spanContext = span;
      }
    }
  }
}
