package io.quiver.server.jobs;

import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.proto.jobs.v1.ColumnList;
import io.quiver.server.http.RestInferCodec;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.FloatingPointVector;
import org.apache.arrow.vector.UInt8Vector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarBinaryVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.complex.BaseListVector;
import org.apache.arrow.vector.complex.FixedSizeListVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.ipc.ArrowStreamReader;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * An Arrow IPC input (the file format, whose body is the stream format after an 8-byte magic, or the
 * stream format itself), read as a stream one record batch at a time: one row per record. The model's
 * inputs are bound to columns once, from the schema ({@link #bind}); each row becomes a request whose
 * inputs have batch dimension 1. Memory holds one record batch, whatever the input's size; a restart
 * re-reads the input from its start and skips the committed rows.
 *
 * <p>Column types: signed and unsigned integers, floats (16/32/64), booleans, UTF-8 and binary
 * strings, and fixed-size or variable lists of those. Integers and floats fill float inputs; integers
 * fill integer inputs (a value outside the input's range fails its record); booleans fill BOOL, strings
 * and binaries fill BYTES. A null fails its record.
 */
final class ArrowRecordSource implements RecordSource {
  /** Arrow memory a job may hold at once (one record batch and its buffers). */
  static final long MAX_ARROW_MEMORY = 1L << 30;
  private static final byte[] FILE_MAGIC = {'A', 'R', 'R', 'O', 'W', '1'};

  private final CountingInputStream counting;
  private final BufferAllocator allocator;
  private final ArrowStreamReader reader;
  private final List<Binding> bindings;
  private final boolean batches;
  private final int inputCount;
  private long index; // index of the next row
  private long skip; // rows still to skip (a restart)
  private int row;
  private int rows;

  /** How one model input is filled from a row: one list column, or several (or one) scalar columns. */
  record Binding(TensorSpec spec, int position, int[] columns, boolean list, Kind kind, long fixedElements) {}

  enum Kind { INTEGER, FLOAT, BOOL, BYTES }

  private ArrowRecordSource(InputStream in, ModelSignature signature, Map<String, ColumnList> columns,
      long firstIndex) throws IOException {
    this.counting = new CountingInputStream(in, 0);
    this.allocator = newAllocator();
    this.reader = new ArrowStreamReader(skipFileMagic(new BufferedInputStream(counting, 1 << 16)), allocator);
    try {
      Schema schema = reader.getVectorSchemaRoot().getSchema();
      this.bindings = bind(schema, signature, columns);
    } catch (RuntimeException | IOException e) {
      close();
      throw e;
    }
    this.batches = signature.batches();
    this.inputCount = signature.inputs().size();
    this.skip = firstIndex;
  }

  /** Opens the input, reads its schema and binds it to the model; the caller closes the source. */
  static ArrowRecordSource open(InputStream in, ModelSignature signature, Map<String, ColumnList> columns,
      long firstIndex) throws IOException {
    try {
      return new ArrowRecordSource(in, signature, columns, firstIndex);
    } catch (IOException e) {
      in.close();
      throw InferenceException.invalidField("input_uri", "the input is not an Arrow IPC file or stream: %s", e.getMessage());
    } catch (RuntimeException e) {
      in.close();
      throw e;
    }
  }

  private static BufferAllocator newAllocator() {
    try {
      return new RootAllocator(MAX_ARROW_MEMORY);
    } catch (Throwable t) { // ExceptionInInitializerError from Arrow's MemoryUtil without --add-opens
      throw InferenceException.failedPrecondition(
          "Arrow inputs need the JVM flag --add-opens=java.base/java.nio=ALL-UNNAMED (the quiver launcher sets it): %s", t);
    }
  }

  /** An Arrow file starts with "ARROW1" and two padding bytes, then the stream format: skip them. */
  private static InputStream skipFileMagic(BufferedInputStream in) throws IOException {
    in.mark(8);
    byte[] head = in.readNBytes(8);
    if (head.length == 8 && Arrays.equals(Arrays.copyOf(head, 6), FILE_MAGIC)) {
      return in;
    }
    in.reset();
    return in;
  }

  /**
   * Binds every required model input to columns of the schema.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the input, the columns and why
   */
  static List<Binding> bind(Schema schema, ModelSignature signature, Map<String, ColumnList> explicit) {
    List<Field> fields = schema.getFields();
    for (String name : explicit.keySet()) {
      if (signature.inputIndex(name) < 0) {
        throw InferenceException.invalidField("options.columns[" + name + "]", "the model has no input '%s'", name);
      }
    }
    List<Binding> out = new ArrayList<>();
    List<TensorSpec> inputs = signature.inputs();
    for (int position = 0; position < inputs.size(); position++) {
      TensorSpec spec = inputs.get(position);
      String field = "options.columns[" + spec.name() + "]";
      List<String> names;
      if (explicit.containsKey(spec.name())) {
        names = explicit.get(spec.name()).getNamesList();
        if (names.isEmpty()) {
          throw InferenceException.invalidField(field, "input '%s' is mapped to no column", spec.name());
        }
      } else if (indexOf(fields, spec.name()) >= 0) {
        names = List.of(spec.name());
      } else if (inputs.size() == 1) {
        names = fields.stream().map(Field::getName).toList();
        field = "input_uri";
      } else if (spec.optional()) {
        continue;
      } else {
        throw InferenceException.invalidField("options.columns", "no column is named '%s' (a model input), and the model"
            + " has %d inputs: map each input to its columns in options.columns", spec.name(), inputs.size());
      }
      int[] columns = new int[names.size()];
      for (int i = 0; i < columns.length; i++) {
        columns[i] = indexOf(fields, names.get(i));
        if (columns[i] < 0) {
          throw InferenceException.invalidField(field, "input '%s': the input has no column '%s' (columns: %s)",
              spec.name(), names.get(i), fields.stream().map(Field::getName).toList());
        }
      }
      out.add(bindOne(spec, position, columns, fields, field));
    }
    return out;
  }

  private static Binding bindOne(TensorSpec spec, int position, int[] columns, List<Field> fields, String field) {
    long fixed = 1;
    int variable = 0;
    for (long d : spec.dims()) {
      if (d < 0) {
        variable++;
      } else {
        fixed *= d;
      }
    }
    Field first = fields.get(columns[0]);
    boolean list = first.getType() instanceof ArrowType.List || first.getType() instanceof ArrowType.FixedSizeList
        || first.getType() instanceof ArrowType.LargeList;
    if (first.getDictionary() != null) {
      throw InferenceException.invalidField(field, "column '%s' is dictionary-encoded, which jobs do not read", first.getName());
    }
    Kind kind;
    if (list) {
      if (columns.length != 1) {
        throw InferenceException.invalidField(field, "input '%s': a list column ('%s') must be the input's only column",
            spec.name(), first.getName());
      }
      if (variable > 1) {
        throw InferenceException.invalidField(field, "input '%s' has %d variable dimensions; a list column can fill one",
            spec.name(), variable);
      }
      kind = kindOf(spec, first.getChildren().get(0), field);
    } else {
      if (variable > 0) {
        throw InferenceException.invalidField(field, "input '%s' has variable dimensions %s: fill it from one list column",
            spec.name(), Arrays.toString(spec.dims()));
      }
      if (columns.length != fixed) {
        throw InferenceException.invalidField(field, "input '%s' needs %d values per row (dims %s), but %d scalar column(s)"
            + " are mapped to it", spec.name(), fixed, Arrays.toString(spec.dims()), columns.length);
      }
      kind = null;
      for (int c : columns) {
        Field f = fields.get(c);
        if (f.getDictionary() != null) {
          throw InferenceException.invalidField(field, "column '%s' is dictionary-encoded, which jobs do not read", f.getName());
        }
        Kind k = kindOf(spec, f, field);
        if (kind != null && k != kind) {
          throw InferenceException.invalidField(field, "input '%s': columns of different kinds (%s and %s) cannot fill one input",
              spec.name(), kind, k);
        }
        kind = k;
      }
    }
    return new Binding(spec, position, columns, list, kind, variable == 0 ? fixed : -1);
  }

  private static Kind kindOf(TensorSpec spec, Field f, String field) {
    ArrowType t = f.getType();
    Kind kind;
    if (t instanceof ArrowType.Int) {
      kind = Kind.INTEGER;
    } else if (t instanceof ArrowType.FloatingPoint) {
      kind = Kind.FLOAT;
    } else if (t instanceof ArrowType.Bool) {
      kind = Kind.BOOL;
    } else if (t instanceof ArrowType.Utf8 || t instanceof ArrowType.Binary) {
      kind = Kind.BYTES;
    } else {
      throw InferenceException.invalidField(field, "column '%s' has type %s, which cannot fill input '%s' (%s)",
          f.getName(), t, spec.name(), spec.dataType().wireName());
    }
    DataType target = spec.dataType();
    boolean ok = switch (target) {
      case FP32, FP64 -> kind == Kind.INTEGER || kind == Kind.FLOAT;
      case INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64 -> kind == Kind.INTEGER;
      case BOOL -> kind == Kind.BOOL;
      case BYTES -> kind == Kind.BYTES;
      default -> false; // FP16, BF16
    };
    if (!ok) {
      throw InferenceException.invalidField(field, "column '%s' has type %s, which cannot fill input '%s' of type %s",
          f.getName(), t, spec.name(), target.wireName());
    }
    return kind;
  }

  private static int indexOf(List<Field> fields, String name) {
    for (int i = 0; i < fields.size(); i++) {
      if (fields.get(i).getName().equals(name)) {
        return i;
      }
    }
    return -1;
  }

  @Override
  public InputRecord next() throws IOException {
    while (true) {
      if (row == rows) {
        if (!reader.loadNextBatch()) {
          return null;
        }
        row = 0;
        rows = reader.getVectorSchemaRoot().getRowCount();
        if (skip >= rows) { // a restart: the whole batch was committed before
          skip -= rows;
          index += rows;
          row = rows;
          continue;
        }
        row = (int) skip;
        index += skip;
        skip = 0;
        if (row == rows) {
          continue;
        }
      }
      int r = row++;
      long i = index++;
      String id = "row-" + (i + 1);
      try {
        return new InputRecord(i, i + 1, -1, id, decodeRow(reader.getVectorSchemaRoot(), r, i + 1, id), null);
      } catch (InferenceException e) {
        return new InputRecord(i, i + 1, -1, id, null, e);
      }
    }
  }

  private RestInferCodec.Decoded decodeRow(VectorSchemaRoot root, int r, long rowNumber, String id) {
    List<Tensor> tensors = new ArrayList<>(inputCount);
    for (Binding b : bindings) {
      tensors.add(tensor(root, b, r, rowNumber));
    }
    return new RestInferCodec.Decoded(id, tensors, List.of(), List.of(), false, 0, 0);
  }

  private Tensor tensor(VectorSchemaRoot root, Binding b, int r, long rowNumber) {
    TensorSpec spec = b.spec();
    ValueVector values;
    int start;
    int count;
    List<FieldVector> vectors = root.getFieldVectors();
    if (b.list()) {
      FieldVector column = vectors.get(b.columns()[0]);
      if (column.isNull(r)) {
        throw nullValue(column, rowNumber);
      }
      if (column instanceof FixedSizeListVector fixed) {
        start = r * fixed.getListSize();
        count = fixed.getListSize();
      } else if (column instanceof ListVector variable) {
        start = variable.getElementStartIndex(r);
        count = variable.getElementEndIndex(r) - start;
      } else {
        BaseListVector any = (BaseListVector) column;
        start = any.getElementStartIndex(r);
        count = any.getElementEndIndex(r) - start;
      }
      values = ((org.apache.arrow.vector.complex.RepeatedValueVector) column).getDataVector();
    } else {
      values = null;
      start = 0;
      count = b.columns().length;
    }
    long[] dims = spec.dims().clone();
    if (b.fixedElements() < 0) { // one variable dim: the list's length decides it
      long fixed = 1;
      int at = -1;
      for (int d = 0; d < dims.length; d++) {
        if (dims[d] < 0) {
          at = d;
        } else {
          fixed *= dims[d];
        }
      }
      if (fixed == 0 || count % fixed != 0) {
        throw InferenceException.invalidField("inputs[" + spec.name() + "]", "row %d has %d values for input '%s', which does"
            + " not fit dims %s", rowNumber, count, spec.name(), Arrays.toString(spec.dims()));
      }
      dims[at] = count / fixed;
    } else if (count != b.fixedElements()) {
      throw InferenceException.invalidField("inputs[" + spec.name() + "]", "row %d has %d values for input '%s'; dims %s need %d",
          rowNumber, count, spec.name(), Arrays.toString(spec.dims()), b.fixedElements());
    }
    long[] shape;
    if (batches) {
      shape = new long[dims.length + 1];
      shape[0] = 1;
      System.arraycopy(dims, 0, shape, 1, dims.length);
    } else {
      shape = dims;
    }
    DataType type = spec.dataType();
    if (type == DataType.BYTES) {
      List<byte[]> elements = new ArrayList<>(count);
      for (int k = 0; k < count; k++) {
        ValueVector v = values != null ? values : vectors.get(b.columns()[k]);
        int at = values != null ? start + k : r;
        if (v.isNull(at)) {
          throw nullValue(v, rowNumber);
        }
        elements.add(v instanceof VarCharVector s ? s.get(at) : v instanceof VarBinaryVector bin ? bin.get(at)
            : v.getObject(at).toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      }
      return new Tensor(spec.name(), type, shape, BytesElements.encode(elements));
    }
    ByteBuffer data = ByteBuffer.allocate(count * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (int k = 0; k < count; k++) {
      ValueVector v = values != null ? values : vectors.get(b.columns()[k]);
      int at = values != null ? start + k : r;
      if (v.isNull(at)) {
        throw nullValue(v, rowNumber);
      }
      put(data, type, v, at, spec.name(), rowNumber);
    }
    return new Tensor(spec.name(), type, shape, data.flip());
  }

  private static void put(ByteBuffer out, DataType type, ValueVector v, int at, String input, long r) {
    if (type == DataType.BOOL) {
      out.put((byte) ((BitVector) v).get(at));
      return;
    }
    if (v instanceof FloatingPointVector f) {
      double d = f.getValueAsDouble(at);
      if (type == DataType.FP32) {
        out.putFloat((float) d);
      } else {
        out.putDouble(d);
      }
      return;
    }
    long value = ((BaseIntVector) v).getValueAsLong(at);
    boolean unsignedSource = v instanceof UInt8Vector && value < 0; // a UINT64 value above Long.MAX_VALUE
    switch (type) {
      case FP32 -> out.putFloat(unsignedSource ? Float.parseFloat(Long.toUnsignedString(value)) : (float) value);
      case FP64 -> out.putDouble(unsignedSource ? Double.parseDouble(Long.toUnsignedString(value)) : (double) value);
      case INT8 -> out.put((byte) inRange(value, Byte.MIN_VALUE, Byte.MAX_VALUE, unsignedSource, input, r));
      case INT16 -> out.putShort((short) inRange(value, Short.MIN_VALUE, Short.MAX_VALUE, unsignedSource, input, r));
      case INT32 -> out.putInt((int) inRange(value, Integer.MIN_VALUE, Integer.MAX_VALUE, unsignedSource, input, r));
      case INT64 -> out.putLong(inRange(value, Long.MIN_VALUE, Long.MAX_VALUE, unsignedSource, input, r));
      case UINT8 -> out.put((byte) inRange(value, 0, 0xFF, unsignedSource, input, r));
      case UINT16 -> out.putShort((short) inRange(value, 0, 0xFFFF, unsignedSource, input, r));
      case UINT32 -> out.putInt((int) inRange(value, 0, 0xFFFF_FFFFL, unsignedSource, input, r));
      case UINT64 -> {
        if (!unsignedSource && value < 0) {
          throw outOfRange(Long.toString(value), input, type, r);
        }
        out.putLong(value);
      }
      default -> throw new AssertionError(type);
    }
  }

  private static long inRange(long value, long min, long max, boolean unsignedSource, String input, long r) {
    if (unsignedSource || value < min || value > max) {
      throw outOfRange(unsignedSource ? Long.toUnsignedString(value) : Long.toString(value), input, null, r);
    }
    return value;
  }

  private static InferenceException outOfRange(String value, String input, DataType type, long r) {
    return InferenceException.invalidField("inputs[" + input + "]", "row %d: value %s is outside the range of input '%s'%s",
        r, value, input, type == null ? "" : " (" + type.wireName() + ")");
  }

  private static InferenceException nullValue(ValueVector v, long rowNumber) {
    return InferenceException.invalidField("inputs", "row %d: column '%s' is null", rowNumber, v.getName());
  }

  @Override
  public long bytesRead() {
    return counting.count();
  }

  @Override
  public void close() throws IOException {
    try {
      if (reader != null) {
        reader.close();
      }
    } finally {
      allocator.close();
    }
  }
}
