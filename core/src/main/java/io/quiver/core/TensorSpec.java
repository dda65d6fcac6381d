package io.quiver.core;

import java.util.Arrays;

/**
 * What a model declares about one input or output: name, datatype and dims. Dims exclude the batch
 * dimension when the model batches; -1 marks a variable dimension. Immutable.
 */
public record TensorSpec(String name, DataType dataType, long[] dims, boolean optional) {

  public TensorSpec(String name, DataType dataType, long[] dims) {
    this(name, dataType, dims, false);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorSpec other
        && name.equals(other.name)
        && dataType == other.dataType
        && Arrays.equals(dims, other.dims)
        && optional == other.optional;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(dims);
  }

  @Override
  public String toString() {
    return name + ":" + dataType.wireName() + Arrays.toString(dims);
  }
}
