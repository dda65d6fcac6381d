package io.quiver.runtime.tensorflow;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.SessionFunction;
import org.tensorflow.Signature;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TFloat64;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.TString;
import org.tensorflow.types.TUint16;
import org.tensorflow.types.TUint8;
import org.tensorflow.types.family.TType;

/**
 * Builds the SavedModels the tests (and examples/models) use, with TensorFlow Java's own graph API:
 * no downloads, no Python. Each method writes a SavedModel directory (tag {@code serve}).
 */
final class TfTestModels {
  private TfTestModels() {}

  /**
   * Triton's {@code simple}, in TensorFlow: {@code INPUT0}, {@code INPUT1} INT32 [-1,16] →
   * {@code OUTPUT0} = sum, {@code OUTPUT1} = difference; signature {@code serving_default}.
   */
  static Path writeAddSub(Path savedModelDir) throws IOException {
    try (Graph graph = new Graph(); Session session = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Placeholder<TInt32> a = tf.withName("INPUT0").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, 16)));
      Placeholder<TInt32> b = tf.withName("INPUT1").placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, 16)));
      Signature signature = Signature.builder().key(Signature.DEFAULT_KEY)
          .input("INPUT0", a).input("INPUT1", b)
          .output("OUTPUT0", tf.withName("OUTPUT0").math.add(a, b))
          .output("OUTPUT1", tf.withName("OUTPUT1").math.sub(a, b))
          .build();
      export(savedModelDir, session, signature);
    }
    return savedModelDir;
  }

  /**
   * Two signatures on one graph: {@code serving_default} ({@code x} FP32 [-1,4] → {@code y} = x + 1)
   * and {@code double} ({@code x} → {@code y} = 2x).
   */
  static Path writeTwoSignatures(Path savedModelDir) throws IOException {
    try (Graph graph = new Graph(); Session session = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Placeholder<TFloat32> x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 4)));
      Operand<TFloat32> plusOne = tf.math.add(x, tf.constant(1f));
      Operand<TFloat32> doubled = tf.math.mul(x, tf.constant(2f));
      Signature first = Signature.builder().key(Signature.DEFAULT_KEY).input("x", x).output("y", plusOne).build();
      Signature second = Signature.builder().key("double").input("x", x).output("y", doubled).build();
      SavedModelBundle.exporter(savedModelDir.toString())
          .withFunctions(SessionFunction.create(first, session), SessionFunction.create(second, session))
          .export();
    }
    return savedModelDir;
  }

  /** A fixed shape, no batch dimension: {@code m} FP64 [2,3] → {@code t} = m * 0.5 + 3, FP64 [2,3]. */
  static Path writeFixedShape(Path savedModelDir) throws IOException {
    try (Graph graph = new Graph(); Session session = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Placeholder<TFloat64> m = tf.placeholder(TFloat64.class, Placeholder.shape(Shape.of(2, 3)));
      Operand<TFloat64> t = tf.math.add(tf.math.mul(m, tf.constant(0.5)), tf.constant(3.0));
      export(savedModelDir, session, Signature.builder().input("m", m).output("t", t).build());
    }
    return savedModelDir;
  }

  /**
   * One identity per datatype this runtime maps: inputs {@code in_<TYPE>} [-1,-1] → outputs
   * {@code out_<TYPE>}, for BOOL, UINT8, UINT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES.
   */
  static Path writeIdentities(Path savedModelDir) throws IOException {
    try (Graph graph = new Graph(); Session session = new Session(graph)) {
      Ops tf = Ops.create(graph);
      Signature.Builder signature = Signature.builder();
      identity(tf, signature, "BOOL", TBool.class);
      identity(tf, signature, "UINT8", TUint8.class);
      identity(tf, signature, "UINT16", TUint16.class);
      identity(tf, signature, "INT32", TInt32.class);
      identity(tf, signature, "INT64", TInt64.class);
      identity(tf, signature, "FP16", TFloat16.class);
      identity(tf, signature, "BF16", TBfloat16.class);
      identity(tf, signature, "FP32", TFloat32.class);
      identity(tf, signature, "FP64", TFloat64.class);
      identity(tf, signature, "BYTES", TString.class);
      export(savedModelDir, session, signature.build());
    }
    return savedModelDir;
  }

  /** A directory that looks like a SavedModel but whose saved_model.pb is not a protobuf. */
  static Path writeCorrupt(Path savedModelDir) throws IOException {
    Files.createDirectories(savedModelDir.resolve("variables"));
    Files.write(savedModelDir.resolve("saved_model.pb"), "this is not a SavedModel".getBytes(StandardCharsets.UTF_8));
    return savedModelDir;
  }

  private static <T extends TType> void identity(Ops tf, Signature.Builder signature, String name, Class<T> type) {
    Placeholder<T> in = tf.placeholder(type, Placeholder.shape(Shape.of(-1, -1)));
    signature.input("in_" + name, in).output("out_" + name, tf.identity(in));
  }

  private static void export(Path dir, Session session, Signature signature) throws IOException {
    SavedModelBundle.exporter(dir.toString()).withFunction(SessionFunction.create(signature, session)).export();
  }
}
