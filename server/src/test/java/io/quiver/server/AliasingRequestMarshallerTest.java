package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AliasingRequestMarshallerTest {
  static final MethodDescriptor.Marshaller<ModelInferRequest> DEFAULT =
      GRPCInferenceServiceGrpc.getModelInferMethod().getRequestMarshaller();
  static final AliasingRequestMarshaller<ModelInferRequest> ALIASING =
      new AliasingRequestMarshaller<>(ModelInferRequest.getDefaultInstance(), DEFAULT);

  /** Like gRPC's own message streams: knows its remaining length. */
  static final class KnownLengthStream extends ByteArrayInputStream implements KnownLength {
    KnownLengthStream(byte[] bytes) {
      super(bytes);
    }
  }

  static ModelInferRequest request(int floats, long seed) {
    byte[] raw = new byte[floats * 4];
    new Random(seed).nextBytes(raw);
    return ModelInferRequest.newBuilder()
        .setModelName("identity_fp32").setId("r-" + seed)
        .addInputs(Tensors.input("INPUT0", "FP32", 1, floats))
        .addRawInputContents(ByteString.copyFrom(raw))
        .addRawInputContents(ByteString.EMPTY)
        .build();
  }

  @Test
  void parse_givesTheSameMessageAsTheDefaultMarshaller_withAndWithoutAKnownLength() throws Exception {
    for (int floats : new int[] {0, 1, 784, 38_400}) {
      ModelInferRequest sent = request(floats, floats);
      byte[] wire = sent.toByteArray();
      ModelInferRequest viaDefault = DEFAULT.parse(new ByteArrayInputStream(wire));
      assertThat(ALIASING.parse(new KnownLengthStream(wire))).isEqualTo(viaDefault).isEqualTo(sent);
      assertThat(ALIASING.parse(new ByteArrayInputStream(wire))).isEqualTo(sent);
      try (InputStream out = ALIASING.stream(sent)) {
        assertThat(out.readAllBytes()).isEqualTo(wire);
      }
    }
  }

  @Test
  void parse_aliasesRawInputContents_insteadOfCopyingThem() {
    ModelInferRequest parsed = ALIASING.parse(new KnownLengthStream(request(784, 7).toByteArray()));
    // protobuf's copy is a LiteralByteString of its own; an aliased field is a view (BoundedByteString)
    // into the message's array. Guards against an input that silently ignores enableAliasing.
    assertThat(parsed.getRawInputContents(0).getClass().getSimpleName()).isEqualTo("BoundedByteString");
    ModelInferRequest copied = DEFAULT.parse(new KnownLengthStream(request(784, 7).toByteArray()));
    assertThat(copied.getRawInputContents(0).getClass().getSimpleName()).isNotEqualTo("BoundedByteString");
  }

  @Test
  void parse_malformedBytes_failWithTheDefaultMarshallersStatus() {
    byte[] truncated = request(784, 1).toByteArray();
    truncated = java.util.Arrays.copyOf(truncated, truncated.length - 10);
    byte[] endGroupAtTopLevel = {0x0c}; // field 1, wire type 4 (end group) where no group is open
    byte[] badVarint = {0x08, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
        (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01};
    for (byte[] bad : new byte[][] {truncated, endGroupAtTopLevel, badVarint}) {
      assertThatThrownBy(() -> ALIASING.parse(new KnownLengthStream(bad)))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL));
      assertThatThrownBy(() -> DEFAULT.parse(new KnownLengthStream(bad)))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INTERNAL));
    }
  }

  @Test
  void withInferMarshallers_replacesOnlyTheInferMarshallers_andKeepsTheSchema() {
    ServerServiceDefinition original = new GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase() { }.bindService();
    ServerServiceDefinition aliased = AliasingRequestMarshaller.withInferMarshallers(original, true);
    assertThat(aliased.getServiceDescriptor().getSchemaDescriptor())
        .isSameAs(original.getServiceDescriptor().getSchemaDescriptor());
    assertThat(aliased.getMethods()).hasSameSizeAs(original.getMethods());
    assertThat(aliased.getMethod(GRPCInferenceServiceGrpc.getModelInferMethod().getFullMethodName())
        .getMethodDescriptor().getRequestMarshaller()).isInstanceOf(AliasingRequestMarshaller.class);
    assertThat(aliased.getMethod(GRPCInferenceServiceGrpc.getModelStreamInferMethod().getFullMethodName())
        .getMethodDescriptor().getRequestMarshaller()).isInstanceOf(AliasingRequestMarshaller.class);
    assertThat(aliased.getMethod(GRPCInferenceServiceGrpc.getServerLiveMethod().getFullMethodName())
        .getMethodDescriptor()).isSameAs(GRPCInferenceServiceGrpc.getServerLiveMethod());
  }
}
