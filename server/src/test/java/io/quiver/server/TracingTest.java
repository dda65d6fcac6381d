package io.quiver.server;

import static io.quiver.server.Tensors.floats;
import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.toFloats;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.trace.SpanId;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.TraceId;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import io.quiver.server.tracing.ServerTracing;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** W3C trace context round trips over gRPC and REST, with spans caught by an in-memory exporter. */
class TracingTest {
  static final Metadata.Key<String> TRACEPARENT = Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> TRACESTATE = Metadata.Key.of("tracestate", Metadata.ASCII_STRING_MARSHALLER);
  static final String TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
  static final String CLIENT_SPAN_ID = "00f067aa0ba902b7";
  static final String CLIENT_TRACEPARENT = "00-" + TRACE_ID + "-" + CLIENT_SPAN_ID + "-01";

  @TempDir static Path repository;
  static final InMemorySpanExporter spans = InMemorySpanExporter.create();
  static ServerFixture traced;
  static ServerFixture untraced;
  static HttpClient http;

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 2, 5_000, 0, -1, 1024 * 1024, false);
    traced = new ServerFixture(new QuiverServer(options, ServerTracing.forExporter(spans)));
    untraced = new ServerFixture(new QuiverServer(options));
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    traced.close();
    untraced.close();
  }

  @BeforeEach
  void clear() {
    spans.reset();
  }

  static ModelInferRequest identity(String id) {
    return ModelInferRequest.newBuilder()
        .setModelName("identity_fp32")
        .setId(id)
        .addInputs(input("INPUT0", "FP32", 1, 16))
        .addRawInputContents(floats(Tensors.sequence(16, 1f)))
        .build();
  }

  /** A stub that sends these headers and captures the response headers and trailers. */
  static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub(ServerFixture fixture, Metadata sent,
      AtomicReference<Metadata> headers, AtomicReference<Metadata> trailers) {
    return fixture.stub().withInterceptors(MetadataUtils.newAttachHeadersInterceptor(sent),
        MetadataUtils.newCaptureMetadataInterceptor(headers, trailers));
  }

  static Metadata clientContext() {
    Metadata sent = new Metadata();
    sent.put(TRACEPARENT, CLIENT_TRACEPARENT);
    sent.put(TRACESTATE, "vendor=abc");
    return sent;
  }

  static SpanData serverSpan() {
    List<SpanData> server = spans.getFinishedSpanItems().stream()
        .filter(s -> s.getKind() == SpanKind.SERVER).collect(Collectors.toList());
    assertThat(server).hasSize(1);
    return server.get(0);
  }

  static List<SpanData> childrenOf(SpanData parent) {
    return spans.getFinishedSpanItems().stream()
        .filter(s -> s.getParentSpanId().equals(parent.getSpanId())).collect(Collectors.toList());
  }

  @Test
  void grpcModelInfer_continuesTheClientsTraceAndAnswersWithTheServerSpan() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    ModelInferResponse response = stub(traced, clientContext(), headers, trailers).modelInfer(identity("t-1"));
    assertThat(toFloats(response.getRawOutputContents(0))).containsExactly(Tensors.sequence(16, 1f));

    SpanData span = serverSpan();
    assertThat(span.getName()).isEqualTo("ModelInfer identity_fp32");
    assertThat(span.getTraceId()).isEqualTo(TRACE_ID);
    assertThat(span.getParentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    assertThat(span.getParentSpanContext().isRemote()).isTrue();
    assertThat(span.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);
    assertThat(span.getAttributes().asMap().entrySet().stream()
        .collect(Collectors.toMap(e -> e.getKey().getKey(), e -> String.valueOf(e.getValue()))))
        .containsEntry("quiver.model.name", "identity_fp32")
        .containsEntry("quiver.model.version", "1")
        .containsEntry("quiver.request.id", "t-1")
        .containsEntry("quiver.request.batch_size", "1")
        .containsEntry("quiver.batch.size", "1")
        .containsEntry("quiver.protocol", "grpc");
    // The queue and compute children, in order and inside the server span.
    List<SpanData> children = childrenOf(span);
    assertThat(children).extracting(SpanData::getName).containsExactlyInAnyOrder("queue", "compute");
    SpanData queue = children.stream().filter(s -> s.getName().equals("queue")).findFirst().orElseThrow();
    SpanData compute = children.stream().filter(s -> s.getName().equals("compute")).findFirst().orElseThrow();
    assertThat(queue.getEndEpochNanos()).isLessThanOrEqualTo(compute.getStartEpochNanos());
    assertThat(queue.getStartEpochNanos()).isGreaterThanOrEqualTo(span.getStartEpochNanos());
    assertThat(compute.getEndEpochNanos()).isLessThanOrEqualTo(span.getEndEpochNanos());

    assertThat(headers.get().get(TRACEPARENT)).isEqualTo("00-" + TRACE_ID + "-" + span.getSpanId() + "-01");
    assertThat(headers.get().get(TRACESTATE)).isEqualTo("vendor=abc");
  }

  @Test
  void grpcModelInfer_failingRequest_recordsAnErrorSpanAndReturnsTheTraceInTrailers() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    ModelInferRequest bad = identity("t-bad").toBuilder().setInputs(0, input("NOPE", "FP32", 1, 16)).build();
    assertThatThrownBy(() -> stub(traced, clientContext(), headers, trailers).modelInfer(bad))
        .isInstanceOf(StatusRuntimeException.class);

    SpanData span = serverSpan();
    assertThat(span.getTraceId()).isEqualTo(TRACE_ID);
    assertThat(span.getParentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    assertThat(span.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
    assertThat(span.getAttributes().asMap().entrySet().stream().map(e -> e.getKey().getKey() + "=" + e.getValue()))
        .contains("quiver.error.code=INVALID_ARGUMENT");
    assertThat(trailers.get().get(TRACEPARENT)).isEqualTo("00-" + TRACE_ID + "-" + span.getSpanId() + "-01");
  }

  @Test
  void grpcModelInfer_withoutTraceparent_startsANewTrace() {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    stub(traced, new Metadata(), headers, trailers).modelInfer(identity("t-2"));

    SpanData span = serverSpan();
    assertThat(TraceId.isValid(span.getTraceId())).isTrue();
    assertThat(span.getTraceId()).isNotEqualTo(TRACE_ID);
    assertThat(SpanId.isValid(span.getParentSpanId())).isFalse();
    assertThat(headers.get().get(TRACEPARENT)).isEqualTo("00-" + span.getTraceId() + "-" + span.getSpanId() + "-01");
  }

  @Test
  void grpcModelStreamInfer_eachMessageIsASpanInTheClientsTrace() throws Exception {
    List<ModelStreamInferResponse> answers = new CopyOnWriteArrayList<>();
    CountDownLatch done = new CountDownLatch(1);
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    StreamObserver<ModelInferRequest> requests = GRPCInferenceServiceGrpc.newStub(traced.channel)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(clientContext()),
            MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
        .modelStreamInfer(new StreamObserver<>() {
          @Override
          public void onNext(ModelStreamInferResponse value) {
            answers.add(value);
          }

          @Override
          public void onError(Throwable t) {
            done.countDown();
          }

          @Override
          public void onCompleted() {
            done.countDown();
          }
        });
    requests.onNext(identity("s-1"));
    requests.onNext(identity("s-2"));
    requests.onCompleted();
    assertThat(done.await(30, TimeUnit.SECONDS)).isTrue();
    assertThat(answers).hasSize(2);

    List<SpanData> server = spans.getFinishedSpanItems().stream()
        .filter(s -> s.getKind() == SpanKind.SERVER).collect(Collectors.toList());
    assertThat(server).hasSize(2);
    assertThat(server).allSatisfy(s -> {
      assertThat(s.getTraceId()).isEqualTo(TRACE_ID);
      assertThat(s.getParentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    });
    assertThat(server).extracting(s -> s.getSpanId())
        .contains(headers.get().get(TRACEPARENT).split("-")[2]);
  }

  @Test
  void restInfer_continuesTheClientsTraceAndAnswersWithTheServerSpan() throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + traced.server.httpPort() + "/v2/models/identity_fp32/infer"))
        .header("traceparent", CLIENT_TRACEPARENT)
        .POST(HttpRequest.BodyPublishers.ofString("{\"id\":\"r-1\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\","
            + "\"shape\":[1,16],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}"))
        .build(), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);

    SpanData span = serverSpan();
    assertThat(span.getTraceId()).isEqualTo(TRACE_ID);
    assertThat(span.getParentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    assertThat(span.getAttributes().asMap().entrySet().stream().map(e -> e.getKey().getKey() + "=" + e.getValue()))
        .contains("quiver.protocol=http", "quiver.request.id=r-1", "quiver.model.version=1");
    assertThat(childrenOf(span)).extracting(SpanData::getName).containsExactlyInAnyOrder("queue", "compute");
    assertThat(response.headers().firstValue("traceparent"))
        .hasValue("00-" + TRACE_ID + "-" + span.getSpanId() + "-01");
  }

  @Test
  void restInfer_malformedJson_recordsAnErrorSpanAndAnswersWithTheTrace() throws Exception {
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + traced.server.httpPort() + "/v2/models/identity_fp32/infer"))
        .header("traceparent", CLIENT_TRACEPARENT)
        .POST(HttpRequest.BodyPublishers.ofString("{\"inputs\": ["))
        .build(), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(400);
    SpanData span = serverSpan();
    assertThat(span.getParentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    assertThat(span.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
    assertThat(response.headers().firstValue("traceparent"))
        .hasValue("00-" + TRACE_ID + "-" + span.getSpanId() + "-01");
  }

  @Test
  void tracingOff_recordsNoSpanAndAnswersWithoutTraceparent() throws Exception {
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    stub(untraced, clientContext(), headers, trailers).modelInfer(identity("off-1"));
    HttpResponse<String> response = http.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + untraced.server.httpPort() + "/v2/models/identity_fp32/infer"))
        .header("traceparent", CLIENT_TRACEPARENT)
        .POST(HttpRequest.BodyPublishers.ofString("{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\","
            + "\"shape\":[1,16],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}"))
        .build(), HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);

    assertThat(spans.getFinishedSpanItems()).isEmpty();
    assertThat(headers.get().get(TRACEPARENT)).isNull();
    assertThat(trailers.get().get(TRACEPARENT)).isNull();
    assertThat(response.headers().firstValue("traceparent")).isEmpty();
  }
}
