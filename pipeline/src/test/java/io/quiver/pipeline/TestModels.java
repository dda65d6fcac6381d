package io.quiver.pipeline;

import io.quiver.core.DataType;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelHandle;
import io.quiver.core.spi.ModelRouter;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelEnsembling;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelOutput;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.DoubleUnaryOperator;

/**
 * Step models for the ensemble tests that really compute: FP32 element-wise functions, answered at
 * once ({@link Compute}) or held until the test lets them go ({@link Gate}); a router over them that
 * counts holds; and builders of ensemble configs.
 */
final class TestModels {
  private TestModels() {}

  /** A model version the router hands out: its signature, config and scheduler, and how many hold it. */
  static final class Model {
    final String name;
    volatile long version;
    volatile ModelSignature signature;
    volatile ModelConfig config;
    volatile InferenceScheduler scheduler;
    final AtomicInteger held = new AtomicInteger();

    Model(String name, long version, ModelSignature signature, ModelConfig config, InferenceScheduler scheduler) {
      this.name = name;
      this.version = version;
      this.signature = signature;
      this.config = config;
      this.scheduler = scheduler;
    }
  }

  /** Routes to the registered models; unknown names are NOT_FOUND, as the model manager answers. */
  static final class Router implements ModelRouter {
    final Map<String, Model> models = new ConcurrentHashMap<>();

    Model add(Model model) {
      models.put(model.name, model);
      return model;
    }

    @Override
    public ModelHandle acquire(String model, String version, String requestId) {
      Model m = models.get(model);
      if (m == null) {
        throw InferenceException.notFound("unknown model '%s': not in the repository or not loaded", model);
      }
      if (!version.isEmpty() && Long.parseLong(version) != m.version) {
        throw InferenceException.notFound("model '%s' has no version '%s'", model, version);
      }
      m.held.incrementAndGet();
      long v = m.version;
      ModelSignature s = m.signature;
      ModelConfig c = m.config;
      InferenceScheduler sched = m.scheduler;
      return new ModelHandle() {
        private boolean released;

        @Override public String name() { return m.name; }
        @Override public long version() { return v; }
        @Override public String versionLabel() { return Long.toString(v); }
        @Override public ModelSignature signature() { return s; }
        @Override public ModelConfig config() { return c; }
        @Override public InferenceScheduler scheduler() { return sched; }

        @Override
        public synchronized void release() {
          if (released) {
            throw new IllegalStateException("released twice");
          }
          released = true;
          m.held.decrementAndGet();
        }
      };
    }
  }

  /** FP32 [-1, width] in and out, batching up to {@code maxBatch}. */
  static ModelSignature fp32(String input, String output, int width, int maxBatch) {
    return new ModelSignature(maxBatch, List.of(new TensorSpec(input, DataType.FP32, new long[] {width})),
        List.of(new TensorSpec(output, DataType.FP32, new long[] {width})));
  }

  static ModelConfig configOf(String name, ModelSignature signature) {
    ModelConfig.Builder b = ModelConfig.newBuilder().setName(name).setMaxBatchSize(signature.maxBatchSize());
    for (TensorSpec in : signature.inputs()) {
      b.addInput(ModelInput.newBuilder().setName(in.name()).setDataType(protoType(in.dataType())).addAllDims(dims(in)));
    }
    for (TensorSpec out : signature.outputs()) {
      b.addOutput(ModelOutput.newBuilder().setName(out.name()).setDataType(protoType(out.dataType())).addAllDims(dims(out)));
    }
    return b.build();
  }

  private static List<Long> dims(TensorSpec spec) {
    return java.util.Arrays.stream(spec.dims()).boxed().toList();
  }

  private static io.quiver.proto.inference.DataType protoType(DataType type) {
    return switch (type) {
      case FP32 -> io.quiver.proto.inference.DataType.TYPE_FP32;
      case INT32 -> io.quiver.proto.inference.DataType.TYPE_INT32;
      default -> throw new IllegalArgumentException(type.toString());
    };
  }

  /** An ensemble config: FP32 inputs and outputs of {@code width}, and the steps. */
  static ModelConfig ensemble(String name, int maxBatch, int width, List<String> inputs, List<String> outputs,
      ModelEnsembling.Step... steps) {
    ModelConfig.Builder b = ModelConfig.newBuilder().setName(name).setPlatform("ensemble").setMaxBatchSize(maxBatch);
    for (String in : inputs) {
      b.addInput(ModelInput.newBuilder().setName(in).setDataType(io.quiver.proto.inference.DataType.TYPE_FP32).addDims(width));
    }
    for (String out : outputs) {
      b.addOutput(ModelOutput.newBuilder().setName(out).setDataType(io.quiver.proto.inference.DataType.TYPE_FP32).addDims(width));
    }
    b.setEnsembleScheduling(ModelEnsembling.newBuilder().addAllStep(List.of(steps)));
    return b.build();
  }

