package io.quiver.runtime.tensorflow;

import io.quiver.core.DataType;
import java.util.Arrays;

/**
 * One input or output of a SavedModel signature: its key in the signature (the name clients use),
 * the graph tensor it stands for ({@code "serving_default_x:0"}), its datatype and full shape (batch
 * dimension included; -1 for an unknown dimension). Immutable.
 */
record SignatureTensor(String name, String tensorName, DataType dataType, long[] shape) {

  /** Whether the first dimension is variable, i.e. can be a batch dimension. */
  boolean hasDynamicFirstDim() {
    return shape.length > 0 && shape[0] < 0;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SignatureTensor other && name.equals(other.name) && tensorName.equals(other.tensorName)
        && dataType == other.dataType && Arrays.equals(shape, other.shape);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + "(" + tensorName + "):" + dataType.wireName() + Arrays.toString(shape);
  }
}
