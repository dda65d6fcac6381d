package io.quiver.server;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.server.shm.SharedMemoryRegistry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What a request asked for beyond plain outputs, and the shared-memory regions it uses, as both
 * transports decode them:
 * <ul>
 *   <li>Triton's classification extension: an output with {@code classification: k} is answered as a
 *       BYTES tensor of the k highest entries per batch row, each {@code "score:index[:label]"} (Triton's
 *       format: the score as C's {@code %f}), labels from the output's {@code label_filename};</li>
 *   <li>system shared memory: an output with {@code shared_memory_region} is written into the region
 *       (checked to fit) and answered with its name, datatype, shape and the region's parameters, without
 *       its bytes; inputs read from regions hold {@link SharedMemoryRegistry.Lease}s here.</li>
 * </ul>
 * Entries are indexed like the request's outputs (request order). {@link #PLAIN} (no extension used) is
 * shared and costs nothing; a request using an extension gets its own plan, built on its transport
 * thread, applied on the thread that answers it, and {@link #release() released} once answered or
 * refused. Not thread-safe beyond that handover.
 */
public final class OutputPlan {
  /** Nothing beyond plain outputs. */
  public static final OutputPlan PLAIN = new OutputPlan(0);

  private final int[] classification;
  private final SharedMemoryRegistry.Lease[] outputRegions;
  private final List<SharedMemoryRegistry.Lease> leases = new ArrayList<>(2);
  private boolean anyClassification;
  private boolean anyRegion;

  private OutputPlan(int outputs) {
    this.classification = new int[outputs];
    this.outputRegions = new SharedMemoryRegistry.Lease[outputs];
  }

  /** A plan for a request naming {@code outputs} outputs. */
  public static OutputPlan forOutputs(int outputs) {
    return new OutputPlan(outputs);
  }

  public boolean isPlain() {
    return !anyClassification && !anyRegion && leases.isEmpty();
  }

  /** Output {@code j} is answered with its top {@code k} classes. */
  public void classify(int j, int k) {
    classification[j] = k;
    anyClassification = true;
  }

  /** Output {@code j} goes into {@code lease} (held until release). */
  public void writeTo(int j, SharedMemoryRegistry.Lease lease) {
    outputRegions[j] = lease;
    leases.add(lease);
    anyRegion = true;
  }

  /** An input read from shared memory: its lease is held until release. */
  public void holdInput(SharedMemoryRegistry.Lease lease) {
    leases.add(lease);
  }

  public boolean hasSharedMemoryOutputs() {
    return anyRegion;
  }

  /** The region output {@code j} was written into, or null. */
  public String sharedMemoryRegion(int j) {
    return j < outputRegions.length && outputRegions[j] != null ? outputRegions[j].regionName() : null;
  }

  public long sharedMemoryOffset(int j) {
    return outputRegions[j].offset();
  }

  /** Whether output {@code j} was asked as classification. */
  public int classification(int j) {
    return j < classification.length ? classification[j] : 0;
  }

  /**
   * Checks the plan against the routed model: a classified output must be numeric.
   *
   * @param outputIndices the request's outputs as signature positions
   * @throws InferenceException INVALID_ARGUMENT naming the output
   */
  public void check(String model, ModelSignature signature, int[] outputIndices) {
    if (!anyClassification) {
      return;
    }
    for (int j = 0; j < classification.length && j < outputIndices.length; j++) {
      if (classification[j] > 0) {
        DataType type = signature.outputs().get(outputIndices[j]).dataType();
        if (!classifiable(type)) {
          throw InferenceException.invalidField("outputs[" + signature.outputs().get(outputIndices[j]).name()
              + "].parameters[classification]", "class result not available for output '%s' of model '%s' due to"
              + " unsupported type '%s' (the classification parameter needs a numeric output)", signature.outputs().get(outputIndices[j]).name(), model, type.wireName());
        }
      }
    }
  }

  /**
   * The outputs to answer with: classified outputs replaced by their BYTES results, outputs for shared
   * memory written into their regions (and kept, for their name, datatype and shape). Runs while the
   * runner's outputs are valid (in the completion callback).
   *
   * @param labels the labels of each signature output (null entries: none)
   * @param outputIndices the request's outputs as signature positions
   * @throws InferenceException INVALID_ARGUMENT when an output does not fit its region
   */
  public Tensor[] apply(ModelSignature signature, List<List<String>> labels, int[] outputIndices, Tensor[] outputs) {
    if (!anyClassification && !anyRegion) {
      return outputs;
    }
    Tensor[] shaped = anyClassification ? outputs.clone() : outputs;
    for (int j = 0; j < outputs.length; j++) {
      if (classification(j) > 0) {
        List<String> names = labels == null ? null : labels.get(outputIndices[j]);
        shaped[j] = classify(outputs[j], classification[j], signature.batches(), names);
      }
      SharedMemoryRegistry.Lease region = j < outputRegions.length ? outputRegions[j] : null;
      if (region != null) {
        Tensor out = outputs[j];
        if (out.byteSize() > region.byteSize()) {
          throw InferenceException.invalidField("outputs[" + out.name() + "].parameters[shared_memory_byte_size]",
              "shared memory size specified with the request for output '%s' (shared_memory_byte_size %d) should be at"
                  + " least %d bytes to hold the results", out.name(), region.byteSize(), out.byteSize());
        }
        out.copyTo(region.buffer(), 0); // the one copy: straight into the client's region
      }
    }
    return shaped;
  }

  /** Releases every region lease (idempotent). */
  public void release() {
    for (SharedMemoryRegistry.Lease lease : leases) {
      lease.release();
    }
  }

  // ---- classification ----

  static boolean classifiable(DataType type) {
    return switch (type) {
      case UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP32, FP64 -> true;
      default -> false;
    };
  }

  /** Triton's most elements per classified row. */
  static final int MAX_CLASSIFICATION_ELEMENTS = 1_000_000;

  /**
   * Top-k of each batch row as Triton writes them: "score:index" plus ":label" when the output has labels;
   * the result is BYTES [batch, min(k, row)] (or [min(k, elements)] without a batch dimension).
   */
  static Tensor classify(Tensor out, int k, boolean batches, List<String> labels) {
    long[] shape = out.shape();
    int rows = batches && shape.length > 0 ? (int) shape[0] : 1;
    long elements = out.elementCount();
    int perRow = rows == 0 ? 0 : (int) (elements / rows);
    if (perRow > MAX_CLASSIFICATION_ELEMENTS) {
      throw InferenceException.invalidField("outputs[" + out.name() + "].parameters[classification]",
          "classification output tensor '%s' too large (%d elements per row; at most %d)", out.name(), perRow,
          MAX_CLASSIFICATION_ELEMENTS);
    }
    int top = Math.min(k, perRow);
    ByteBuffer data = out.data();
    int size = out.dataType().byteSize();
    List<byte[]> results = new ArrayList<>(rows * top);
    Integer[] order = new Integer[perRow];
    double[] values = new double[perRow];
    String[] texts = new String[perRow];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < perRow; i++) {
        int at = (r * perRow + i) * size;
        order[i] = i;
        values[i] = value(out.dataType(), data, at);
        texts[i] = text(out.dataType(), data, at);
      }
      // Highest first; ties keep the lower index first (a stable order; Triton's sort leaves ties unspecified).
      java.util.Arrays.sort(order, 0, perRow, (a, b) -> Double.compare(values[b], values[a]));
      for (int c = 0; c < top; c++) {
        int index = order[c];
        String entry = texts[index] + ":" + index;
        if (labels != null && index < labels.size()) {
          entry += ":" + labels.get(index);
        }
        results.add(entry.getBytes(StandardCharsets.UTF_8));
      }
    }
    long[] resultShape = batches && shape.length > 0 ? new long[] {rows, top} : new long[] {top};
    return new Tensor(out.name(), DataType.BYTES, resultShape, BytesElements.encode(results));
  }

  private static double value(DataType type, ByteBuffer d, int at) {
    return switch (type) {
      case UINT8 -> d.get(at) & 0xFF;
      case INT8 -> d.get(at);
      case UINT16 -> d.getShort(at) & 0xFFFF;
      case INT16 -> d.getShort(at);
      case UINT32 -> Integer.toUnsignedLong(d.getInt(at));
      case INT32 -> d.getInt(at);
      case UINT64 -> unsigned(d.getLong(at));
      case INT64 -> d.getLong(at);
      case FP32 -> d.getFloat(at);
      case FP64 -> d.getDouble(at);
      default -> throw new AssertionError(type);
    };
  }

  private static double unsigned(long v) {
    return v >= 0 ? v : (double) (v >>> 1) * 2.0 + (v & 1);
  }

  /** The score as Triton's std::to_string writes it: "%f" for floating point, the integer otherwise. */
  private static String text(DataType type, ByteBuffer d, int at) {
    return switch (type) {
      case FP32 -> String.format(Locale.ROOT, "%f", d.getFloat(at));
      case FP64 -> String.format(Locale.ROOT, "%f", d.getDouble(at));
      case UINT64 -> Long.toUnsignedString(d.getLong(at));
      case INT64 -> Long.toString(d.getLong(at));
      default -> Long.toString((long) value(type, d, at));
    };
  }
}
