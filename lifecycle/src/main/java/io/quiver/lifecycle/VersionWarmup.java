package io.quiver.lifecycle;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelRunner;
import java.util.List;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelWarmup;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Warms a new version up before it takes traffic (Triton's {@code model_warmup}): on every runner
 * instance, each configured sample {@code count} times (zero, random, or file data; files are read from
 * the version directory's {@code warmup/} folder), or, when the config has none, one synthetic batch
 * of zeros shaped from the signature (batch 1, variable dims 1). The runners are called directly,
 * before the scheduler exists, so warm-up never shows in statistics or metrics. A failure fails the
 * load, so a version that cannot run never takes traffic. Runs on a load thread; blocking.
 */
final class VersionWarmup {
  /** Largest warm-up input accepted, in bytes. */
  static final long MAX_WARMUP_INPUT_BYTES = 256L << 20;

  private VersionWarmup() {}

  /** @return the number of warm-up runs made (samples × count × instances) */
  static int run(String label, ModelConfig config, ModelSignature signature, List<ModelRunner> runners, Path versionDir) {
    int[] outputs = new int[signature.outputs().size()];
    for (int i = 0; i < outputs.length; i++) {
      outputs[i] = i;
    }
    int n = 0;
    if (config.getModelWarmupCount() == 0) {
      Tensor[] inputs = synthetic(signature);
      for (ModelRunner runner : runners) {
        runOne(label, "synthetic", runner, inputs, outputs);
        n++;
      }
      return n;
    }
    for (ModelWarmup sample : config.getModelWarmupList()) {
      Tensor[] inputs = fromSample(label, sample, signature, Math.max(1, sample.getBatchSize()), versionDir);
      for (ModelRunner runner : runners) {
        for (int i = 0; i < Math.max(1, sample.getCount()); i++) {
          runOne(label, sample.getName(), runner, inputs, outputs);
          n++;
        }
      }
    }
    return n;
  }

  private static void runOne(String label, String sample, ModelRunner runner, Tensor[] inputs, int[] outputs) {
    Tensor[] copies = new Tensor[inputs.length];
    for (int i = 0; i < inputs.length; i++) {
      copies[i] = inputs[i] == null ? null
          : new Tensor(inputs[i].name(), inputs[i].dataType(), inputs[i].shape(),
              inputs[i].data().duplicate().order(ByteOrder.LITTLE_ENDIAN));
    }
    try {
      runner.run(copies, outputs);
    } catch (RuntimeException e) {
      throw new InferenceException(VersionLoader.code(e), label + ": warm-up run '" + sample + "' failed: "
          + VersionLoader.reason(e), null, 0L, e);
    }
  }

  private static Tensor[] synthetic(ModelSignature signature) {
    Tensor[] inputs = new Tensor[signature.inputs().size()];
    for (int i = 0; i < inputs.length; i++) {
      TensorSpec spec = signature.inputs().get(i);
      long[] dims = spec.dims();
      long[] shape = new long[dims.length + (signature.batches() ? 1 : 0)];
      int k = 0;
      if (signature.batches()) {
        shape[k++] = 1;
      }
      for (long d : dims) {
        shape[k++] = d < 0 ? 1 : d;
      }
      inputs[i] = new Tensor(spec.name(), spec.dataType(), shape, filled(spec.dataType(), shape, false));
    }
    return inputs;
  }

  private static Tensor[] fromSample(String label, ModelWarmup sample, ModelSignature signature, int batch, Path dir) {
    Tensor[] inputs = new Tensor[signature.inputs().size()];
    for (var entry : sample.getInputsMap().entrySet()) {
      int index = signature.inputIndex(entry.getKey());
      if (index < 0) {
        throw InferenceException.invalidArgument("%s: model_warmup '%s' names input '%s', which the model does not have",
            label, sample.getName(), entry.getKey());
      }
      ModelWarmup.Input in = entry.getValue();
      DataType type = DataType.fromConfig(in.getDataType());
      long[] shape = new long[in.getDimsCount() + (signature.batches() ? 1 : 0)];
      int k = 0;
      if (signature.batches()) {
        shape[k++] = batch;
      }
      for (long d : in.getDimsList()) {
        shape[k++] = d;
      }
      ByteBuffer data;
      if (in.getInputDataTypeCase() == ModelWarmup.Input.InputDataTypeCase.INPUT_DATA_FILE) {
        data = fromFile(label, dir.resolve("warmup").resolve(in.getInputDataFile()), type, shape, signature.batches());
      } else {
        data = filled(type, shape, in.getRandomData());
      }
      inputs[index] = new Tensor(entry.getKey(), type, shape, data);
    }
    for (int i = 0; i < inputs.length; i++) {
      TensorSpec spec = signature.inputs().get(i);
      if (inputs[i] == null && !spec.clientFacing()) {
        // a sequence_batching control or state input: the server sets it, so the sample need not (zeros)
        long[] shape = new long[spec.dims().length + (signature.batches() ? 1 : 0)];
        int k = 0;
        if (signature.batches()) {
          shape[k++] = batch;
        }
        for (long d : spec.dims()) {
          shape[k++] = Math.max(1, d);
        }
        inputs[i] = new Tensor(spec.name(), spec.dataType(), shape, filled(spec.dataType(), shape, false));
        continue;
      }
      if (inputs[i] == null && !signature.inputs().get(i).optional()) {
        throw InferenceException.invalidArgument("%s: model_warmup '%s' gives no data for input '%s'", label,
            sample.getName(), signature.inputs().get(i).name());
      }
    }
    return inputs;
  }

  private static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  /** Zeros (or random bytes); BYTES elements are empty strings (a 4-byte zero length each). */
  private static ByteBuffer filled(DataType type, long[] shape, boolean random) {
    long n = elements(shape);
    long bytes = type.byteSize() < 0 ? 4 * n : n * type.byteSize();
    if (bytes > MAX_WARMUP_INPUT_BYTES) {
      throw InferenceException.invalidArgument("warm-up input of shape %s is %d bytes; at most %d are allowed",
          java.util.Arrays.toString(shape), bytes, MAX_WARMUP_INPUT_BYTES);
    }
    ByteBuffer data = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (random && type.byteSize() > 0 && type != DataType.BOOL) {
      byte[] noise = new byte[(int) bytes];
      ThreadLocalRandom.current().nextBytes(noise);
      data.put(noise).flip();
    }
    return data;
  }

  /** The file holds one batch item's raw bytes; it is repeated for each item of the batch. */
  private static ByteBuffer fromFile(String label, Path file, DataType type, long[] shape, boolean batches) {
    try {
      byte[] item = Files.readAllBytes(file);
      int repeat = batches ? (int) shape[0] : 1;
      ByteBuffer data = ByteBuffer.allocateDirect(item.length * repeat).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < repeat; i++) {
        data.put(item);
      }
      return data.flip();
    } catch (IOException e) {
      throw InferenceException.invalidArgument("%s: cannot read warm-up data %s: %s", label, file, e);
    }
  }
}
