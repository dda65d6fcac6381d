package io.quiver.runtime.onnxruntime;

import static io.quiver.runtime.onnxruntime.TestRepository.bytes;
import static io.quiver.runtime.onnxruntime.TestRepository.floatValues;
import static io.quiver.runtime.onnxruntime.TestRepository.floats;
import static io.quiver.runtime.onnxruntime.TestRepository.intValues;
import static io.quiver.runtime.onnxruntime.TestRepository.ints;
import static io.quiver.runtime.onnxruntime.TestRepository.longs;
import static io.quiver.runtime.onnxruntime.TestRepository.tensor;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.ModelRunner;
import io.quiver.examples.ExampleModels;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Runs generated models through real ONNX Runtime sessions. */
class OnnxRuntimeRunnerTest {
  @TempDir static Path root;
  static TestRepository repo;

  @BeforeAll
  static void generateModels() throws IOException {
    ExampleModels.writeExampleRepository(root);
    ExampleModels.writeDatatypeIdentities(root);
    ExampleModels.writeUnsignedOutputs(root);
    repo = new TestRepository(root);
  }

  static List<String> supportedDatatypes() {
    return ExampleModels.SUPPORTED_DATATYPES;
  }

  @ParameterizedTest
  @MethodSource("supportedDatatypes")
  void run_identityOfEachDatatype_returnsTheInputBytes(String wireName) {
    DataType type = DataType.fromWireName(wireName);
    long[] shape = {2, ExampleModels.DATATYPE_ROW};
    Tensor input = type == DataType.BYTES
        ? bytesTensor("INPUT0", shape, List.of("a", "", "héllo wörld", "😀", "tab\there", "x".repeat(300), "quiver", "z"))
        : tensor("INPUT0", type, shape, sampleBytes(type, 8));
    try (ModelRunner runner = repo.runner(ExampleModels.datatypeModelName(wireName))) {
      Tensor[] outputs = runner.run(new Tensor[] {input}, new int[] {0});

      assertThat(outputs).hasSize(1);
      assertThat(outputs[0].name()).isEqualTo("OUTPUT0");
      assertThat(outputs[0].dataType()).isEqualTo(type);
      assertThat(outputs[0].shape()).containsExactly(2, ExampleModels.DATATYPE_ROW);
      assertThat(bytes(outputs[0])).isEqualTo(bytes(input));
    }
  }

  @Test
  void run_bytesWithNulAndLongElements_roundTripsExactly() {
    List<String> elements = List.of("nul\u0000inside", "\u0000", "ünïcödé ✓", "𝄞 clef");
    try (ModelRunner runner = repo.runner("identity_bytes")) {
      Tensor input = bytesTensor("INPUT0", new long[] {2, 2}, elements);
      Tensor output = runner.run(new Tensor[] {input}, new int[] {0})[0];

      assertThat(output.shape()).containsExactly(2, 2);
      assertThat(BytesElements.decode(output.data()))
          .extracting(b -> new String(b, StandardCharsets.UTF_8))
          .containsExactlyElementsOf(elements);
    }
  }

  @Test
  void run_bytesThatAreNotUtf8_isInvalidArgument() {
    ByteBuffer data = BytesElements.encode(List.of(new byte[] {(byte) 0xff, (byte) 0xfe}));
    ByteBuffer direct = ByteBuffer.allocateDirect(data.remaining()).put(data).flip();
    Tensor input = new Tensor("INPUT0", DataType.BYTES, new long[] {1, 1}, direct);
    try (ModelRunner runner = repo.runner("identity_bytes")) {
      assertThatThrownBy(() -> runner.run(new Tensor[] {input}, new int[] {0}))
          .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
          .hasMessageContaining("INPUT0")
          .hasMessageContaining("UTF-8");
    }
  }

