package io.quiver.core;

/**
 * What a request says about the sequence it belongs to (Triton's {@code sequence_id},
 * {@code sequence_start} and {@code sequence_end} request parameters): its correlation id, a number
 * or a string, and whether it starts or ends the sequence. Immutable; made by a transport once per
 * request that carries a sequence id.
 */
public final class SequenceControl {
  private final long numericId;
  private final String stringId;
  private final boolean start;
  private final boolean end;
  private final Object key;

  private SequenceControl(long numericId, String stringId, boolean start, boolean end) {
    this.numericId = numericId;
    this.stringId = stringId;
    this.start = start;
    this.end = end;
    this.key = stringId != null ? stringId : Long.valueOf(numericId);
  }

  /**
   * A numeric correlation id (the protocol's int64 or uint64 parameter; the bits are kept, so ids above
   * 2^63 read as negative longs).
   *
   * @throws InferenceException INVALID_ARGUMENT for 0, which means "no sequence"
   */
  public static SequenceControl numeric(long id, boolean start, boolean end) {
    if (id == 0) {
      throw InferenceException.invalidField("parameters[sequence_id]", "sequence_id 0 means no sequence; a sequence"
          + " needs a non-zero id");
    }
    return new SequenceControl(id, null, start, end);
  }

  /** A string correlation id (non-empty, at most 256 characters). */
  public static SequenceControl string(String id, boolean start, boolean end) {
    if (id == null || id.isEmpty()) {
      throw InferenceException.invalidField("parameters[sequence_id]", "an empty sequence_id means no sequence; a"
          + " sequence needs a non-empty id");
    }
    if (id.length() > 256) {
      throw InferenceException.invalidField("parameters[sequence_id]", "sequence_id must be at most 256 characters; was %d",
          id.length());
    }
    return new SequenceControl(0, id, start, end);
  }

  /** Whether the id is a string (else a number). */
  public boolean isString() {
    return stringId != null;
  }

  /** The numeric id (0 for a string id). */
  public long numericId() {
    return numericId;
  }

  /** The string id, or null for a numeric one. */
  public String stringId() {
    return stringId;
  }

  /** A key naming the sequence: equal ids give equal keys, numbers and strings never collide. */
  public Object key() {
    return key;
  }

  public boolean start() {
    return start;
  }

  public boolean end() {
    return end;
  }

  /** The id as written in messages: 42 or "abc" (unsigned for numbers). */
  public String describe() {
    return stringId != null ? "'" + stringId + "'" : Long.toUnsignedString(numericId);
  }

  @Override
  public String toString() {
    return "sequence " + describe() + (start ? " START" : "") + (end ? " END" : "");
  }
}
