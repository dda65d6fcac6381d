package io.quiver.core.runtime;

import io.quiver.core.DataType;
import java.util.Arrays;
import java.util.Objects;

/**
 * One input or output as the model file itself declares it (not as the config does): name, datatype
 * and full shape, batch dimension included, -1 for a symbolic or unknown dimension. Runtimes describe
 * their model with these and hand them to {@link ConfigCompleter}. Immutable; the shape array is not
 * copied, so whoever builds one must not change it afterwards.
 */
public record ModelTensor(String name, DataType dataType, long[] shape) {

  public ModelTensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dataType, "dataType");
    Objects.requireNonNull(shape, "shape");
  }

  /** Whether the first dimension is variable, i.e. can be a batch dimension. */
  public boolean hasDynamicFirstDim() {
    return shape.length > 0 && shape[0] < 0;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ModelTensor other && name.equals(other.name) && dataType == other.dataType
        && Arrays.equals(shape, other.shape);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + ":" + dataType.wireName() + Arrays.toString(shape);
  }
}