  @Test
  void run_simple_addsAndSubtracts() {
    int[] a = new int[32];
    int[] b = new int[32];
    for (int i = 0; i < 32; i++) {
      a[i] = i * 7 - 50;
      b[i] = 1000 - i * i;
    }
    try (ModelRunner runner = repo.runner("simple")) {
      Tensor[] outputs = runner.run(
          new Tensor[] {ints("INPUT0", new long[] {2, 16}, a), ints("INPUT1", new long[] {2, 16}, b)}, new int[] {0, 1});

      int[] sum = intValues(outputs[0]);
      int[] difference = intValues(outputs[1]);
      for (int i = 0; i < 32; i++) {
        assertThat(sum[i]).as("OUTPUT0[%d]", i).isEqualTo(a[i] + b[i]);
        assertThat(difference[i]).as("OUTPUT1[%d]", i).isEqualTo(a[i] - b[i]);
      }
      assertThat(outputs[0].name()).isEqualTo("OUTPUT0");
      assertThat(outputs[1].name()).isEqualTo("OUTPUT1");
    }
  }

  @Test
  void run_theSameBatchTensorAgainWithNewContents_readsTheNewContents() {
    // The batcher passes its pooled batch tensor object again for every batch of that size; the runner
    // keeps the ONNX Runtime tensor over it, which must read whatever the buffer holds now.
    Tensor a = ints("INPUT0", new long[] {1, 16}, new int[16]);
    Tensor b = ints("INPUT1", new long[] {1, 16}, new int[16]);
    try (ModelRunner runner = repo.runner("simple")) {
      for (int round = 1; round <= 5; round++) {
        for (int i = 0; i < 16; i++) {
          a.data().putInt(i * 4, round * 100 + i); // same buffer, new values
          b.data().putInt(i * 4, round);
        }
        Tensor[] outputs = runner.run(new Tensor[] {a, b}, new int[] {0, 1});
        for (int i = 0; i < 16; i++) {
          assertThat(intValues(outputs[0])[i]).isEqualTo(round * 100 + i + round);
          assertThat(intValues(outputs[1])[i]).isEqualTo(round * 100 + i - round);
        }
      }
    }
  }

  @Test
  void run_outputs_stayValidUntilTheSecondFollowingRun() {
    try (ModelRunner runner = repo.runner("simple")) {
      Tensor[] first = runner.run(new Tensor[] {ints("INPUT0", new long[] {2, 16}, seq(32, 0)),
          ints("INPUT1", new long[] {2, 16}, seq(32, 0))}, new int[] {0, 1});
      Tensor[] second = runner.run(new Tensor[] {ints("INPUT0", new long[] {2, 16}, seq(32, 1000)),
          ints("INPUT1", new long[] {2, 16}, seq(32, 0))}, new int[] {0, 1});
      // Known output shapes are written by ONNX Runtime into the runner's own direct buffers (pinned).
      assertThat(first[0].data().isDirect()).isTrue();
      // Both sets still hold their own run's answers (the batcher delivers one batch while the next runs).
      assertThat(intValues(first[0])).containsExactly(doubled(seq(32, 0)));
      assertThat(intValues(second[0])[0]).isEqualTo(1000);
      assertThat(intValues(second[1])).containsOnly(1000);
      // Different batch sizes and output subsets come out right too, from either set.
      for (int rows = 1; rows <= 3; rows++) {
        int[] x = seq(16 * rows, rows);
        Tensor[] out = runner.run(new Tensor[] {ints("INPUT0", new long[] {rows, 16}, x),
            ints("INPUT1", new long[] {rows, 16}, x)}, new int[] {1});
        assertThat(out[0].shape()).containsExactly(rows, 16);
        assertThat(intValues(out[0])).containsOnly(0);
      }
    }
  }

  private static int[] seq(int n, int from) {
    int[] v = new int[n];
    for (int i = 0; i < n; i++) {
      v[i] = from + i;
    }
    return v;
  }

