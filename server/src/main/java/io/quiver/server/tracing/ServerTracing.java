package io.quiver.server.tracing;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapSetter;
import io.opentelemetry.exporter.logging.LoggingSpanExporter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.SpanProcessor;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import java.time.Instant;
import java.util.concurrent.TimeUnit;

/**
 * One server span per inference request, continued from the caller's W3C {@code traceparent} /
 * {@code tracestate}, with child spans for the time queued and the model execution.
 *
 * <p>Exists only while tracing is on: when it is off the server holds {@code null} instead, creates
 * no OpenTelemetry SDK object, and the request path pays a null check. Thread-safe: spans are started
 * on event loops and finished on batcher threads.
 *
 * <p>Timestamps: every span time is a {@link System#nanoTime()} reading (the batcher's enqueue time,
 * the runner's start and end) converted to epoch nanoseconds through one anchor taken at start, so
 * the server span and its children share one monotonic clock.
 */
public final class ServerTracing implements AutoCloseable {
  public static final String INSTRUMENTATION_NAME = "io.quiver.server";
  static final AttributeKey<String> MODEL_NAME = AttributeKey.stringKey("quiver.model.name");
  static final AttributeKey<String> MODEL_VERSION = AttributeKey.stringKey("quiver.model.version");
  static final AttributeKey<String> REQUEST_ID = AttributeKey.stringKey("quiver.request.id");
  static final AttributeKey<Long> REQUEST_BATCH_SIZE = AttributeKey.longKey("quiver.request.batch_size");
  static final AttributeKey<Long> BATCH_SIZE = AttributeKey.longKey("quiver.batch.size");
  static final AttributeKey<String> PROTOCOL = AttributeKey.stringKey("quiver.protocol");
  static final AttributeKey<String> ERROR_CODE = AttributeKey.stringKey("quiver.error.code");
  private static final W3CTraceContextPropagator PROPAGATOR = W3CTraceContextPropagator.getInstance();

  private final Tracer tracer;
  private final SdkTracerProvider provider; // null when the caller owns the OpenTelemetry instance
  private final long anchorEpochNanos;
  private final long anchorNanoTime;

  private ServerTracing(OpenTelemetry openTelemetry, SdkTracerProvider provider) {
    this.tracer = openTelemetry.getTracer(INSTRUMENTATION_NAME);
    this.provider = provider;
    Instant now = Instant.now();
    this.anchorNanoTime = System.nanoTime();
    this.anchorEpochNanos = now.getEpochSecond() * 1_000_000_000L + now.getNano();
  }

  /**
   * The tracing these options ask for, or null when they ask for none. Builds the OpenTelemetry SDK
   * (a batch span processor in front of the exporter); {@link #close()} flushes and stops it.
   */
  public static ServerTracing create(TracingOptions options) {
    if (options == null || !options.enabled()) {
      return null;
    }
    SpanExporter exporter = switch (options.exporter()) {
      case LOGGING -> LoggingSpanExporter.create();
      case OTLP -> OtlpHttpSpanExporter.builder()
          .setEndpoint(options.endpoint() == null ? TracingOptions.DEFAULT_OTLP_ENDPOINT : options.endpoint())
          .build();
      case NONE -> throw new AssertionError();
    };
    return forProcessor(BatchSpanProcessor.builder(exporter).build(), options.serviceName());
  }

  /**
   * Exports every span synchronously when it ends (tests: with an in-memory exporter a span is
   * visible before the client has its answer).
   */
  public static ServerTracing forExporter(SpanExporter exporter) {
    return forProcessor(SimpleSpanProcessor.create(exporter), TracingOptions.DEFAULT_SERVICE_NAME);
  }

  private static ServerTracing forProcessor(SpanProcessor processor, String serviceName) {
    SdkTracerProvider provider = SdkTracerProvider.builder()
        .setResource(Resource.getDefault().merge(Resource.create(
            Attributes.of(AttributeKey.stringKey("service.name"), serviceName))))
        .addSpanProcessor(processor)
        .build();
    return new ServerTracing(OpenTelemetrySdk.builder().setTracerProvider(provider).build(), provider);
  }

  /** Uses an OpenTelemetry instance the caller configured and closes (e.g. the global one of an agent). */
  public static ServerTracing forOpenTelemetry(OpenTelemetry openTelemetry) {
    return new ServerTracing(openTelemetry, null);
  }

