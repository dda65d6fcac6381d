package io.quiver.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.grpc.CallOptions;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelReadyResponse;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerLiveResponse;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The guard over a real (in-process) gRPC server: unparseable messages of every shape are INVALID_ARGUMENT
 * with a short reason, never UNKNOWN; valid calls are untouched; a handler that throws is INTERNAL; a call
 * that arrives past its deadline is refused unread; and the log gets one line, not one per message.
 */
class CallGuardTest {
  static final java.util.concurrent.ScheduledExecutorService TIMER =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "test-deadlines");
        t.setDaemon(true);
        return t;
      });
  Server server;
  ManagedChannel channel;
  ListAppender<ILoggingEvent> logged;

  /** A service that answers ServerLive and echoes ModelInfer's id, and whose ModelReady throws. */
  static final class Service extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
    @Override
    public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> out) {
      out.onNext(ServerLiveResponse.newBuilder().setLive(true).build());
      out.onCompleted();
    }

    @Override
    public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> out) {
      out.onNext(ModelInferResponse.newBuilder().setId(request.getId()).build());
      out.onCompleted();
    }

    @Override
    public StreamObserver<ModelInferRequest> modelStreamInfer(
        StreamObserver<io.quiver.proto.inference.ModelStreamInferResponse> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(ModelInferRequest request) {
          out.onNext(io.quiver.proto.inference.ModelStreamInferResponse.newBuilder()
              .setInferResponse(ModelInferResponse.newBuilder().setId(request.getId())).build());
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }

    @Override
    public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> out) {
      throw new IllegalStateException("a handler bug");
    }
  }

  @BeforeEach
  void start() throws IOException {
    String name = InProcessServerBuilder.generateName();
    // An interceptor in front of the guard that ages ModelMetadata calls' deadlines, as a slow network would.
    ServerInterceptor expire = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        if (!call.getMethodDescriptor().getBareMethodName().equals("ModelMetadata")) {
          return next.startCall(call, headers);
        }
        Context expired = Context.current().withDeadlineAfter(-1, TimeUnit.SECONDS, TIMER);
        return Contexts.interceptCall(expired, call, headers, next);
      }
    };
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(ServerInterceptors.intercept(CallGuard.guard(new Service().bindService()), expire))
        .build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    logged = new ListAppender<>();
    logged.start();
    ((Logger) LoggerFactory.getLogger(CallGuard.class)).addAppender(logged);
  }

  @AfterEach
  void stop() throws InterruptedException {
    ((Logger) LoggerFactory.getLogger(CallGuard.class)).detachAppender(logged);
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }
  };

  private byte[] call(String method, byte[] message) {
    MethodDescriptor<byte[], byte[]> raw = MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(GRPCInferenceServiceGrpc.SERVICE_NAME, method))
        .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
    return ClientCalls.blockingUnaryCall(channel, raw, CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS), message);
  }

  static final byte[] INVALID_UTF8 = {0x0a, 0x02, (byte) 0xc3, 0x28}; // model_name with invalid UTF-8

  /** Truncated varints, lengths past the end, invalid UTF-8, an end-group with no start, deep groups, noise. */
  static final List<byte[]> MALFORMED = List.of(
      new byte[] {0x0a, (byte) 0x80},                       // field 1, length varint cut short
      new byte[] {0x0a, 0x05, 'a', 'b'},                    // length 5, 2 bytes follow
      INVALID_UTF8,
      new byte[] {0x0c},                                    // an end-group tag at the top level
      new byte[] {0x00, 0x01},                              // field number 0
      new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
          (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff}, // a varint of 11 bytes
      deepGroups(200),
      new byte[] {0x7a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f}); // length 2^32-1

  /** Field 99 as start-group, nested {@code depth} times. */
  static byte[] deepGroups(int depth) {
    byte[] out = new byte[depth * 2];
    for (int i = 0; i < depth; i++) {
      out[i * 2] = (byte) 0x9b; // (99 << 3 | 3) as a varint: 0x9b 0x06
      out[i * 2 + 1] = 0x06;
    }
    return out;
  }

  @Test
  void malformedMessages_areInvalidArgument_withAShortReason_onEveryMethodShape() {
    long t0 = System.nanoTime();
    for (String method : List.of("ModelInfer", "ServerLive", "ModelStreamInfer")) {
      for (byte[] message : MALFORMED) {
        if (message == INVALID_UTF8 && method.equals("ServerLive")) {
          continue; // ServerLiveRequest has no string field: field 1 is an unknown field there, and valid
        }
        assertThatThrownBy(() -> call(method, message))
            .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
              assertThat(e.getStatus().getCode()).as("%s", method).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).contains(method).contains("not a valid protobuf message")
                  .hasSizeLessThan(300);
            });
      }
    }
    assertThat(CallGuard.malformedMessages()).isGreaterThanOrEqualTo(3L * MALFORMED.size() - 1);
    // Rate-limited: at most one line a second, whatever the number of messages.
    long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
    assertThat(logged.list).hasSizeLessThanOrEqualTo((int) seconds + 1);
    assertThat(logged.list).allSatisfy(event -> assertThat(event.getThrowableProxy()).isNull());
  }

  @Test
  void validCalls_passUntouched() throws Exception {
    byte[] answer = call("ModelInfer", ModelInferRequest.newBuilder().setModelName("m").setId("r-7").build().toByteArray());
    assertThat(ModelInferResponse.parseFrom(answer).getId()).isEqualTo("r-7");
    assertThat(GRPCInferenceServiceGrpc.newBlockingStub(channel).serverLive(ServerLiveRequest.getDefaultInstance())
        .getLive()).isTrue();
  }

  @Test
  void aHandlerThatThrows_isInternalNamingTheClass_notUnknown() {
    assertThatThrownBy(() -> GRPCInferenceServiceGrpc.newBlockingStub(channel).modelReady(ModelReadyRequest.getDefaultInstance()))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL);
          assertThat(e.getStatus().getDescription()).contains("IllegalStateException").doesNotContain("a handler bug");
        });
  }

  @Test
  void aCallPastItsDeadline_isRefusedUnread() {
    assertThatThrownBy(() -> call("ModelMetadata", new byte[] {0x0a, (byte) 0x80}))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
          assertThat(e.getStatus().getDescription()).contains("deadline had passed when it arrived");
        });
  }

  @Test
  void grpcErrors_mapsEveryCode_andKeepsDetails() {
    for (io.quiver.core.ErrorCode code : io.quiver.core.ErrorCode.values()) {
      StatusRuntimeException s = GrpcErrors.toStatus(new InferenceException(code, "x"));
      assertThat(s.getStatus().getCode().name()).isEqualTo(code.name());
    }
    StatusRuntimeException busy = GrpcErrors.toStatus(InferenceException.resourceExhausted(1_500_000_000L, "busy"));
    com.google.rpc.Status details = io.grpc.protobuf.StatusProto.fromThrowable(busy);
    assertThat(details.getDetailsList()).anySatisfy(d -> assertThat(d.is(com.google.rpc.RetryInfo.class)).isTrue());
    assertThat(GrpcErrors.toStatus(new IllegalArgumentException("secret")).getStatus().getDescription())
        .isEqualTo("internal error: IllegalArgumentException");
  }
}