  private static int[] doubled(int[] v) {
    int[] d = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = 2 * v[i];
    }
    return d;
  }

  @Test
  void run_withASubsetOfOutputs_returnsOnlyThoseInRequestedOrder() {
    int[] a = new int[16];
    int[] b = new int[16];
    java.util.Arrays.fill(a, 5);
    java.util.Arrays.fill(b, 3);
    try (ModelRunner runner = repo.runner("simple")) {
      Tensor[] inputs = {ints("INPUT0", new long[] {1, 16}, a), ints("INPUT1", new long[] {1, 16}, b)};

      Tensor[] onlySecond = runner.run(inputs, new int[] {1});
      assertThat(onlySecond).hasSize(1);
      assertThat(onlySecond[0].name()).isEqualTo("OUTPUT1");
      assertThat(intValues(onlySecond[0])).containsOnly(2);

      Tensor[] reversed = runner.run(inputs, new int[] {1, 0});
      assertThat(reversed).extracting(Tensor::name).containsExactly("OUTPUT1", "OUTPUT0");
      assertThat(intValues(reversed[1])).containsOnly(8);
    }
  }

  @Test
  void run_mlpClassifier_returnsProbabilitiesThatSumToOne() {
    float[] features = randomFloats(7 * 16, 1);
    try (ModelRunner runner = repo.runner("mlp_classifier")) {
      Tensor output = runner.run(new Tensor[] {floats("features", new long[] {7, 16}, features)}, new int[] {0})[0];

      assertThat(output.name()).isEqualTo("probabilities");
      assertThat(output.shape()).containsExactly(7, 4);
      float[] p = floatValues(output);
      for (int row = 0; row < 7; row++) {
        float sum = 0;
        for (int k = 0; k < 4; k++) {
          assertThat(p[row * 4 + k]).isBetween(0f, 1f);
          sum += p[row * 4 + k];
        }
        assertThat(sum).as("row %d", row).isCloseTo(1f, within(1e-5f));
      }
    }
  }

  @Test
  void run_batchOf7_matchesSevenRunsOfBatch1() {
    float[] features = randomFloats(7 * 16, 2);
    try (ModelRunner runner = repo.runner("mlp_classifier")) {
      float[] batched = floatValues(runner.run(new Tensor[] {floats("features", new long[] {7, 16}, features)}, new int[] {0})[0]);
      for (int row = 0; row < 7; row++) {
        float[] one = new float[16];
        System.arraycopy(features, row * 16, one, 0, 16);
        Tensor single = runner.run(new Tensor[] {floats("features", new long[] {1, 16}, one)}, new int[] {0})[0];

        assertThat(single.shape()).containsExactly(1, 4);
        float[] p = floatValues(single);
        for (int k = 0; k < 4; k++) {
          assertThat(p[k]).isCloseTo(batched[row * 4 + k], within(1e-6f));
        }
      }
    }
  }

  @Test
  void run_identityFp32AtBatch1And7_keepsShapeAndValues() {
    try (ModelRunner runner = repo.runner("identity_fp32")) {
      for (int batch : new int[] {1, 7}) {
        float[] values = randomFloats(batch * 16, batch);
        Tensor output = runner.run(new Tensor[] {floats("INPUT0", new long[] {batch, 16}, values)}, new int[] {0})[0];

        assertThat(output.shape()).containsExactly(batch, 16);
        assertThat(floatValues(output)).containsExactly(values);
        assertThat(output.data().order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(output.data().position()).isZero();
      }
    }
  }

  @Test
  void run_heapInputBuffer_isAcceptedToo() {
    ByteBuffer heap = ByteBuffer.allocate(8 * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0; i < 8; i++) {
      heap.putLong(i * 1_000_000_007L);
    }
    heap.flip();
    try (ModelRunner runner = repo.runner(ExampleModels.NO_CONFIG_MODEL)) {
      Tensor output = runner.run(new Tensor[] {new Tensor("INPUT0", DataType.INT64, new long[] {1, 8}, heap)}, new int[] {0})[0];
      assertThat(output.data().getLong(7 * 8)).isEqualTo(7 * 1_000_000_007L);
    }
  }

  @Test
  void run_unsignedOutputs_areReadWithTheirBits() {
    try (ModelRunner runner = repo.runner("unsigned_outputs")) {
      Tensor[] outputs = runner.run(new Tensor[] {longs("INPUT0", new long[] {1, 4}, 0, 1, 70_000, -1)}, new int[] {0, 1, 2});

      assertThat(outputs).extracting(Tensor::dataType).containsExactly(DataType.UINT16, DataType.UINT32, DataType.UINT64);
      ByteBuffer u16 = outputs[0].data();
      assertThat(new int[] {u16.getShort(0) & 0xffff, u16.getShort(2) & 0xffff, u16.getShort(4) & 0xffff, u16.getShort(6) & 0xffff})
          .containsExactly(0, 1, 70_000 & 0xffff, 0xffff);
      ByteBuffer u32 = outputs[1].data();
      assertThat(Integer.toUnsignedLong(u32.getInt(8))).isEqualTo(70_000L);
      assertThat(Integer.toUnsignedLong(u32.getInt(12))).isEqualTo(0xffff_ffffL);
      ByteBuffer u64 = outputs[2].data();
      assertThat(Long.toUnsignedString(u64.getLong(24))).isEqualTo("18446744073709551615");
    }
  }

  @Test
  void run_inputOfWrongByteSize_isInvalidArgumentNotACrash() {
    try (ModelRunner runner = repo.runner("identity_fp32")) {
      Tensor tooShort = floats("INPUT0", new long[] {1, 16}, new float[15]);
      assertThatThrownBy(() -> runner.run(new Tensor[] {tooShort}, new int[] {0}))
          .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT))
          .hasMessageContaining("INPUT0")
          .hasMessageContaining("64 bytes");
    }
  }

  @Test
  void run_shapeTheModelRejects_isInternalWithOnnxRuntimesMessage() {
    try (ModelRunner runner = repo.runner("identity_fp32")) {
      Tensor wrongRow = floats("INPUT0", new long[] {1, 8}, new float[8]);
      assertThatThrownBy(() -> runner.run(new Tensor[] {wrongRow}, new int[] {0}))
          .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INTERNAL))
          .hasMessageContaining("identity_fp32")
          .hasMessageContaining("ONNX Runtime failed");
      // The runner is still usable after a failed run.
      Tensor ok = floats("INPUT0", new long[] {1, 16}, new float[16]);
      assertThat(runner.run(new Tensor[] {ok}, new int[] {0})[0].shape()).containsExactly(1, 16);
    }
  }

  @Test
  void run_manyTimes_doesNotGrowTheHeap() throws Exception {
    // Each run creates an input OnnxTensor and an OrtSession.Result of 16 KiB each (256 x 16 floats). Were
    // either left open, 20,000 runs would hold ~640 MiB of native memory; were the runner to keep each
    // run's output (or a heap copy of it) reachable, the heap would grow by ~320 MiB. The bounds are a
    // fraction of that and far above what the JIT, GC bookkeeping and allocator caches move.
    int rows = 256;
    int runs = 20_000;
    float[] values = randomFloats(rows * 16, 3);
    try (ModelRunner runner = repo.runner("identity_fp32")) {
      Tensor input = floats("INPUT0", new long[] {rows, 16}, values);
      for (int i = 0; i < 2_000; i++) { // warm: JIT, ONNX Runtime's arena, allocator caches
        runner.run(new Tensor[] {input}, new int[] {0});
      }
      long heapBefore = heapAfterGc();
      long residentBefore = nonHeapResidentBytes();
      float[] last = null;
      for (int i = 0; i < runs; i++) {
        Tensor[] out = runner.run(new Tensor[] {input}, new int[] {0});
        if (i == runs - 1) {
          last = floatValues(out[0]);
        }
      }
      long heapGrowth = heapAfterGc() - heapBefore;
      long residentGrowth = nonHeapResidentBytes() - residentBefore;
      System.out.printf("onnxruntime %d runs of 16 KiB: heap %+d KiB, resident outside the heap %+d KiB%n", runs, heapGrowth >> 10,
          residentGrowth >> 10);
      assertThat(last).as("the last run still computes").containsExactly(values);
      assertThat(heapGrowth).as("heap growth after GC over %d runs (bytes)", runs).isLessThan(32L << 20);
      assertThat(residentGrowth).as("resident set growth outside the heap over %d runs (bytes)", runs).isLessThan(160L << 20);
    }
  }

  /** Heap in use after a full GC (the least of three readings). */
  private static long heapAfterGc() throws InterruptedException {
    long least = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(20);
      least = Math.min(least, java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
    }
    return least;
  }

  /**
   * The process's resident set minus the Java heap's committed size (which the GC may grow or shrink on its
   * own): what native allocations, ONNX Runtime's among them, hold. Linux (/proc); 0 elsewhere.
   */
  private static long nonHeapResidentBytes() throws IOException {
    Path status = Path.of("/proc/self/status");
    if (!java.nio.file.Files.exists(status)) {
      return 0;
    }
    for (String line : java.nio.file.Files.readAllLines(status)) {
      if (line.startsWith("VmRSS:")) {
        long rss = Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
        return rss - java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
      }
    }
    return 0;
  }

  @Test
  void close_isIdempotent_andRunAfterCloseFails() {
    ModelRunner runner = repo.runner("identity_fp32");
    runner.close();
    runner.close();
    assertThatThrownBy(() -> runner.run(new Tensor[] {floats("INPUT0", new long[] {1, 16}, new float[16])}, new int[] {0}))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION));
  }

  private static Tensor bytesTensor(String name, long[] shape, List<String> elements) {
    ByteBuffer heap = BytesElements.encodeStrings(elements);
    ByteBuffer direct = ByteBuffer.allocateDirect(heap.remaining()).order(ByteOrder.LITTLE_ENDIAN).put(heap).flip();
    return new Tensor(name, DataType.BYTES, shape, direct);
  }

  /** Valid values of each type (BOOL 0/1, finite FP16/BF16) in little-endian bytes. */
  private static byte[] sampleBytes(DataType type, int count) {
    ByteBuffer out = ByteBuffer.allocate(count * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    Random random = new Random(42);
    for (int i = 0; i < count; i++) {
      switch (type) {
        case BOOL: out.put((byte) (i % 3 == 0 ? 1 : 0)); break;
        case UINT8: case INT8: out.put((byte) (random.nextInt(256) - 128)); break;
        case INT16: out.putShort((short) random.nextInt()); break;
        case FP16: out.putShort(FP16_SAMPLES[i % FP16_SAMPLES.length]); break;
        case BF16: out.putShort((short) (Float.floatToIntBits(random.nextFloat() * 100 - 50) >>> 16)); break;
        case INT32: out.putInt(random.nextInt()); break;
        case INT64: out.putLong(random.nextLong()); break;
        case FP32: out.putFloat(random.nextFloat() * 1e6f - 5e5f); break;
        case FP64: out.putDouble(random.nextDouble() * 1e300); break;
        default: throw new IllegalArgumentException(type.toString());
      }
    }
    return out.array();
  }

  /** 1.0, -2.0, 0.5, 65504 (max), smallest subnormal, -0.0, 3.140625, 0. */
  private static final short[] FP16_SAMPLES = {
      0x3c00, (short) 0xc000, 0x3800, 0x7bff, 0x0001, (short) 0x8000, 0x4248, 0x0000};

  private static float[] randomFloats(int count, long seed) {
    Random random = new Random(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }
}