  /** The caller's trace context from request headers (an invalid or absent traceparent = a new trace). */
  public static <C> Context extract(C carrier, TextMapGetter<C> getter) {
    return PROPAGATOR.extract(Context.root(), carrier, getter);
  }

  /** Writes {@code traceparent} (and {@code tracestate} when the caller sent one) of this span into response headers. */
  public static <C> void inject(SpanContext span, C carrier, TextMapSetter<C> setter) {
    if (span != null && span.isValid()) {
      PROPAGATOR.inject(Context.root().with(Span.wrap(span)), carrier, setter);
    }
  }

  /**
   * Starts the server span of one request ("ModelInfer {model}"), a child of {@code parent}'s span
   * when the caller sent one. Allocates (the span and its attributes): only called while tracing is on.
   */
  public Span startRequest(Context parent, String model, String id, String protocol, long startNanos) {
    Span span = tracer.spanBuilder("ModelInfer " + model)
        .setParent(parent)
        .setSpanKind(SpanKind.SERVER)
        .setStartTimestamp(epochNanos(startNanos), TimeUnit.NANOSECONDS)
        .setAttribute(MODEL_NAME, model)
        .setAttribute(PROTOCOL, protocol)
        .startSpan();
    if (id != null && !id.isEmpty()) {
      span.setAttribute(REQUEST_ID, id);
    }
    return span;
  }

  /** The routed version and the request's own rows, once known. */
  public static void routed(Span span, String version, int batchSize) {
    span.setAttribute(MODEL_VERSION, version);
    span.setAttribute(REQUEST_BATCH_SIZE, batchSize);
  }

  /**
   * Ends a request's span with children for its time in the queue and the model execution, both taken
   * from the timings the scheduler recorded on the request (so it does not matter which thread answers).
   * A request that never ran (it failed in the queue, or its batch failed) gets a queue span up to the
   * failure and no compute span.
   *
   * @param error null on success
   */
  public void finish(Span span, InferRequest request, InferenceException error, long endNanos) {
    Context parent = Context.root().with(span);
    long enqueued = request.enqueueNanos();
    int rows = request.executedBatchRows();
    boolean ran = error == null && rows > 0 && enqueued != 0;
    long computeStart = enqueued + request.queueNanos();
    long computeEnd = computeStart + request.computeInputNanos() + request.computeInferNanos()
        + request.computeOutputNanos();
    if (enqueued != 0) {
      tracer.spanBuilder("queue").setParent(parent)
          .setStartTimestamp(epochNanos(enqueued), TimeUnit.NANOSECONDS)
          .startSpan()
          .end(epochNanos(ran ? computeStart : endNanos), TimeUnit.NANOSECONDS);
    }
    if (ran) {
      Span compute = tracer.spanBuilder("compute").setParent(parent)
          .setStartTimestamp(epochNanos(computeStart), TimeUnit.NANOSECONDS)
          .setAttribute(BATCH_SIZE, rows)
          .startSpan();
      compute.end(epochNanos(Math.min(computeEnd, endNanos)), TimeUnit.NANOSECONDS);
      span.setAttribute(BATCH_SIZE, rows);
    }
    if (error != null) {
      span.setStatus(StatusCode.ERROR, error.getMessage() == null ? "" : error.getMessage());
      span.setAttribute(ERROR_CODE, error.code().name());
    }
    span.end(epochNanos(endNanos), TimeUnit.NANOSECONDS);
  }

  /** Ends a span whose request failed before it was queued (validation, routing, a full queue). */
  public void failEarly(Span span, Throwable error, long endNanos) {
    span.setStatus(StatusCode.ERROR, error.getMessage() == null ? error.getClass().getSimpleName() : error.getMessage());
    span.setAttribute(ERROR_CODE, error instanceof InferenceException ie ? ie.code().name() : "INTERNAL");
    span.end(epochNanos(endNanos), TimeUnit.NANOSECONDS);
  }

  long epochNanos(long nanoTime) {
    return anchorEpochNanos + (nanoTime - anchorNanoTime);
  }

  /** Flushes pending spans and stops the exporter (when this object built the SDK). Idempotent. */
  @Override
  public void close() {
    if (provider != null) {
      provider.shutdown().join(5, TimeUnit.SECONDS);
    }
  }
}
