package io.quiver.examples.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.quiver.client.InferRequest;
import io.quiver.client.QuiverClient;
import io.quiver.client.QuiverException;
import io.quiver.client.Tensors;
import io.quiver.client.telemetry.ClientTelemetry;
import io.quiver.examples.ExampleModels;
import io.quiver.server.QuiverServer;
import io.quiver.server.tracing.ServerTracing;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The optional OpenTelemetry hooks: a client span whose W3C traceparent the traced server continues, and a duration metric. */
class TelemetryTest {
  @TempDir Path repository;

  @Test
  void clientSpan_isTheParentOfTheServersSpan_andDurationsAreRecorded() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    InMemorySpanExporter serverSpans = InMemorySpanExporter.create();
    InMemorySpanExporter clientSpans = InMemorySpanExporter.create();
    InMemoryMetricReader metrics = InMemoryMetricReader.create();
    try (OpenTelemetrySdk otel = OpenTelemetrySdk.builder()
            .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(clientSpans)).build())
            .setMeterProvider(SdkMeterProvider.builder().registerMetricReader(metrics).build())
            .setPropagators(ContextPropagators.create(W3CTraceContextPropagator.getInstance()))
            .build();
         LiveQuiver quiver = LiveQuiver.start(new QuiverServer(LiveQuiver.options(repository),
             ServerTracing.forExporter(serverSpans)));
         QuiverClient client = QuiverClient.builder().target(quiver.target())
             .intercept(ClientTelemetry.interceptor(otel)).build()) {
      client.infer(InferRequest.builder("identity_fp32").id("traced").input("INPUT0", Tensors.fp32(new float[16], 1, 16)).build());
      try {
        client.modelMetadata("missing");
      } catch (QuiverException expected) {
        // recorded as an error span
      }

      List<SpanData> ours = clientSpans.getFinishedSpanItems();
      SpanData infer = ours.stream().filter(s -> s.getName().equals("inference.GRPCInferenceService/ModelInfer"))
          .findFirst().orElseThrow();
      assertThat(infer.getKind()).isEqualTo(SpanKind.CLIENT);
      assertThat(infer.getAttributes().asMap()).containsEntry(io.opentelemetry.api.common.AttributeKey.stringKey("quiver.model"),
          "identity_fp32").containsEntry(io.opentelemetry.api.common.AttributeKey.longKey("rpc.grpc.status_code"), 0L);
      SpanData failed = ours.stream().filter(s -> s.getName().endsWith("/ModelMetadata")).findFirst().orElseThrow();
      assertThat(failed.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);

      LiveQuiver.await("the server exported its request span", () -> serverSpans.getFinishedSpanItems().stream()
          .anyMatch(s -> s.getKind() == SpanKind.SERVER));
      SpanData server = serverSpans.getFinishedSpanItems().stream().filter(s -> s.getKind() == SpanKind.SERVER)
          .findFirst().orElseThrow();
      assertThat(server.getName()).isEqualTo("ModelInfer identity_fp32");
      assertThat(server.getTraceId()).isEqualTo(infer.getTraceId());
      assertThat(server.getParentSpanId()).isEqualTo(infer.getSpanId());

      List<MetricData> recorded = List.copyOf(metrics.collectAllMetrics());
      assertThat(recorded).anySatisfy(m -> {
        assertThat(m.getName()).isEqualTo("rpc.client.duration");
        assertThat(m.getHistogramData().getPoints()).hasSizeGreaterThanOrEqualTo(2);
      });
    }
  }
}
