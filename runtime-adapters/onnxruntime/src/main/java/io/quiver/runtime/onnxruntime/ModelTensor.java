package io.quiver.runtime.onnxruntime;

import io.quiver.core.DataType;
import java.util.Arrays;

/**
 * One input or output as the ONNX model itself declares it: name, datatype and full shape (batch
 * dimension included; -1 for a symbolic or unknown dimension). Immutable.
 */
record ModelTensor(String name, DataType dataType, long[] shape) {

  /** Whether the first dimension is variable, i.e. can be a batch dimension. */
  boolean hasDynamicFirstDim() {
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
