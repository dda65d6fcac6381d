package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.grpc.CallOptions;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelConfigRequest;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerMetadataRequest;
import io.quiver.proto.inference.ServerReadyRequest;
import io.quiver.transport.CallGuard;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * Wire-level fuzzing, bounded: 20,000 messages, most of them valid requests of eleven methods mutated
 * at the byte level (bits flipped, bytes set, inserted, deleted, duplicated, truncated, noise), sent over
 * one real connection with 64 in flight, and one in ten a valid identity request whose answer is checked.
 * Nothing may be UNKNOWN or INTERNAL, nothing may hang (every call answered well within its deadline),
 * every valid request gets exactly its input back, and the log stays at a line or two. Seeded: a failure
 * repeats.
 */
class WireFuzzTest {
  static final int MESSAGES = 20_000;
  static final int IN_FLIGHT = 64;
  static final long SEED = 20_240_612L;
  static final String INFERENCE = GRPCInferenceServiceGrpc.SERVICE_NAME + "/";

  @TempDir Path repository;

  record Seed(String method, byte[] bytes) {}

  static List<Seed> seeds() {
    ModelInferRequest infer = ModelInferRequest.newBuilder().setModelName("identity_fp32").setId("seed")
        .addInputs(Tensors.input("INPUT0", "FP32", 2, 16)).addRawInputContents(Tensors.floats(new float[32]))
        .putParameters("priority", InferParameter.newBuilder().setInt64Param(0).build())
        .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("OUTPUT0")).build();
    ModelInferRequest simple = ModelInferRequest.newBuilder().setModelName("simple")
        .addInputs(Tensors.input("INPUT0", "INT32", 1, 16)).addInputs(Tensors.input("INPUT1", "INT32", 1, 16))
        .addRawInputContents(Tensors.ints(new int[16])).addRawInputContents(Tensors.ints(new int[16])).build();
    return List.of(
        seed("ModelInfer", infer), seed("ModelInfer", simple),
        seed("ModelMetadata", ModelMetadataRequest.newBuilder().setName("identity_fp32").setVersion("1").build()),
        seed("ModelReady", ModelReadyRequest.newBuilder().setName("simple").build()),
        seed("ModelConfig", ModelConfigRequest.newBuilder().setName("identity_fp32").build()),
        seed("ModelStatistics", ModelStatisticsRequest.newBuilder().setName("simple").build()),
        seed("ServerLive", ServerLiveRequest.getDefaultInstance()),
        seed("ServerReady", ServerReadyRequest.getDefaultInstance()),
        seed("ServerMetadata", ServerMetadataRequest.getDefaultInstance()),
        seed("RepositoryIndex", RepositoryIndexRequest.newBuilder().setReady(true).build()),
        new Seed("grpc.health.v1.Health/Check",
            io.grpc.health.v1.HealthCheckRequest.newBuilder().setService("identity_fp32").build().toByteArray()));
  }

  static Seed seed(String method, MessageLite message) {
    return new Seed(INFERENCE + method, message.toByteArray());
  }

  static byte[] mutate(byte[] original, Random random) {
    byte[] b = original.clone();
    int rounds = 1 + random.nextInt(3);
    for (int r = 0; r < rounds; r++) {
      if (b.length == 0) {
        b = new byte[] {(byte) random.nextInt(256)};
        continue;
      }
      int at = random.nextInt(b.length);
      switch (random.nextInt(8)) {
        case 0 -> b[at] ^= (byte) (1 << random.nextInt(8)); // flip a bit
        case 1 -> b[at] = (byte) random.nextInt(256); // set a byte
        case 2 -> { // insert bytes
          int n = 1 + random.nextInt(4);
          byte[] grown = new byte[b.length + n];
          System.arraycopy(b, 0, grown, 0, at);
          for (int i = 0; i < n; i++) {
            grown[at + i] = (byte) random.nextInt(256);
          }
          System.arraycopy(b, at, grown, at + n, b.length - at);
          b = grown;
        }
        case 3 -> { // delete a range
          int n = Math.min(b.length - at, 1 + random.nextInt(8));
          byte[] shrunk = new byte[b.length - n];
          System.arraycopy(b, 0, shrunk, 0, at);
          System.arraycopy(b, at + n, shrunk, at, b.length - at - n);
          b = shrunk;
        }
        case 4 -> b = Arrays.copyOf(b, at); // truncate
        case 5 -> { // duplicate a slice
          int n = Math.min(b.length - at, 1 + random.nextInt(16));
          byte[] grown = Arrays.copyOf(b, b.length + n);
          System.arraycopy(b, at, grown, b.length, n);
          b = grown;
        }
        case 6 -> b[at] = (byte) (0x80 | random.nextInt(128)); // a continuation byte: varints run on
        default -> { // noise
          b = new byte[random.nextInt(48)];
          random.nextBytes(b);
        }
      }
    }
    return b;
  }

  @Test
  void mutatedMessages_getCleanStatuses_validOnesCorrectAnswers_nothingHangs() throws Exception {
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeSimple(repository);
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ListAppender<ILoggingEvent> log = new ListAppender<>();
    log.start();
    try (ServerFixture fixture = new ServerFixture(repository, ControlMode.NONE, List.of())) {
      root.addAppender(log);
      List<Seed> seeds = seeds();
      Random random = new Random(SEED);
      Semaphore window = new Semaphore(IN_FLIGHT);
      CountDownLatch done = new CountDownLatch(MESSAGES);
      Map<Status.Code, AtomicInteger> codes = new ConcurrentHashMap<>();
      List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
      AtomicInteger validOk = new AtomicInteger();
      AtomicLong slowestNanos = new AtomicLong();
      long malformedBefore = CallGuard.malformedMessages();
      long t0 = System.nanoTime();
      int valid = 0;
      for (int i = 0; i < MESSAGES; i++) {
        window.acquire();
        long start = System.nanoTime();
        if (i % 10 == 0) {
          valid++;
          float[] values = new float[16];
          for (int k = 0; k < 16; k++) {
            values[k] = random.nextFloat() * 100 - 50;
          }
          ByteString expected = Tensors.floats(values);
          String id = "valid-" + i;
          fixture.async.withDeadlineAfter(30, TimeUnit.SECONDS).modelInfer(ModelInferRequest.newBuilder()
              .setModelName("identity_fp32").setId(id).addInputs(Tensors.input("INPUT0", "FP32", 1, 16))
              .addRawInputContents(expected).build(), new StreamObserver<>() {
                @Override
                public void onNext(ModelInferResponse r) {
                  if (r.getId().equals(id) && r.getRawOutputContents(0).equals(expected)) {
                    validOk.incrementAndGet();
                  } else {
                    failures.add("wrong answer to " + id + ": " + r);
                  }
                }

                @Override
                public void onError(Throwable t) {
                  failures.add("valid request " + id + " failed: " + Status.fromThrowable(t));
                  finish(start);
                }

                @Override
                public void onCompleted() {
                  finish(start);
                }

                private void finish(long started) {
                  slowestNanos.accumulateAndGet(System.nanoTime() - started, Math::max);
                  window.release();
                  done.countDown();
                }
              });
          continue;
        }
        Seed seed = seeds.get(random.nextInt(seeds.size()));
        byte[] message = mutate(seed.bytes(), random);
        ClientCalls.asyncUnaryCall(fixture.channel.newCall(RawCalls.method(seed.method()),
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS)), message, new StreamObserver<>() {
              @Override
              public void onNext(byte[] value) {}

              @Override
              public void onError(Throwable t) {
                Status status = Status.fromThrowable(t);
                record(status.getCode());
                if (status.getCode() == Status.Code.UNKNOWN || status.getCode() == Status.Code.INTERNAL) {
                  failures.add(seed.method() + " " + status + " for " + java.util.HexFormat.of().formatHex(message));
                }
              }

              @Override
              public void onCompleted() {
                record(Status.Code.OK);
              }

              private void record(Status.Code code) {
                codes.computeIfAbsent(code, c -> new AtomicInteger()).incrementAndGet();
                slowestNanos.accumulateAndGet(System.nanoTime() - start, Math::max);
                window.release();
                done.countDown();
              }
            });
      }
      assertThat(done.await(120, TimeUnit.SECONDS)).as("every call answered").isTrue();
      long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
      root.detachAppender(log);
      Map<Status.Code, Integer> counts = new EnumMap<>(Status.Code.class);
      codes.forEach((code, n) -> counts.put(code, n.get()));
      System.out.printf("wire fuzz: %d messages in %d s (%d valid, all correct: %s); statuses %s; slowest %d ms;"
          + " %d malformed; %d log lines%n", MESSAGES, seconds, valid, validOk.get() == valid, counts,
          TimeUnit.NANOSECONDS.toMillis(slowestNanos.get()), CallGuard.malformedMessages() - malformedBefore,
          log.list.size());
      assertThat(failures).isEmpty();
      assertThat(validOk.get()).isEqualTo(valid);
      assertThat(codes).doesNotContainKeys(Status.Code.UNKNOWN, Status.Code.INTERNAL, Status.Code.DEADLINE_EXCEEDED);
      assertThat(codes.get(Status.Code.INVALID_ARGUMENT).get()).isGreaterThan(MESSAGES / 4);
      assertThat(slowestNanos.get()).as("no call near its deadline").isLessThan(TimeUnit.SECONDS.toNanos(20));
      // Still serving.
      assertThat(fixture.stub().serverLive(ServerLiveRequest.getDefaultInstance()).getLive()).isTrue();
    } finally {
      root.detachAppender(log);
    }
    // One connection: the malformed messages are logged once; no stack traces, no errors.
    assertThat(log.list.stream().filter(e -> e.getLoggerName().equals(CallGuard.class.getName()))).hasSizeLessThanOrEqualTo(1);
    assertThat(log.list).hasSizeLessThan(20);
    assertThat(log.list).allSatisfy(e -> assertThat(e.getThrowableProxy()).as(e.getFormattedMessage()).isNull());
    assertThat(log.list).noneSatisfy(e -> assertThat(e.getLevel()).isEqualTo(Level.ERROR));
  }
}
