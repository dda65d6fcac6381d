package io.quiver.bench.jmh;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import io.quiver.core.DataType;
import io.quiver.core.Tensor;
import io.quiver.server.http.RestInferCodec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The REST codec's share of a batch job's record (issue 19: the job's allocation sets the young
 * collections that online requests wait behind). One record is a line of the worked example's input
 * ({@code mlp_classifier}: 16 FP32 values), one result a 4-value FP32 output written as a KServe v2
 * response line. Run with {@code -prof gc}: {@code gc.alloc.rate.norm} is bytes per record.
 *
 * <ul>
 *   <li>{@link #readTree}: Jackson's tree of the line and nothing else, the reference every decoder
 *       of the line pays at least;
 *   <li>{@link #tokensOnly}: a Jackson parser over the line, every token read, nothing kept: the floor
 *       of any decoder built on Jackson's streaming parser;
 *   <li>{@link #decodeRecord}: what a job's reader (and the REST endpoint) does per line: parse and
 *       decode to a tensor, the data read straight into the tensor's bytes;
 *   <li>{@link #encodeResult}: a result line through a generator of its own, as a REST response is
 *       written;
 *   <li>{@link #encodeChunk}: a chunk's result lines through one generator, as a job's committer writes
 *       them (per line).
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class JobRecordBenchmark {
  private static final RestInferCodec.Decoded JSON_ONLY = new RestInferCodec.Decoded("", List.of(), List.of(),
      List.of(), false, 0, 0);
  private static final ByteBuffer NO_BINARY = ByteBuffer.allocate(0);

  private static final int CHUNK = 64;

  private byte[] line;
  private Tensor[] outputs;
  private final ByteArrayOutputStream chunk = new ByteArrayOutputStream(1 << 16);
  private Stream stream;

  @Setup
  public void setUp() {
    Random random = new Random(7);
    StringBuilder json = new StringBuilder(
        "{\"id\":\"r42\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[");
    for (int i = 0; i < 16; i++) {
      json.append(i == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.4f", random.nextGaussian()));
    }
    line = json.append("]}]}").toString().getBytes(StandardCharsets.UTF_8);
    ByteBuffer probabilities = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    probabilities.putFloat(0.1f).putFloat(0.2f).putFloat(0.3f).putFloat(0.4f).flip();
    outputs = new Tensor[] {new Tensor("probabilities", DataType.FP32, new long[] {1, 4}, probabilities)};
    stream = new Stream(chunk);
  }

  @Benchmark
  public JsonNode readTree() throws IOException {
    return RestInferCodec.JSON.readTree(line);
  }

  @Benchmark
  public int tokensOnly() throws IOException {
    int n = 0;
    try (JsonParser parser = RestInferCodec.JSON.createParser(line)) {
      while (parser.nextToken() != null) {
        n++;
      }
    }
    return n;
  }

  @Benchmark
  public RestInferCodec.Decoded decodeRecord() throws IOException {
    try (JsonParser parser = RestInferCodec.JSON.createParser(line)) {
      return RestInferCodec.decode(RestInferCodec.parse(parser), NO_BINARY);
    }
  }

  /** One result line through a generator made for it (a REST response's way). */
  @Benchmark
  public int encodeResult() throws IOException {
    if (chunk.size() > 1 << 20) {
      chunk.reset();
    }
    RestInferCodec.encode("mlp_classifier", "r42", "1", outputs, JSON_ONLY, stream);
    chunk.write('\n');
    return chunk.size();
  }

  /** A chunk of 64 result lines through one generator (a batch job's way); per line, divide by 64. */
  @Benchmark
  @OperationsPerInvocation(CHUNK)
  public int encodeChunk() throws IOException {
    chunk.reset();
    try (JsonGenerator gen = RestInferCodec.JSON.getFactory().createGenerator(chunk)) {
      gen.setRootValueSeparator(null);
      for (int i = 0; i < CHUNK; i++) {
        RestInferCodec.writeJsonResponse(gen, "mlp_classifier", "r42", "1", outputs);
        gen.writeRaw('\n');
      }
    }
    return chunk.size();
  }

  /** The codec's output stream over a byte array, as the job's committer has it. */
  private static final class Stream extends RestInferCodec.CountingStream {
    private final ByteArrayOutputStream out;

    Stream(ByteArrayOutputStream out) {
      this.out = out;
    }

    @Override
    public long count() {
      return out.size();
    }

    @Override
    public void write(ByteBuffer data) {
      throw new UnsupportedOperationException("JSON only");
    }

    @Override
    public void write(int b) {
      out.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      out.write(b, off, len);
    }
  }
}
