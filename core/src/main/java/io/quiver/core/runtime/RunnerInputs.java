package io.quiver.core.runtime;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The checks a {@link io.quiver.core.spi.ModelRunner} makes on one batch before handing it to its
 * runtime, with the same messages in every runtime. The scheduler has already validated each
 * request against the signature ({@link io.quiver.core.RequestValidator}); these guard the runner's
 * own contract. Stateless; none of them allocates unless it throws.
 */
public final class RunnerInputs {
  private RunnerInputs() {}

  /**
   * Fails unless the platform is little-endian: request tensors are little-endian (the protocol's
   * order), and a runtime that hands their bytes to native code without swapping needs native order
   * to match.
   *
   * @param runtime the runtime's name, for the message
   * @param how how the runtime passes tensors on, for the message ("tensors are copied without byte swapping")
   * @throws InferenceException FAILED_PRECONDITION on a big-endian platform
   */
  public static void requireLittleEndian(String runtime, String how) {
    if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
      throw InferenceException.failedPrecondition("the %s runtime needs a little-endian platform (%s); this one is %s",
          runtime, how, ByteOrder.nativeOrder());
    }
  }

  /**
   * Checks that the runner is open and got one slot per model input.
   *
   * @throws InferenceException FAILED_PRECONDITION when closed; INVALID_ARGUMENT on a wrong input count
   */
  public static void checkRun(String model, InstanceSpec instance, boolean closed, int inputs, int expectedInputs) {
    if (closed) {
      throw InferenceException.failedPrecondition("model '%s' instance %d: runner is closed", model, instance.index());
    }
    if (inputs != expectedInputs) {
      throw InferenceException.invalidArgument("model '%s': expected %d inputs; got %d", model, expectedInputs, inputs);
    }
  }

  /**
   * Checks one requested output index against the model's output count.
   *
   * @throws InferenceException INVALID_ARGUMENT when out of range
   */
  public static void checkOutputIndex(String model, int index, int outputs) {
    if (index < 0 || index >= outputs) {
      throw InferenceException.invalidArgument("model '%s': output index %d is out of range (the model has %d outputs)",
          model, index, outputs);
    }
  }

  /**
   * The element count of an input's shape (saturating at Long.MAX_VALUE, as {@link Tensor#elementCount(long[])}).
   *
   * @throws InferenceException INVALID_ARGUMENT naming {@code inputs[name].shape} when a dimension is negative
   */
  public static long elementCount(String model, String input, long[] shape) {
    long elements = Tensor.elementCount(shape);
    if (elements < 0) {
      throw InferenceException.invalidField("inputs[" + input + "].shape",
          "model '%s': input '%s' has a negative dimension in shape %s", model, input, Arrays.toString(shape));
    }
    return elements;
  }

  /**
   * Checks that a fixed-size input's data holds exactly {@code elements} elements of {@code type}.
   *
   * @return the byte size
   * @throws InferenceException INVALID_ARGUMENT naming {@code inputs[name]}, the shape and both sizes
   */
  public static long checkByteSize(String model, String input, DataType type, long[] shape, long elements,
      ByteBuffer data) {
    long expectedBytes = elements * type.byteSize();
    if (data.remaining() != expectedBytes) {
      throw InferenceException.invalidField("inputs[" + input + "]",
          "model '%s': input '%s' with shape %s needs %d bytes of %s; got %d", model, input,
          Arrays.toString(shape), expectedBytes, type.wireName(), data.remaining());
    }
    return expectedBytes;
  }
}
