package io.quiver.lifecycle;

import io.quiver.core.DataType;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInput;
import io.quiver.proto.inference.ModelOutput;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A test runtime that really computes: identity in Java. Its model file ({@value #MODEL_FILE}) is one
 * line, {@code identity <DATATYPE> <dim>...} (e.g. {@code identity FP32 16}), optionally followed by
 * lines {@code load_delay_ms <n>} (opening an instance is slow), {@code offset <x>} (FP32 only: each
 * output element is the input plus x, so a test can tell which model answered) and
 * {@code memory_mb <n>} (each instance holds n MiB of native memory, written so it is resident, freed
 * at close, and reported through {@link ModelRunner#memoryBytes()}). Anything else is a corrupt model.
 * It keeps the set of open runners and counts instances opened per model, so tests can see what the
 * manager opened and closed.
 */
public final class JavaIdentityRuntime implements ModelRuntime {
  public static final String NAME = "java-identity";
  public static final String PLATFORM = "quiver_java_identity";
  public static final String MODEL_FILE = "model.identity";
  private static final sun.misc.Unsafe UNSAFE = unsafe();

  final Set<IdentityRunner> open = ConcurrentHashMap.newKeySet();
  /** Runs on the thread that closes a runner, as it closes it (a test can see where the manager does that). */
  volatile Runnable onClose = () -> {};
  final ConcurrentHashMap<String, java.util.concurrent.atomic.AtomicInteger> opened = new ConcurrentHashMap<>();

  final ConcurrentHashMap<String, java.util.concurrent.atomic.AtomicInteger> completed = new ConcurrentHashMap<>();

  /** Configs completed for {@code model} (named by its directory) since this runtime was made. */
  public int completed(String model) {
    var n = completed.get(model);
    return n == null ? 0 : n.get();
  }

  /** Instances opened for {@code model} since this runtime was made (one per load with one instance). */
  public int opened(String model) {
    var n = opened.get(model);
    return n == null ? 0 : n.get();
  }

  private static sun.misc.Unsafe unsafe() {
    try {
      java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
      f.setAccessible(true);
      return (sun.misc.Unsafe) f.get(null);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public String platform() {
    return PLATFORM;
  }

  @Override
  public boolean handles(String platform, String backend) {
    return PLATFORM.equals(platform) || "java_identity".equals(backend);
  }

  @Override
  public String defaultModelFilename() {
    return MODEL_FILE;
  }

  /** Writes a model file into {@code versionDir}. */
  public static Path write(Path versionDir, String contents) throws IOException {
    Files.createDirectories(versionDir);
    return Files.writeString(versionDir.resolve(MODEL_FILE), contents);
  }

  private record Spec(DataType type, long[] dims, long loadDelayMs, float offset, long memoryBytes) {}

  private static Spec read(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file);
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
    String[] head = lines.isEmpty() ? new String[0] : lines.get(0).trim().split("\\s+");
    DataType type = head.length >= 2 && head[0].equals("identity") ? DataType.fromWireName(head[1]) : null;
    if (type == null) {
      throw InferenceException.invalidArgument("%s is not a %s model (corrupt or truncated)", file, NAME);
    }
    long[] dims = Arrays.stream(head, 2, head.length).mapToLong(Long::parseLong).toArray();
    long delay = 0;
    float offset = 0;
    long memory = 0;
    for (String line : lines.subList(1, lines.size())) {
      if (line.startsWith("load_delay_ms ")) {
        delay = Long.parseLong(line.substring("load_delay_ms ".length()).trim());
      } else if (line.startsWith("offset ")) {
        offset = Float.parseFloat(line.substring("offset ".length()).trim());
      } else if (line.startsWith("memory_mb ")) {
        memory = Long.parseLong(line.substring("memory_mb ".length()).trim()) << 20;
      }
    }
    return new Spec(type, dims, delay, offset, memory);
  }

  @Override
  public ModelConfig completeConfig(ModelConfig declared, Path modelFile) {
    completed.computeIfAbsent(modelFile.toAbsolutePath().getParent().getParent().getFileName().toString(),
        k -> new java.util.concurrent.atomic.AtomicInteger()).incrementAndGet();
    Spec spec = read(modelFile);
    ModelConfig.Builder b = declared.toBuilder();
    if (b.getInputCount() == 0) {
      ModelInput.Builder in = b.addInputBuilder().setName("INPUT0").setDataType(spec.type().toConfig());
      Arrays.stream(spec.dims()).forEach(in::addDims);
    } else if (b.getInput(0).getDataType() != spec.type().toConfig()) {
      throw InferenceException.invalidArgument("input '%s'.data_type is %s but the model's is %s",
          b.getInput(0).getName(), b.getInput(0).getDataType(), spec.type().toConfig());
    }
    if (b.getOutputCount() == 0) {
      ModelOutput.Builder out = b.addOutputBuilder().setName("OUTPUT0").setDataType(spec.type().toConfig());
      Arrays.stream(spec.dims()).forEach(out::addDims);
    }
    return b.build();
  }

  @Override
  public ModelRunner newRunner(ModelConfig completed, Path modelFile, InstanceSpec instance) {
    if (instance.kind() == InstanceSpec.Kind.GPU) {
      throw InferenceException.invalidArgument("%s runs on CPU only; instance_group asks for GPU %d", NAME,
          instance.deviceId());
    }
    Spec spec = read(modelFile);
    if (spec.loadDelayMs() > 0) {
      try {
        Thread.sleep(spec.loadDelayMs());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw InferenceException.internal("interrupted while loading", e);
      }
    }
    long address = 0;
    if (spec.memoryBytes() > 0) {
      address = UNSAFE.allocateMemory(spec.memoryBytes());
      UNSAFE.setMemory(address, spec.memoryBytes(), (byte) 1); // touched: resident, not just reserved
    }
    IdentityRunner runner = new IdentityRunner(this, completed.getName(), instance, spec.offset(), address,
        spec.memoryBytes());
    open.add(runner);
    opened.computeIfAbsent(completed.getName(), k -> new java.util.concurrent.atomic.AtomicInteger()).incrementAndGet();
    return runner;
  }

  /** Copies each requested output from the input at the same position (OUTPUTn = INPUTn). */
  public static final class IdentityRunner implements ModelRunner {
    final JavaIdentityRuntime runtime;
    final String model;
    final InstanceSpec instance;
    final float offset;
    final long memoryBytes;
    private long address;
    volatile boolean closed;
    volatile int runs;

    IdentityRunner(JavaIdentityRuntime runtime, String model, InstanceSpec instance, float offset, long address,
        long memoryBytes) {
      this.runtime = runtime;
      this.model = model;
      this.instance = instance;
      this.offset = offset;
      this.address = address;
      this.memoryBytes = memoryBytes;
    }

    @Override
    public long memoryBytes() {
      return memoryBytes > 0 ? memoryBytes : -1;
    }

    @Override
    public Tensor[] run(Tensor[] inputs, int[] outputIndices) {
      if (closed) {
        throw new IllegalStateException("runner of " + model + " used after close");
      }
      Tensor[] out = new Tensor[outputIndices.length];
      for (int i = 0; i < outputIndices.length; i++) {
        Tensor in = inputs[outputIndices[i]];
        ByteBuffer copy = ByteBuffer.allocateDirect(in.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(in.data()).flip();
        if (offset != 0 && in.dataType() == DataType.FP32) {
          for (int p = 0; p < copy.limit(); p += 4) {
            copy.putFloat(p, copy.getFloat(p) + offset);
          }
        }
        out[i] = new Tensor("OUTPUT" + outputIndices[i], in.dataType(), in.shape().clone(), copy);
      }
      runs++;
      return out;
    }

    @Override
    public synchronized void close() {
      if (!closed) {
        runtime.onClose.run();
      }
      closed = true;
      if (address != 0) {
        UNSAFE.freeMemory(address);
        address = 0;
      }
      runtime.open.remove(this);
    }
  }
}
