package io.quiver.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;

class RequestValidatorTest {
  /** Batches up to 4: INPUT0 FP32 [-1, 2], optional MASK BOOL [2]; outputs OUT0, OUT1. */
  private static final ModelSignature BATCHING = new ModelSignature(4,
      List.of(new TensorSpec("INPUT0", DataType.FP32, new long[] {-1, 2}),
          new TensorSpec("MASK", DataType.BOOL, new long[] {2}, true)),
      List.of(new TensorSpec("OUT0", DataType.FP32, new long[] {-1, 2}),
          new TensorSpec("OUT1", DataType.FP32, new long[] {1})));
  /** Does not batch: TEXT BYTES [2]. */
  private static final ModelSignature FIXED = new ModelSignature(0,
      List.of(new TensorSpec("TEXT", DataType.BYTES, new long[] {2})), List.of(new TensorSpec("OUT", DataType.INT64,
          new long[] {1})));

  private static Tensor fp32(String name, long... shape) {
    int bytes = (int) Tensor.elementCount(shape) * 4;
    return new Tensor(name, DataType.FP32, shape, ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN));
  }

  private static Tensor bools(String name, long... shape) {
    return new Tensor(name, DataType.BOOL, shape, ByteBuffer.allocate((int) Tensor.elementCount(shape)));
  }

  private static AbstractThrowableAssert<?, ?> rejects(ModelSignature signature, String field, Tensor... inputs) {
    Tensor[] out = new Tensor[signature.inputs().size()];
    return assertThatThrownBy(() -> RequestValidator.validateInputs("m", signature, List.of(inputs), out))
        .isInstanceOfSatisfying(InferenceException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
          assertThat(e.field()).isEqualTo(field);
        });
  }

  @Test
  void validateInputs_ordersBySignatureAndReturnsTheBatchSize() {
    Tensor mask = bools("MASK", 3, 2);
    Tensor input = fp32("INPUT0", 3, 5, 2);
    Tensor[] out = new Tensor[2];

    assertThat(RequestValidator.validateInputs("m", BATCHING, List.of(mask, input), out)).isEqualTo(3);
    assertThat(out).containsExactly(input, mask);
  }

  @Test
  void validateInputs_leavesAbsentOptionalInputsNull() {
    Tensor[] out = new Tensor[] {null, fp32("stale", 1)};
    assertThat(RequestValidator.validateInputs("m", BATCHING, List.of(fp32("INPUT0", 1, 1, 2)), out)).isEqualTo(1);
    assertThat(out[1]).isNull();
  }

  @Test
  void validateInputs_withoutBatching_returnsOne() {
    Tensor text = new Tensor("TEXT", DataType.BYTES, new long[] {2},
        BytesElements.encode(List.of(new byte[] {1}, new byte[0])));
    assertThat(RequestValidator.validateInputs("m", FIXED, List.of(text), new Tensor[1])).isEqualTo(1);
  }

  @Test
  void unknownInput_namesItAndTheModelsInputs() {
    rejects(BATCHING, "inputs", fp32("NOPE", 1, 1, 2))
        .hasMessage("model 'm' has no input named 'NOPE'; its inputs are [INPUT0, MASK]");
  }

  @Test
  void duplicateInput_namesIt() {
    rejects(BATCHING, "inputs", fp32("INPUT0", 1, 1, 2), fp32("INPUT0", 1, 1, 2))
        .hasMessage("input 'INPUT0' is given more than once");
  }

  @Test
  void missingRequiredInput_namesItAndTheRequiredInputs() {
    rejects(BATCHING, "inputs", bools("MASK", 1, 2)).hasMessage("input 'INPUT0' is missing; model 'm' requires [INPUT0, MASK]");
  }

  @Test
  void wrongDatatype_namesBothTypes() {
    rejects(BATCHING, "inputs[MASK].datatype", fp32("INPUT0", 1, 1, 2), fp32("MASK", 1, 2))
        .hasMessage("input 'MASK' of model 'm' has datatype FP32; expected BOOL");
  }

  @Test
  void wrongRankOrFixedDim_namesBothShapes() {
    rejects(BATCHING, "inputs[INPUT0].shape", fp32("INPUT0", 1, 2)).hasMessage("input 'INPUT0' has shape [1, 2]; expected [-1, -1, 2]");
    rejects(BATCHING, "inputs[INPUT0].shape", fp32("INPUT0", 1, 1, 3)).hasMessage("input 'INPUT0' has shape [1, 1, 3]; expected [-1, -1, 2]");
  }

  @Test
  void negativeDimension_namesTheShape() {
    Tensor negative = new Tensor("INPUT0", DataType.FP32, new long[] {1, -1, 2}, ByteBuffer.allocate(0));
    rejects(BATCHING, "inputs[INPUT0].shape", negative).hasMessage("input 'INPUT0' has a negative dimension in shape [1, -1, 2]");
  }

  @Test
  void batchOverMax_namesTheBatchAndTheLimit() {
    rejects(BATCHING, "inputs[INPUT0].shape", fp32("INPUT0", 5, 1, 2))
        .hasMessage("input 'INPUT0' has batch dimension 5, over max_batch_size 4 of model 'm'");
  }

  @Test
  void zeroBatch_isRejected() {
    rejects(BATCHING, "inputs", fp32("INPUT0", 0, 1, 2)).hasMessage("batch dimension must be at least 1; was 0");
  }

  @Test
  void disagreeingBatchDims_nameBothInputsAndValues() {
    rejects(BATCHING, "inputs", fp32("INPUT0", 2, 1, 2), bools("MASK", 3, 2))
        .hasMessage("inputs 'INPUT0' and 'MASK' disagree on the batch dimension: 2 vs 3");
  }

  @Test
  void wrongByteSize_namesTheBytesAndWhatTheShapeNeeds() {
    Tensor short1 = new Tensor("INPUT0", DataType.FP32, new long[] {1, 1, 2}, ByteBuffer.allocate(7));
    rejects(BATCHING, "inputs[INPUT0]", short1).hasMessage("input 'INPUT0' has 7 bytes of data, but shape [1, 1, 2] of FP32 needs 8");
  }

  @Test
  void hugeShape_isRejectedWithoutOverflow() {
    Tensor huge = new Tensor("INPUT0", DataType.FP32, new long[] {1, 1L << 62, 2}, ByteBuffer.allocate(8));
    rejects(BATCHING, "inputs[INPUT0]", huge).hasMessageContaining("needs more than 2^63");
    Tensor wraps = new Tensor("INPUT0", DataType.FP32, new long[] {1, 1L << 61, 2}, ByteBuffer.allocate(0));
    rejects(BATCHING, "inputs[INPUT0]", wraps).hasMessageContaining("has 0 bytes of data");
  }

  @Test
  void malformedBytes_areRejected() {
    Tensor text = new Tensor("TEXT", DataType.BYTES, new long[] {2}, ByteBuffer.allocate(3));
    rejects(FIXED, "inputs[TEXT]", text).hasMessageStartingWith("input 'TEXT' has malformed BYTES data");
  }

  @Test
  void wrongBytesElementCount_namesBothCounts() {
    Tensor text = new Tensor("TEXT", DataType.BYTES, new long[] {2}, BytesElements.encode(List.of(new byte[1])));
    rejects(FIXED, "inputs[TEXT]", text).hasMessage("input 'TEXT' has 1 BYTES elements, but shape [2] needs 2");
  }

  @Test
  void resolveOutputs_emptyMeansAll_andNamesUnknownOrRepeatedOutputs() {
    assertThat(RequestValidator.resolveOutputs("m", BATCHING, List.of())).containsExactly(0, 1);
    assertThat(RequestValidator.resolveOutputs("m", BATCHING, List.of("OUT1", "OUT0"))).containsExactly(1, 0);
    assertThatThrownBy(() -> RequestValidator.resolveOutputs("m", BATCHING, List.of("X")))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.field()).isEqualTo("outputs"))
        .hasMessage("model 'm' has no output named 'X'; its outputs are [OUT0, OUT1]");
    assertThatThrownBy(() -> RequestValidator.resolveOutputs("m", BATCHING, List.of("OUT0", "OUT0")))
        .hasMessage("output 'OUT0' is requested more than once");
  }
}
