package io.quiver.runtime.tensorflow;

import io.quiver.core.DataType;
import io.quiver.core.runtime.ModelTensor;

/**
 * One input or output of a SavedModel signature: the tensor as the signature declares it (named by
 * its key in the signature, the name clients use; full shape, -1 for an unknown dimension) and the
 * graph tensor it stands for ({@code "serving_default_x:0"}). Immutable.
 */
record SignatureTensor(ModelTensor tensor, String tensorName) {

  String name() {
    return tensor.name();
  }

  DataType dataType() {
    return tensor.dataType();
  }

  @Override
  public String toString() {
    return tensor.name() + "(" + tensorName + "):" + tensor.dataType().wireName() + java.util.Arrays.toString(tensor.shape());
  }
}
