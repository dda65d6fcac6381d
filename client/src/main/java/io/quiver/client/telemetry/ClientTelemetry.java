package io.quiver.client.telemetry;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.context.propagation.TextMapSetter;
import io.quiver.proto.inference.ModelInferRequest;

/**
 * Client metrics and tracing through OpenTelemetry's API, as an interceptor:
 *
 * <pre>{@code
 * QuiverClient client = QuiverClient.builder().target("quiver:8001")
 *     .intercept(ClientTelemetry.interceptor(GlobalOpenTelemetry.get()))
 *     .build();
 * }</pre>
 *
 * <p>Per call: a CLIENT span named {@code inference.GRPCInferenceService/ModelInfer} (a child of the
 * caller's current span) with {@code rpc.system}, {@code rpc.service}, {@code rpc.method},
 * {@code rpc.grpc.status_code} and, for inference, {@code quiver.model}; the span's context sent to the
 * server as W3C {@code traceparent} (through the OpenTelemetry instance's propagators), so Quiver's
 * server span (with {@code --tracing}) continues the trace; and the call's duration in the histogram
 * {@code rpc.client.duration} (milliseconds, by service, method and status code). Costs one span and
 * a few small objects per call; with OpenTelemetry's no-op implementation, almost nothing. Thread-safe.
 */
public final class ClientTelemetry {
  static final String INSTRUMENTATION = "io.quiver.client";
  static final AttributeKey<String> RPC_SYSTEM = AttributeKey.stringKey("rpc.system");
  static final AttributeKey<String> RPC_SERVICE = AttributeKey.stringKey("rpc.service");
  static final AttributeKey<String> RPC_METHOD = AttributeKey.stringKey("rpc.method");
  static final AttributeKey<Long> RPC_STATUS = AttributeKey.longKey("rpc.grpc.status_code");
  static final AttributeKey<String> MODEL = AttributeKey.stringKey("quiver.model");

  private static final TextMapSetter<Metadata> METADATA_SETTER =
      (headers, key, value) -> headers.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), value);

  private ClientTelemetry() {}

  /** An interceptor recording spans and durations with this OpenTelemetry instance. */
  public static ClientInterceptor interceptor(OpenTelemetry openTelemetry) {
    return new Interceptor(openTelemetry);
  }

  private static final class Interceptor implements ClientInterceptor {
    private final Tracer tracer;
    private final DoubleHistogram duration;
    private final TextMapPropagator propagator;

    Interceptor(OpenTelemetry openTelemetry) {
      this.tracer = openTelemetry.getTracer(INSTRUMENTATION);
      this.duration = openTelemetry.getMeter(INSTRUMENTATION).histogramBuilder("rpc.client.duration")
          .setUnit("ms").setDescription("Duration of client calls, from start to close").build();
      this.propagator = openTelemetry.getPropagators().getTextMapPropagator();
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      String service = method.getServiceName();
      String name = method.getBareMethodName();
      Span span = tracer.spanBuilder(method.getFullMethodName())
          .setSpanKind(SpanKind.CLIENT)
          .setAttribute(RPC_SYSTEM, "grpc")
          .setAttribute(RPC_SERVICE, service == null ? "" : service)
          .setAttribute(RPC_METHOD, name == null ? "" : name)
          .startSpan();
      Context context = Context.current().with(span);
      long start = System.nanoTime();
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        private boolean modelNamed;

        @Override
        public void start(Listener<R> listener, Metadata headers) {
          propagator.inject(context, headers, METADATA_SETTER);
          super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
            @Override
            public void onClose(Status status, Metadata trailers) {
              long code = status.getCode().value();
              span.setAttribute(RPC_STATUS, code);
              if (!status.isOk()) {
                span.setStatus(StatusCode.ERROR, status.getCode() + (status.getDescription() == null ? ""
                    : ": " + status.getDescription()));
              }
              span.end();
              duration.record((System.nanoTime() - start) / 1e6, Attributes.of(RPC_SYSTEM, "grpc",
                  RPC_SERVICE, service == null ? "" : service, RPC_METHOD, name == null ? "" : name, RPC_STATUS, code));
              super.onClose(status, trailers);
            }
          }, headers);
        }

        @Override
        public void sendMessage(Q message) {
          if (!modelNamed && message instanceof ModelInferRequest request) {
            modelNamed = true;
            span.setAttribute(MODEL, request.getModelName());
          }
          super.sendMessage(message);
        }
      };
    }
  }
}
