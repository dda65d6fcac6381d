package io.quiver.core.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.DataType;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.InstanceSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class RunnerInputsTest {

  @Test
  void requireLittleEndian_passesOnThisPlatform() {
    org.junit.jupiter.api.Assumptions.assumeTrue(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN);
    assertThatCode(() -> RunnerInputs.requireLittleEndian("test", "tensors are copied without byte swapping"))
        .doesNotThrowAnyException();
  }

  @Test
  void checkRun_whenClosed_failsThePrecondition() {
    assertThatThrownBy(() -> RunnerInputs.checkRun("m", InstanceSpec.cpu(2), true, 1, 1))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.FAILED_PRECONDITION))
        .hasMessage("model 'm' instance 2: runner is closed");
  }

  @Test
  void checkRun_withWrongInputCount_namesBothCounts() {
    RunnerInputs.checkRun("m", InstanceSpec.cpu(0), false, 2, 2);
    assertThatThrownBy(() -> RunnerInputs.checkRun("m", InstanceSpec.cpu(0), false, 1, 2))
        .hasMessage("model 'm': expected 2 inputs; got 1");
  }

  @Test
  void checkOutputIndex_rejectsIndicesOutsideTheModel() {
    RunnerInputs.checkOutputIndex("m", 0, 1);
    assertThatThrownBy(() -> RunnerInputs.checkOutputIndex("m", 1, 1))
        .hasMessage("model 'm': output index 1 is out of range (the model has 1 outputs)");
    assertThatThrownBy(() -> RunnerInputs.checkOutputIndex("m", -1, 1)).hasMessageContaining("output index -1");
  }

  @Test
  void elementCount_namesTheShapeFieldOnANegativeDimension() {
    assertThat(RunnerInputs.elementCount("m", "x", new long[] {2, 3})).isEqualTo(6);
    assertThatThrownBy(() -> RunnerInputs.elementCount("m", "x", new long[] {2, -1}))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.field()).isEqualTo("inputs[x].shape"))
        .hasMessage("model 'm': input 'x' has a negative dimension in shape [2, -1]");
  }

  @Test
  void checkByteSize_namesShapeAndBothSizes() {
    assertThat(RunnerInputs.checkByteSize("m", "x", DataType.FP32, new long[] {2}, 2, ByteBuffer.allocate(8))).isEqualTo(8);
    assertThatThrownBy(() -> RunnerInputs.checkByteSize("m", "x", DataType.FP32, new long[] {2}, 2, ByteBuffer.allocate(7)))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.field()).isEqualTo("inputs[x]"))
        .hasMessage("model 'm': input 'x' with shape [2] needs 8 bytes of FP32; got 7");
  }
}