  /** A step calling {@code model}: {@code inputs} and {@code outputs} alternate model tensor, ensemble tensor. */
  static ModelEnsembling.Step step(String model, String[] inputs, String[] outputs) {
    ModelEnsembling.Step.Builder b = ModelEnsembling.Step.newBuilder().setModelName(model).setModelVersion(-1);
    for (int i = 0; i < inputs.length; i += 2) {
      b.putInputMap(inputs[i], inputs[i + 1]);
    }
    for (int i = 0; i < outputs.length; i += 2) {
      b.putOutputMap(outputs[i], outputs[i + 1]);
    }
    return b.build();
  }

  static Tensor fp32(String name, long rows, float... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      data.putFloat(v);
    }
    return new Tensor(name, DataType.FP32, new long[] {rows, values.length / rows}, data.flip());
  }

  static float[] floats(Tensor t) {
    ByteBuffer data = t.data();
    float[] out = new float[data.remaining() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = data.getFloat();
    }
    return out;
  }

  /** Applies {@code f} to every element of the request's first input: the one FP32 output, in a direct buffer. */
  static Tensor[] compute(InferRequest request, ModelSignature signature, DoubleUnaryOperator f) {
    Tensor in = request.inputs()[0];
    ByteBuffer src = in.data();
    ByteBuffer out = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    while (src.hasRemaining()) {
      out.putFloat((float) f.applyAsDouble(src.getFloat()));
    }
    out.flip();
    return new Tensor[] {new Tensor(signature.outputs().get(0).name(), DataType.FP32, in.shape(), out)};
  }

  /**
   * Answers each request at once, on the submitting thread, with f(input); then scribbles over the
   * output buffer, as a runner reusing its output buffers would: a caller that kept the tensor past the
   * callback reads garbage.
   */
  static class Compute implements InferenceScheduler {
    final ModelSignature signature;
    final DoubleUnaryOperator f;
    final InferenceStats stats = new InferenceStats(64);
    final AtomicInteger submitted = new AtomicInteger();

    Compute(ModelSignature signature, DoubleUnaryOperator f) {
      this.signature = signature;
      this.f = f;
    }

    @Override
    public void submit(InferRequest request) {
      submitted.incrementAndGet();
      request.setEnqueueNanos(System.nanoTime());
      if (request.isCancelled()) {
        request.callback().onFailure(request, InferenceException.cancelled("cancelled"));
        return;
      }
      Tensor[] outputs = compute(request, signature, f);
      request.recordTimings(1000, 10, 100, 10, request.batchSize());
      request.callback().onSuccess(request, outputs);
      ByteBuffer reused = outputs[0].data();
      while (reused.hasRemaining()) {
        reused.putFloat(Float.NaN); // the runner's next batch overwrites these buffers
      }
    }

    @Override public int queuedRequests() { return 0; }
    @Override public int inFlightRequests() { return 0; }
    @Override public InferenceStats stats() { return stats; }
    @Override public void close() {}
  }

  /** Holds every request until the test lets it go ({@link #releaseAll}); then answers f(input), or CANCELLED/DEADLINE as a batcher would. */
  static final class Gate implements InferenceScheduler {
    final ModelSignature signature;
    final DoubleUnaryOperator f;
    final InferenceStats stats = new InferenceStats(64);
    private final ArrayDeque<InferRequest> waiting = new ArrayDeque<>();
    /** Answer even past a request's deadline (a batch already running when the deadline passed). */
    volatile boolean deadlineUnchecked;

    Gate(ModelSignature signature, DoubleUnaryOperator f) {
      this.signature = signature;
      this.f = f;
    }

    @Override
    public synchronized void submit(InferRequest request) {
      request.setEnqueueNanos(System.nanoTime());
      waiting.add(request);
      notifyAll();
    }

    synchronized int waiting() {
      return waiting.size();
    }

    /** Waits (bounded) until {@code n} requests are held. */
    synchronized boolean awaitWaiting(int n, long millis) throws InterruptedException {
      long end = System.currentTimeMillis() + millis;
      while (waiting.size() < n && System.currentTimeMillis() < end) {
        wait(Math.max(1, end - System.currentTimeMillis()));
      }
      return waiting.size() >= n;
    }

    /** Answers every held request, on the calling thread. */
    void releaseAll() {
      List<InferRequest> now;
      synchronized (this) {
        now = List.copyOf(waiting);
        waiting.clear();
      }
      for (InferRequest request : now) {
        if (request.isCancelled()) {
          request.callback().onFailure(request, InferenceException.cancelled("request cancelled before it ran"));
        } else if (!deadlineUnchecked && request.deadlineNanos() != InferRequest.NO_DEADLINE
            && System.nanoTime() > request.deadlineNanos()) {
          request.callback().onFailure(request, InferenceException.deadlineExceeded("deadline passed in the queue"));
        } else {
          request.recordTimings(500, 10, 100, 10, request.batchSize());
          request.callback().onSuccess(request, compute(request, signature, f));
        }
      }
    }

    @Override public synchronized int queuedRequests() { return waiting.size(); }
    @Override public synchronized int inFlightRequests() { return waiting.size(); }
    @Override public InferenceStats stats() { return stats; }
    @Override public void close() {}
  }
}
