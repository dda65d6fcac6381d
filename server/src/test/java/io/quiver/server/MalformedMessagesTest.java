package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.transport.CallGuard;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * A corpus of malformed protobuf messages (truncated varints, lengths past the end, invalid UTF-8 in
 * strings, deep groups, a stray end-group, field 0, random bytes) sent over real sockets to every method
 * of every service: the inference service, health, both reflection versions and the control plane. Each
 * message that does not parse is INVALID_ARGUMENT with a short message; nothing is UNKNOWN or INTERNAL;
 * the log gets at most one line per connection and no stack trace; grpc-java's own java.util.logging
 * output lands in our log (SLF4J).
 */
class MalformedMessagesTest {
  @TempDir Path repository;

  /** Malformed for every message type (with field 1 a string, also invalid UTF-8 there). */
  static List<byte[]> corpus(boolean firstFieldIsString) {
    List<byte[]> out = new ArrayList<>(List.of(
        new byte[] {0x0a, (byte) 0x80},                                // a length varint cut short
        new byte[] {0x0a, (byte) 0xff, (byte) 0xff},                   // ... and another
        new byte[] {0x0a, 0x7f, 'x'},                                  // length 127, one byte follows
        new byte[] {0x12, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f}, // length 2^32 - 1
        new byte[] {0x08, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80,
            (byte) 0x80, (byte) 0x80, (byte) 0x80, (byte) 0x80, 0x01},   // a varint of 11 bytes
        new byte[] {0x00, 0x00},                                       // field number 0
        new byte[] {0x0c},                                             // an end-group with no start
        new byte[] {0x0f},                                             // wire type 7
        deepGroups(150),                                               // past protobuf's nesting limit
        new byte[] {0x0b, 0x0a, 0x01}));                               // a group that never ends
    if (firstFieldIsString) {
      out.add(new byte[] {0x0a, 0x02, (byte) 0xc3, 0x28});              // field 1: invalid UTF-8
      out.add(new byte[] {0x0a, 0x03, (byte) 0xed, (byte) 0xa0, (byte) 0x80}); // a lone surrogate
    }
    Random random = new Random(12);
    for (int i = 0; i < 8; i++) {
      byte[] noise = new byte[1 + random.nextInt(64)];
      random.nextBytes(noise);
      out.add(noise);
    }
    return out;
  }

  static byte[] deepGroups(int depth) {
    byte[] out = new byte[depth * 2];
    for (int i = 0; i < depth; i++) {
      out[i * 2] = (byte) 0x9b; // field 99, start-group
      out[i * 2 + 1] = 0x06;
    }
    return out;
  }

  @Test
  void everyUnparseableMessage_isInvalidArgument_onEveryService_withTheLogBounded() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ServerOptions options = new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 1, 2_000, -1, -1, 1024 * 1024, false)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0));
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> log = new ListAppender<>();
    log.start();
    try (QuiverServer server = new QuiverServer(options).start()) {
      root.addAppender(log);
      ManagedChannel data = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
      long before = CallGuard.malformedMessages();
      int sent = 0;
      try {
        List<RawCalls.Method> dataMethods = new ArrayList<>();
        dataMethods.addAll(RawCalls.methods(GRPCInferenceServiceGrpc.getServiceDescriptor()));
        dataMethods.addAll(RawCalls.methods(io.grpc.health.v1.HealthGrpc.getServiceDescriptor()));
        dataMethods.addAll(RawCalls.methods(io.grpc.reflection.v1.ServerReflectionGrpc.getServiceDescriptor()));
        dataMethods.addAll(RawCalls.methods(io.grpc.reflection.v1alpha.ServerReflectionGrpc.getServiceDescriptor()));
        List<RawCalls.Method> controlMethods = RawCalls.methods(ModelControlGrpc.getServiceDescriptor());
        assertThat(dataMethods).hasSizeGreaterThanOrEqualTo(12 + 2 + 2);
        assertThat(controlMethods).hasSizeGreaterThanOrEqualTo(6);
        for (boolean isControl : new boolean[] {false, true}) {
          for (RawCalls.Method method : isControl ? controlMethods : dataMethods) {
            for (byte[] message : corpus(method.firstFieldIsString())) {
              if (method.parses(message)) {
                continue; // random bytes that happen to be a valid message: not this test's subject
              }
              Status status = RawCalls.call(isControl ? control : data, method.fullName(), message, 10_000);
              sent++;
              assertThat(status.getCode()).as("%s: %s", method.fullName(), status).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(status.getDescription()).contains("not a valid protobuf message").hasSizeLessThan(300);
            }
          }
        }
        // The server still serves both ports.
        assertThat(GRPCInferenceServiceGrpc.newBlockingStub(data).withDeadlineAfter(10, TimeUnit.SECONDS)
            .serverLive(io.quiver.proto.inference.ServerLiveRequest.getDefaultInstance()).getLive()).isTrue();
        assertThat(ModelControlGrpc.newBlockingStub(control).withDeadlineAfter(10, TimeUnit.SECONDS)
            .listModels(io.quiver.proto.control.v1.ListModelsRequest.getDefaultInstance()).getModelsCount()).isEqualTo(1);

        // grpc-java logs through java.util.logging: it arrives in our log, at our levels.
        java.util.logging.Logger.getLogger("io.grpc.quiver.bridge.test").warning("bridged from java.util.logging");
      } finally {
        root.detachAppender(log);
        data.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      System.out.printf("malformed: %d unparseable messages sent, all INVALID_ARGUMENT; %d log lines%n", sent,
          log.list.size());
      assertThat(sent).isGreaterThan(300);
      assertThat(CallGuard.malformedMessages() - before).isGreaterThanOrEqualTo(sent);
    }
    List<ILoggingEvent> guardLines = log.list.stream()
        .filter(e -> e.getLoggerName().equals(CallGuard.class.getName())).toList();
    // Once per connection (two connections here), and never a stack trace or an error from the transport.
    assertThat(guardLines).hasSizeBetween(1, 2);
    assertThat(log.list).allSatisfy(e -> assertThat(e.getThrowableProxy()).as(e.getFormattedMessage()).isNull());
    assertThat(log.list).noneSatisfy(e -> assertThat(e.getLevel()).isEqualTo(Level.ERROR));
    assertThat(log.list).anySatisfy(e -> {
      assertThat(e.getLoggerName()).isEqualTo("io.grpc.quiver.bridge.test");
      assertThat(e.getFormattedMessage()).isEqualTo("bridged from java.util.logging");
    });
  }
}
