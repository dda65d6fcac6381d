package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.lifecycle.ControlMode;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.InferTensorContents;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ServerLiveRequest;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Property: any ModelInfer request, however malformed, gets a clean status (never INTERNAL, UNKNOWN or
 * a hang), valid identity requests return exactly their input (NaN and infinities included), and
 * after 10,000 of them the server is live, answers a known-good request, and its heap after GC stays
 * under {@link #HEAP_BOUND_BYTES}. Runs on jqwik's engine beside Jupiter.
 */
class FuzzTest {
  /** Heap in use after a full GC once the run is over: the models' tensors live off-heap, so this is generous. */
  static final long HEAP_BOUND_BYTES = 128L * 1024 * 1024;
  static final Set<Status.Code> CLEAN = EnumSet.of(Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND,
      Status.Code.RESOURCE_EXHAUSTED, Status.Code.UNAVAILABLE);
  static final List<String> MODELS = List.of("identity_fp32", "simple", "identity_bytes");
  static final List<String> DATATYPES = List.of("FP32", "INT32", "BYTES", "FP16", "BF16", "BOOL", "INT64", "UINT8",
      "FP64", "fp32", "", "COMPLEX64");
  static final List<Long> DIMS = List.of(-1L, -7L, 0L, 1L, 2L, 3L, 8L, 9L, 16L, 17L, 1L << 31, 1L << 40, Long.MAX_VALUE,
      Long.MIN_VALUE);

  static Path repository;
  static ServerFixture fixture;
  static final AtomicInteger tries = new AtomicInteger();
  static final AtomicInteger succeeded = new AtomicInteger();

  @BeforeContainer
  static void start() throws Exception {
    repository = Files.createTempDirectory("quiver-fuzz");
    ExampleModels.writeIdentityFp32(repository);
    ExampleModels.writeSimple(repository);
    ExampleModels.writeIdentityBytes(repository);
    fixture = new ServerFixture(repository, ControlMode.NONE, List.of());
  }

  @AfterContainer
  static void stop() throws Exception {
    try {
      assertThat(tries.get()).isGreaterThanOrEqualTo(10_000);
      assertThat(fixture.stub().serverLive(ServerLiveRequest.getDefaultInstance()).getLive()).isTrue();
      float[] values = Tensors.sequence(16, 3f);
      ModelInferResponse good = fixture.stub().modelInfer(ModelInferRequest.newBuilder().setModelName("identity_fp32")
          .addInputs(Tensors.input("INPUT0", "FP32", 1, 16)).addRawInputContents(Tensors.floats(values)).build());
      assertThat(Tensors.toFloats(good.getRawOutputContents(0))).containsExactly(values);
      for (int i = 0; i < 3; i++) {
        System.gc();
      }
      long used = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
      System.out.printf("fuzz: %d requests, %d answered OK; heap after GC %d MiB (bound %d MiB)%n", tries.get(),
          succeeded.get(), used >> 20, HEAP_BOUND_BYTES >> 20);
      assertThat(used).isLessThan(HEAP_BOUND_BYTES);
    } finally {
      fixture.close();
      try (var files = Files.walk(repository)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  /** A request and, when it is a well-formed identity_fp32 request, the bytes it must get back. */
  record Case(ModelInferRequest request, ByteString expected) {}

  @Property(tries = 10_000, shrinking = ShrinkingMode.OFF)
  void everyRequestGetsACleanStatusOrACorrectAnswer(@ForAll("cases") Case c) {
    tries.incrementAndGet();
    ModelInferResponse response;
    try {
      response = fixture.stub().modelInfer(c.request());
    } catch (StatusRuntimeException e) {
      assertThat(e.getStatus().getCode()).as("%s for %s", e.getStatus(), c.request()).isIn(CLEAN);
      assertThat(c.expected()).as("a valid identity request was refused: %s", e.getStatus()).isNull();
      return;
    }
    succeeded.incrementAndGet();
    assertThat(response.getRawOutputContentsCount()).isEqualTo(response.getOutputsCount()).isPositive();
    if (c.expected() != null) {
      assertThat(response.getRawOutputContents(0)).isEqualTo(c.expected());
    }
  }

  @Provide
  Arbitrary<Case> cases() {
    return Arbitraries.frequencyOf(
        net.jqwik.api.Tuple.of(3, validIdentity()),
        net.jqwik.api.Tuple.of(7, mutated()));
  }

  /** identity_fp32 with batch 1..8 of arbitrary floats, NaN and infinities included. */
  Arbitrary<Case> validIdentity() {
    Arbitrary<Float> floats = Arbitraries.oneOf(Arbitraries.floats(),
        Arbitraries.of(Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, Float.MIN_VALUE, Float.MAX_VALUE));
    return Arbitraries.integers().between(1, 8).flatMap(rows -> floats.list().ofSize(rows * 16).map(values -> {
      ByteBuffer b = ByteBuffer.allocate(values.size() * 4).order(ByteOrder.LITTLE_ENDIAN);
      values.forEach(b::putFloat);
      ByteString bytes = ByteString.copyFrom(b.flip());
      return new Case(ModelInferRequest.newBuilder().setModelName("identity_fp32")
          .addInputs(Tensors.input("INPUT0", "FP32", rows, 16)).addRawInputContents(bytes).build(), bytes);
    }));
  }

  /** Random models, names, datatypes, shapes, contents: mostly invalid, sometimes valid by chance. */
  Arbitrary<Case> mutated() {
    Arbitrary<String> model = Arbitraries.oneOf(Arbitraries.of(MODELS),
        Arbitraries.of("", "../identity_fp32", "identity_fp32/../simple", "nope", "IDENTITY_FP32"),
        Arbitraries.strings().ofMaxLength(12));
    Arbitrary<String> inputName = Arbitraries.oneOf(Arbitraries.of("INPUT0", "INPUT1", "OUTPUT0"),
        Arbitraries.strings().ofMaxLength(6));
    Arbitrary<List<Long>> shape = Arbitraries.oneOf(
        Arbitraries.of(DIMS).list().ofMaxSize(4),
        Arbitraries.longs().list().ofMaxSize(3));
    Arbitrary<ModelInferRequest.InferInputTensor> tensor = Combinators.combine(inputName, Arbitraries.of(DATATYPES), shape)
        .as((name, type, dims) -> ModelInferRequest.InferInputTensor.newBuilder().setName(name).setDatatype(type)
            .addAllShape(dims).build());
    // 0: raw bytes sized for the shape when it is small; 1: random raw bytes; 2: garbage BYTES framing;
    // 3: typed contents of a random count; 4: no contents at all.
    Arbitrary<Integer> contentMode = Arbitraries.integers().between(0, 4);
    Arbitrary<Long> seed = Arbitraries.longs();
    return Combinators.combine(model, tensor.list().ofMaxSize(3), contentMode, seed, Arbitraries.integers().between(-1, 2))
        .as((m, tensors, mode, s, rawDelta) -> new Case(build(m, tensors, mode, s, rawDelta), null));
  }

  static ModelInferRequest build(String model, List<ModelInferRequest.InferInputTensor> tensors, int mode, long seed,
      int rawDelta) {
    java.util.SplittableRandom random = new java.util.SplittableRandom(seed);
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(model);
    List<ByteString> raw = new ArrayList<>();
    for (ModelInferRequest.InferInputTensor t : tensors) {
      switch (mode) {
        case 3 -> {
          InferTensorContents.Builder contents = InferTensorContents.newBuilder();
          int n = random.nextInt(0, 40);
          for (int i = 0; i < n; i++) {
            contents.addFp32Contents(Float.intBitsToFloat(random.nextInt()));
            contents.addIntContents(random.nextInt());
          }
          request.addInputs(t.toBuilder().setContents(contents));
        }
        case 4 -> request.addInputs(t);
        default -> {
          request.addInputs(t);
          raw.add(rawBytes(t, mode, random));
        }
      }
    }
    // Wrong raw counts now and then: one too few or one too many.
    if (rawDelta < 0 && !raw.isEmpty()) {
      raw.remove(raw.size() - 1);
    } else if (rawDelta > 1) {
      raw.add(ByteString.copyFrom(new byte[random.nextInt(0, 64)]));
    }
    request.addAllRawInputContents(raw);
    return request.build();
  }

  static ByteString rawBytes(ModelInferRequest.InferInputTensor t, int mode, java.util.SplittableRandom random) {
    if (mode == 0) {
      long elements = 1;
      for (long d : t.getShapeList()) {
        elements = d < 0 || d > 4096 ? -1 : elements * d;
        if (elements < 0 || elements > 4096) {
          elements = -1;
          break;
        }
      }
      if (elements >= 0) {
        int size = t.getDatatype().equals("INT64") || t.getDatatype().equals("FP64") ? 8
            : t.getDatatype().equals("FP16") || t.getDatatype().equals("BF16") ? 2
            : t.getDatatype().equals("BOOL") || t.getDatatype().equals("UINT8") ? 1 : 4;
        if (t.getDatatype().equals("BYTES")) {
          ByteBuffer b = ByteBuffer.allocate((int) elements * 7).order(ByteOrder.LITTLE_ENDIAN);
          for (int i = 0; i < elements; i++) {
            b.putInt(3).put((byte) 'a').put((byte) 'b').put((byte) 'c');
          }
          return ByteString.copyFrom(b.flip());
        }
        byte[] bytes = new byte[(int) elements * size];
        random.nextBytes(bytes);
        return ByteString.copyFrom(bytes);
      }
    }
    if (mode == 2) {
      ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
      while (b.remaining() >= 4) {
        int length = random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(0, 12);
        b.putInt(length);
        for (int i = 0; i < Math.min(b.remaining(), Math.max(0, Math.min(length, 8))); i++) {
          b.put((byte) random.nextInt());
        }
      }
      return ByteString.copyFrom(b.flip());
    }
    byte[] bytes = new byte[random.nextInt(0, 200)];
    random.nextBytes(bytes);
    return ByteString.copyFrom(bytes);
  }
}
