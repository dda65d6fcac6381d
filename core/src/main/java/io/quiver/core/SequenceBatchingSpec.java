package io.quiver.core;

import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelSequenceBatching;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * A model's {@code sequence_batching}, read once and checked (Triton's rules): the control inputs the
 * server sets (START, READY, END, CORRID, each with its datatype and false/true values), the implicit
 * states (an input/output pair per state, fixed dims), and the strategy (direct or oldest) with its
 * delays. The one home of these rules: the config validator reports {@link #problems}, the signature
 * adds the control and state tensors, and the sequence batcher runs from {@link #of}.
 *
 * <p>Immutable and thread-safe. Values held as little-endian bytes of one element, ready to copy into a
 * batch.
 */
public final class SequenceBatchingSpec {
  /** Triton's default max_sequence_idle_microseconds when the config gives 0 or none: one second. */
  public static final long DEFAULT_MAX_SEQUENCE_IDLE_US = 1_000_000L;
  /** Most candidate sequences (oldest strategy) per instance. */
  public static final int MAX_CANDIDATE_SEQUENCES = 4096;
  /** Longest idle time accepted, one day: a bound on how long a forgotten sequence holds a slot. */
  public static final long MAX_SEQUENCE_IDLE_US = TimeUnit.DAYS.toMicros(1);

  /** The control kinds, in Triton's order. */
  public enum ControlKind { START, READY, END, CORRID }

  /** The strategies of Triton's sequence batcher. */
  public enum Strategy { DIRECT, OLDEST }

  /**
   * One control input.
   *
   * @param falseValue one element meaning false (START, READY, END), little-endian; null for CORRID
   * @param trueValue one element meaning true; null for CORRID
   */
  public record Control(ControlKind kind, String inputName, DataType dataType, byte[] falseValue, byte[] trueValue) {}

  /** One implicit state: fed as {@code inputName}, read back from {@code outputName}; dims exclude the batch dimension. */
  public record State(String inputName, String outputName, DataType dataType, long[] dims) {
    /** Bytes of one sequence's state (one batch row). */
    public int rowBytes() {
      long n = dataType.byteSize();
      for (long d : dims) {
        n *= d;
      }
      return (int) n;
    }
  }

  private final Strategy strategy;
  private final long maxSequenceIdleNanos;
  private final long maxQueueDelayNanos;
  private final float minimumSlotUtilization;
  private final int maxCandidateSequences;
  private final int[] preferredBatchSizes;
  private final List<Control> controls;
  private final List<State> states;

  private SequenceBatchingSpec(ModelSequenceBatching b) {
    this.strategy = b.hasOldest() ? Strategy.OLDEST : Strategy.DIRECT;
    long idle = b.getMaxSequenceIdleMicroseconds() == 0 ? DEFAULT_MAX_SEQUENCE_IDLE_US : b.getMaxSequenceIdleMicroseconds();
    this.maxSequenceIdleNanos = TimeUnit.MICROSECONDS.toNanos(idle);
    if (b.hasOldest()) {
      this.maxQueueDelayNanos = TimeUnit.MICROSECONDS.toNanos(b.getOldest().getMaxQueueDelayMicroseconds());
      this.minimumSlotUtilization = 0;
      this.maxCandidateSequences = Math.max(1, b.getOldest().getMaxCandidateSequences());
      this.preferredBatchSizes = b.getOldest().getPreferredBatchSizeList().stream().mapToInt(Integer::intValue).toArray();
    } else {
      this.maxQueueDelayNanos = TimeUnit.MICROSECONDS.toNanos(b.getDirect().getMaxQueueDelayMicroseconds());
      this.minimumSlotUtilization = b.getDirect().getMinimumSlotUtilization();
      this.maxCandidateSequences = 0;
      this.preferredBatchSizes = new int[0];
    }
    List<Control> c = new ArrayList<>();
    for (ModelSequenceBatching.ControlInput input : b.getControlInputList()) {
      for (ModelSequenceBatching.Control control : input.getControlList()) {
        c.add(control(input.getName(), control));
      }
    }
    this.controls = Collections.unmodifiableList(c);
    List<State> s = new ArrayList<>();
    for (ModelSequenceBatching.State state : b.getStateList()) {
      s.add(new State(state.getInputName(), state.getOutputName(), DataType.fromConfig(state.getDataType()),
          state.getDimsList().stream().mapToLong(Long::longValue).toArray()));
    }
    this.states = Collections.unmodifiableList(s);
  }

  /**
   * The spec of a config with {@code sequence_batching}, or null when it has none.
   *
   * @throws InferenceException INVALID_ARGUMENT listing every problem (see {@link #problems})
   */
  public static SequenceBatchingSpec of(ModelConfig config) {
    if (!config.hasSequenceBatching()) {
      return null;
    }
    List<String> problems = problems(config);
    if (!problems.isEmpty()) {
      throw InferenceException.invalidArgument("model '%s': invalid sequence_batching: %s", config.getName(),
          String.join("; ", problems));
    }
    return new SequenceBatchingSpec(config.getSequenceBatching());
  }

  /** Every problem of the config's sequence_batching (empty when it has none or it is valid); each names the field. */
  public static List<String> problems(ModelConfig config) {
    List<String> out = new ArrayList<>();
    if (!config.hasSequenceBatching()) {
      return out;
    }
    ModelSequenceBatching b = config.getSequenceBatching();
    String p = "sequence_batching";
    if (Long.compareUnsigned(b.getMaxSequenceIdleMicroseconds(), MAX_SEQUENCE_IDLE_US) > 0) {
      out.add(p + ".max_sequence_idle_microseconds must be <= " + MAX_SEQUENCE_IDLE_US + " (one day); was "
          + Long.toUnsignedString(b.getMaxSequenceIdleMicroseconds()));
    }
    if (b.getIterativeSequence()) {
      out.add(p + ".iterative_sequence is not supported");
    }
    if (b.hasDirect()) {
      float u = b.getDirect().getMinimumSlotUtilization();
      if (!(u >= 0 && u <= 1)) {
        out.add(p + ".direct.minimum_slot_utilization must be between 0 and 1; was " + u);
      }
      checkDelay(p + ".direct.max_queue_delay_microseconds", b.getDirect().getMaxQueueDelayMicroseconds(), out);
    }
    if (b.hasOldest()) {
      ModelSequenceBatching.StrategyOldest o = b.getOldest();
      if (o.getMaxCandidateSequences() < 0 || o.getMaxCandidateSequences() > MAX_CANDIDATE_SEQUENCES) {
        out.add(p + ".oldest.max_candidate_sequences must be between 1 and " + MAX_CANDIDATE_SEQUENCES + "; was "
            + o.getMaxCandidateSequences());
      }
      int maxBatch = Math.max(1, config.getMaxBatchSize());
      for (int size : o.getPreferredBatchSizeList()) {
        if (size < 1 || size > maxBatch) {
          out.add(p + ".oldest.preferred_batch_size must be between 1 and max_batch_size " + maxBatch + "; was " + size);
        }
      }
      if (o.getPreserveOrdering()) {
        out.add(p + ".oldest.preserve_ordering is not supported (each sequence's answers are in order already)");
      }
      checkDelay(p + ".oldest.max_queue_delay_microseconds", o.getMaxQueueDelayMicroseconds(), out);
    }
    Set<String> names = new HashSet<>();
    Set<ModelSequenceBatching.Control.Kind> kinds = new HashSet<>();
    for (int i = 0; i < b.getControlInputCount(); i++) {
      ModelSequenceBatching.ControlInput input = b.getControlInput(i);
      String where = p + ".control_input[" + i + "]";
      if (input.getName().isEmpty()) {
        out.add(where + ".name must not be empty");
      } else if (!names.add(input.getName())) {
        out.add(where + ": tensor '" + input.getName() + "' is named by more than one control input");
      }
      if (input.getControlCount() != 1) {
        out.add(where + " must hold exactly one control; has " + input.getControlCount());
      }
      for (ModelSequenceBatching.Control control : input.getControlList()) {
        if (control.getKind() == ModelSequenceBatching.Control.Kind.UNRECOGNIZED) {
          out.add(where + ".control.kind is not a known kind");
          continue;
        }
        if (!kinds.add(control.getKind())) {
          out.add(p + " has more than one " + control.getKind() + " control");
        }
        checkControl(where + ".control", control, out);
      }
    }
    for (int i = 0; i < b.getStateCount(); i++) {
      ModelSequenceBatching.State state = b.getState(i);
      String where = p + ".state[" + i + "]";
      if (state.getInputName().isEmpty() || state.getOutputName().isEmpty()) {
        out.add(where + " needs both input_name and output_name");
      }
      if (!state.getInputName().isEmpty() && !names.add(state.getInputName())) {
        out.add(where + ".input_name '" + state.getInputName() + "' is also a control input or another state's input");
      }
      DataType type = DataType.fromConfig(state.getDataType());
      if (type == null || !type.isFixedSize()) {
        out.add(where + ".data_type must be a fixed-size datatype; was " + state.getDataType());
      }
      if (state.getDimsCount() == 0) {
        out.add(where + ".dims must not be empty");
      }
      long elements = 1;
      for (long d : state.getDimsList()) {
        if (d < 1) {
          out.add(where + ".dims must be >= 1 (variable state dims are not supported); was " + d);
        } else if (elements <= (1 << 26)) {
          elements = d > (1L << 40) ? Long.MAX_VALUE : elements * d; // stays far from overflow
        }
      }
      if (elements > (1 << 26)) {
        out.add(where + ".dims hold " + elements + " elements; at most " + (1 << 26) + " per sequence are supported");
      }
      if (state.getUseSameBufferForInputOutput()) {
        out.add(where + ".use_same_buffer_for_input_output is not supported");
      }
      if (state.getUseGrowableMemory()) {
        out.add(where + ".use_growable_memory is not supported");
      }
      if (state.getInitialStateCount() > 1) {
        out.add(where + ".initial_state: at most one is supported; has " + state.getInitialStateCount());
      }
      for (ModelSequenceBatching.InitialState initial : state.getInitialStateList()) {
        if (initial.getStateDataCase() == ModelSequenceBatching.InitialState.StateDataCase.DATA_FILE) {
          out.add(where + ".initial_state.data_file is not supported; use zero_data");
        }
        if (initial.getDataType() != state.getDataType() || !initial.getDimsList().equals(state.getDimsList())) {
          out.add(where + ".initial_state must have the state's data_type and dims");
        }
      }
    }
    return out;
  }

  private static void checkDelay(String field, long micros, List<String> out) {
    if (Long.compareUnsigned(micros, TimeUnit.SECONDS.toMicros(60)) > 0) {
      out.add(field + " must be <= 60000000 (one minute); was " + Long.toUnsignedString(micros));
    }
  }

  private static void checkControl(String where, ModelSequenceBatching.Control control, List<String> out) {
    int lists = (control.getInt32FalseTrueCount() > 0 ? 1 : 0) + (control.getFp32FalseTrueCount() > 0 ? 1 : 0)
        + (control.getBoolFalseTrueCount() > 0 ? 1 : 0);
    if (control.getKind() == ModelSequenceBatching.Control.Kind.CONTROL_SEQUENCE_CORRID) {
      if (lists > 0) {
        out.add(where + ": a CORRID control takes data_type only, no *_false_true values");
      }
      switch (control.getDataType()) {
        case TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32, TYPE_STRING -> { }
        default -> out.add(where + ".data_type of a CORRID control must be TYPE_UINT64, TYPE_INT64, TYPE_UINT32,"
            + " TYPE_INT32 or TYPE_STRING; was " + control.getDataType());
      }
      return;
    }
    if (lists != 1) {
      out.add(where + " (" + control.getKind() + ") must give exactly one of int32_false_true, fp32_false_true or"
          + " bool_false_true");
      return;
    }
    int count = Math.max(control.getInt32FalseTrueCount(), Math.max(control.getFp32FalseTrueCount(),
        control.getBoolFalseTrueCount()));
    if (count != 2) {
      out.add(where + " (" + control.getKind() + "): the *_false_true list must have exactly 2 entries (false, true);"
          + " has " + count);
    }
  }

  private static Control control(String name, ModelSequenceBatching.Control c) {
    ControlKind kind = switch (c.getKind()) {
      case CONTROL_SEQUENCE_START -> ControlKind.START;
      case CONTROL_SEQUENCE_READY -> ControlKind.READY;
      case CONTROL_SEQUENCE_END -> ControlKind.END;
      default -> ControlKind.CORRID;
    };
    if (kind == ControlKind.CORRID) {
      return new Control(kind, name, DataType.fromConfig(c.getDataType()), null, null);
    }
    if (c.getInt32FalseTrueCount() > 0) {
      return new Control(kind, name, DataType.INT32, le(4).putInt(c.getInt32FalseTrue(0)).array(),
          le(4).putInt(c.getInt32FalseTrue(1)).array());
    }
    if (c.getFp32FalseTrueCount() > 0) {
      return new Control(kind, name, DataType.FP32, le(4).putFloat(c.getFp32FalseTrue(0)).array(),
          le(4).putFloat(c.getFp32FalseTrue(1)).array());
    }
    return new Control(kind, name, DataType.BOOL, new byte[] {(byte) (c.getBoolFalseTrue(0) ? 1 : 0)},
        new byte[] {(byte) (c.getBoolFalseTrue(1) ? 1 : 0)});
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }

  public Strategy strategy() {
    return strategy;
  }

  /** How long a sequence may go without a request before its slot is released. */
  public long maxSequenceIdleNanos() {
    return maxSequenceIdleNanos;
  }

  /** How long a partial batch may wait for more sequences to be ready (0: send at once). */
  public long maxQueueDelayNanos() {
    return maxQueueDelayNanos;
  }

  /** Direct strategy: the fraction of slots ready at which a batch is sent without waiting. */
  public float minimumSlotUtilization() {
    return minimumSlotUtilization;
  }

  /** Oldest strategy: sequences per instance (its slots); 0 for direct. */
  public int maxCandidateSequences() {
    return maxCandidateSequences;
  }

  /** Oldest strategy: batch sizes sent at once. Callers must not modify the array. */
  public int[] preferredBatchSizes() {
    return preferredBatchSizes;
  }

  public List<Control> controls() {
    return controls;
  }

  public List<State> states() {
    return states;
  }

  /** The control of {@code kind}, or null when the model has none. */
  public Control control(ControlKind kind) {
    for (Control c : controls) {
      if (c.kind() == kind) {
        return c;
      }
    }
    return null;
  }

  /** Names of the inputs the sequence batcher sets (controls, then state inputs). */
  public static Set<String> serverInputNames(ModelConfig config) {
    Set<String> names = new HashSet<>();
    if (config.hasSequenceBatching()) {
      for (ModelSequenceBatching.ControlInput input : config.getSequenceBatching().getControlInputList()) {
        names.add(input.getName());
      }
      for (ModelSequenceBatching.State state : config.getSequenceBatching().getStateList()) {
        names.add(state.getInputName());
      }
    }
    return names;
  }

  /** Names of the outputs the sequence batcher reads (state outputs). */
  public static Set<String> serverOutputNames(ModelConfig config) {
    Set<String> names = new HashSet<>();
    if (config.hasSequenceBatching()) {
      for (ModelSequenceBatching.State state : config.getSequenceBatching().getStateList()) {
        names.add(state.getOutputName());
      }
    }
    return names;
  }
}
