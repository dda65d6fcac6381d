package io.quiver.batching;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.batching.TestSupport.Result;
import io.quiver.core.BytesElements;
import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelDynamicBatching;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** BYTES tensors: variable-length rows are gathered and the outputs split at element boundaries. */
@Timeout(20)
class BytesBatchingTest {
  /** Appends "!" to every string (so output element sizes differ from the input's). */
  private static final class ShoutRunner implements ModelRunner {
    final List<Integer> batchRows = new ArrayList<>();

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      assertThat(inputs[0].data().isDirect()).isTrue();
      List<String> out = new ArrayList<>();
      for (byte[] e : BytesElements.decode(inputs[0].data())) {
        out.add(new String(e, StandardCharsets.UTF_8) + "!");
      }
      batchRows.add((int) inputs[0].shape()[0]);
      return new Tensor[] {new Tensor("OUT", DataType.BYTES, inputs[0].shape().clone(), BytesElements.encodeStrings(out))};
    }

    @Override
    public void close() {}
  }

  private static InferRequest request(String id, Result callback, String... values) {
    Tensor in = new Tensor("IN", DataType.BYTES, new long[] {values.length, 1}, BytesElements.encodeStrings(List.of(values)));
    return new InferRequest("m", 1, id, new Tensor[] {in}, new int[] {0}, values.length, 0, 0, InferRequest.NO_DEADLINE, callback);
  }

  private static List<String> strings(Result r) {
    List<String> s = new ArrayList<>();
    for (byte[] e : BytesElements.decode(r.outputs[0].data())) {
      s.add(new String(e, StandardCharsets.UTF_8));
    }
    return s;
  }

  @Test
  void bytesOutputs_areSlicedAtTheRightElementsForEachRequest() {
    ModelSignature sig = new ModelSignature(8, List.of(new TensorSpec("IN", DataType.BYTES, new long[] {1})),
        List.of(new TensorSpec("OUT", DataType.BYTES, new long[] {1})));
    ModelConfig config = ModelConfig.newBuilder().setName("m").setMaxBatchSize(8)
        .setDynamicBatching(ModelDynamicBatching.newBuilder().addPreferredBatchSize(6)).build();
    ShoutRunner runner = new ShoutRunner();
    DynamicBatcher b = DynamicBatcher.builder().model("m", 1, config, sig).runners(List.of(runner))
        .compute(TestSupport.POOL).manualDispatch().build();
    try {
      Result r1 = new Result();
      Result r2 = new Result();
      Result r3 = new Result();
      b.submit(request("1", r1, "a", "bb"));
      b.submit(request("2", r2, ""));
      b.submit(request("3", r3, "ccc", "dddd", "ée"));
      TestSupport.pumpUntil(b, () -> r1.isDone() && r2.isDone() && r3.isDone());
      assertThat(runner.batchRows).containsExactly(6);
      assertThat(strings(r1)).containsExactly("a!", "bb!");
      assertThat(strings(r2)).containsExactly("!");
      assertThat(strings(r3)).containsExactly("ccc!", "dddd!", "ée!");
      assertThat(r3.outputs[0].shape()).containsExactly(3, 1);
    } finally {
      b.close();
    }
  }
}
