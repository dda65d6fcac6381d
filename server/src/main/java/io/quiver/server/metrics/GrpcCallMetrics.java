package io.quiver.server.metrics;

import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The server's own time per gRPC call, by method and status code: from the moment the transport read
 * the call's headers to the moment its stream closed (the trailers handed to the socket). It is the
 * figure for "how fast does an overloaded server refuse" (RESOURCE_EXHAUSTED, UNAVAILABLE,
 * DEADLINE_EXCEEDED), as the server sees it. It does not contain the time a request waited in the
 * kernel's socket buffer before the event loop read it; it does contain the time a slow client takes
 * to send a call's message after its headers (a unary call is handled once its message is complete).
 *
 * <p>Labels are bounded: the method label is one of the bare method names of the services given at
 * construction, or {@code other} (a client chooses the method name it sends, so unknown names must not
 * become label values); the code label is one of gRPC's 17 codes. Label children are resolved on first
 * use and kept, so recording is a lookup in a small immutable map and one striped histogram add.
 *
 * <p>Cost per call: one tracer object and two {@code nanoTime} reads. Thread-safe: tracers are created
 * and finished on transport threads; the exporter reads on its own.
 */
public final class GrpcCallMetrics extends ServerStreamTracer.Factory {
  private final Histogram duration;
  /** Full method name → its label and label children; methods no service has share {@link #other}. */
  private final Map<String, MethodCells> byMethod;
  private final MethodCells other = new MethodCells("other");

  /**
   * One method's label and its label children by status code ordinal, filled on first use. Two threads
   * may fill a slot at once; both store the same child ({@code labelValues} returns the one it keeps).
   */
  private record MethodCells(String label, AtomicReferenceArray<DistributionDataPoint> byCode) {
    MethodCells(String label) {
      this(label, new AtomicReferenceArray<>(Status.Code.values().length));
    }
  }

  /** Registers {@code quiver_grpc_server_call_duration_seconds} for the methods of {@code services}. */
  public GrpcCallMetrics(PrometheusRegistry registry, List<ServerServiceDefinition> services) {
    duration = Histogram.builder().name("quiver_grpc_server_call_duration_seconds")
        .help("gRPC calls by method and status code: time in the server from reading the call's headers to closing"
            + " its stream (refusals under overload are the RESOURCE_EXHAUSTED/UNAVAILABLE codes)")
        .labelNames("method", "code").classicOnly().classicUpperBounds(ServerMetrics.LATENCY_BUCKETS_SECONDS)
        .register(registry);
    Map<String, MethodCells> methods = new HashMap<>();
    for (ServerServiceDefinition service : services) {
      for (var method : service.getMethods()) {
        MethodDescriptor<?, ?> descriptor = method.getMethodDescriptor();
        methods.put(descriptor.getFullMethodName(), new MethodCells(descriptor.getBareMethodName()));
      }
    }
    byMethod = Map.copyOf(methods);
  }

  @Override
  public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
    return new CallTimer(byMethod.getOrDefault(fullMethodName, other));
  }

  private final class CallTimer extends ServerStreamTracer {
    private final long startNanos = System.nanoTime();
    private final MethodCells method;

    CallTimer(MethodCells method) {
      this.method = method;
    }

    @Override
    public void streamClosed(Status status) {
      long nanos = System.nanoTime() - startNanos;
      int code = status.getCode().ordinal();
      DistributionDataPoint cell = method.byCode().get(code);
      if (cell == null) {
        cell = duration.labelValues(method.label(), status.getCode().name());
        method.byCode().set(code, cell);
      }
      cell.observe(nanos * 1e-9);
    }
  }
}
