package io.quiver.server.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/** What the batch-job tests share: mlp_classifier inputs as JSON Lines, direct inference, output reading. */
final class JobTestSupport {
  static final ObjectMapper JSON = new ObjectMapper();
  static final int FEATURES = 16;
  static final int CLASSES = 4;

  private JobTestSupport() {}

  /** The features of record i, as the decimal text written to the file (and as a float, parsed the way the server does). */
  static String featureText(long i, int k) {
    long v = (i * 7919 + k * 104_729L) % 2001;
    return String.format(Locale.ROOT, "%.3f", (v - 1000) / 400.0);
  }

  static float[] features(long i) {
    float[] f = new float[FEATURES];
    for (int k = 0; k < FEATURES; k++) {
      f[k] = (float) Double.parseDouble(featureText(i, k));
    }
    return f;
  }

  /** One KServe v2 REST request for mlp_classifier, with id "r{i}". */
  static String requestLine(long i) {
    StringBuilder sb = new StringBuilder(200);
    sb.append("{\"id\":\"r").append(i).append("\",\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,16],\"data\":[");
    for (int k = 0; k < FEATURES; k++) {
      if (k > 0) {
        sb.append(',');
      }
      sb.append(featureText(i, k));
    }
    return sb.append("]}]}").toString();
  }

  /** Writes {@code n} requests, one per line (plus the extra lines at the given record positions). */
  static void writeJsonl(Path file, int n, Map<Integer, String> extraBefore) throws IOException {
    try (OutputStream out = Files.newOutputStream(file);
        BufferedWriter w = new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8), 1 << 16)) {
      for (int i = 0; i < n; i++) {
        String extra = extraBefore.get(i);
        if (extra != null) {
          w.write(extra);
          w.write('\n');
        }
        w.write(requestLine(i));
        w.write('\n');
      }
    }
  }

  /** Direct inference: mlp_classifier's ONNX file run by ONNX Runtime in this JVM, in batches. */
  static float[][] directInference(Path modelFile, int n) throws Exception {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    float[][] out = new float[n][];
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OrtSession session = env.createSession(modelFile.toString(), options)) {
      int batch = 1000;
      for (int start = 0; start < n; start += batch) {
        int rows = Math.min(batch, n - start);
        FloatBuffer in = FloatBuffer.allocate(rows * FEATURES);
        for (int r = 0; r < rows; r++) {
          in.put(features(start + r));
        }
        in.flip();
        try (OnnxTensor tensor = OnnxTensor.createTensor(env, in, new long[] {rows, FEATURES});
            OrtSession.Result result = session.run(Map.of("features", tensor))) {
          float[][] probabilities = (float[][]) result.get(0).getValue();
          System.arraycopy(probabilities, 0, out, start, rows);
        }
      }
    }
    return out;
  }

  /** Every line of the files named {@code prefix*} in {@code dir}, files in name order. */
  static List<JsonNode> readLines(Path dir, String prefix) throws IOException {
    List<Path> files;
    try (Stream<Path> list = Files.list(dir)) {
      files = list.filter(p -> p.getFileName().toString().startsWith(prefix)).sorted().toList();
    }
    List<JsonNode> lines = new ArrayList<>();
    for (Path f : files) {
      for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
        lines.add(JSON.readTree(line));
      }
    }
    return lines;
  }

  /** Checks that the results are exactly records 0..n-1 (minus {@code failed}), in order, each equal to direct inference. */
  static void assertResults(List<JsonNode> results, float[][] expected, java.util.Set<Integer> failed) {
    assertThat(results).hasSize(expected.length - failed.size());
    int at = 0;
    for (int i = 0; i < expected.length; i++) {
      if (failed.contains(i)) {
        continue;
      }
      JsonNode r = results.get(at++);
      assertThat(r.get("id").asText()).isEqualTo("r" + i);
      assertThat(r.get("model_name").asText()).isEqualTo("mlp_classifier");
      JsonNode output = r.get("outputs").get(0);
      assertThat(output.get("name").asText()).isEqualTo("probabilities");
      JsonNode data = output.get("data");
      assertThat(data.size()).isEqualTo(CLASSES);
      for (int c = 0; c < CLASSES; c++) {
        float got = (float) data.get(c).asDouble();
        if (Math.abs(got - expected[i][c]) > 1e-5f) {
          throw new AssertionError("record " + i + " class " + c + ": job " + got + ", direct inference " + expected[i][c]);
        }
      }
    }
  }

  static void waitUntil(BooleanSupplier condition, long timeoutMillis, String what) throws InterruptedException {
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }
}
