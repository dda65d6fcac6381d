package io.quiver.core;

import java.util.Arrays;

/**
 * What a model declares about one input or output: name, datatype and dims. Dims exclude the batch
 * dimension when the model batches; -1 marks a variable dimension. Immutable.
 *
 * <p>{@link #role()} says who provides the tensor: the client ({@link Role#CLIENT}, every tensor of a
 * model without sequence batching), or the sequence batcher ({@link Role#SEQUENCE_CONTROL} inputs such as
 * START/END/READY/CORRID, and {@link Role#SEQUENCE_STATE} inputs and outputs that carry a sequence's
 * implicit state). Clients never send or receive the sequence batcher's tensors.
 */
public record TensorSpec(String name, DataType dataType, long[] dims, boolean optional, Role role) {

  /** Who provides (for an input) or receives (for an output) a tensor. */
  public enum Role {
    /** Sent or received by the client. */
    CLIENT,
    /** A control input of Triton's sequence batcher (START, END, READY, CORRID), set by the server. */
    SEQUENCE_CONTROL,
    /** An implicit-state input or output of the sequence batcher, carried by the server between requests. */
    SEQUENCE_STATE
  }

  public TensorSpec(String name, DataType dataType, long[] dims) {
    this(name, dataType, dims, false, Role.CLIENT);
  }

  public TensorSpec(String name, DataType dataType, long[] dims, boolean optional) {
    this(name, dataType, dims, optional, Role.CLIENT);
  }

  /** Whether the client sends (input) or receives (output) this tensor. */
  public boolean clientFacing() {
    return role == Role.CLIENT;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorSpec other
        && name.equals(other.name)
        && dataType == other.dataType
        && Arrays.equals(dims, other.dims)
        && optional == other.optional
        && role == other.role;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(dims);
  }

  @Override
  public String toString() {
    return name + ":" + dataType.wireName() + Arrays.toString(dims) + (role == Role.CLIENT ? "" : "(" + role + ")");
  }
}
