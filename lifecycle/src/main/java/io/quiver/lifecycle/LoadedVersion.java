package io.quiver.lifecycle;

import io.quiver.core.InferenceStats;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelHandle;
import io.quiver.core.spi.ModelRunner;
import io.quiver.proto.inference.ModelConfig;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A loaded model version and the handle requests hold on it (TF Serving's ServableHandle): the
 * completed config, the signature, the scheduler, and a count of requests in flight.
 *
 * <p>{@link ModelManager#acquire} counts a request in; the caller calls {@link #release()} exactly
 * once when the request is answered (typically from its completion callback). An unload first makes
 * the version unroutable, then {@link #retire() retires} it and waits until the count drops to zero
 * before closing the scheduler and runners. Thread-safe; acquire and release are lock-free and do
 * not allocate. Each acquire also stamps {@link #lastUsedNanos()}, the recency the memory budget's
 * least-recently-used eviction goes by.
 */
public final class LoadedVersion implements ModelHandle {
  private static final VarHandle LAST_USED;

  static {
    try {
      LAST_USED = MethodHandles.lookup().findVarHandle(LoadedVersion.class, "lastUsedNanos", long.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private final String name;
  private final long version;
  private final String versionLabel;
  private final ModelConfig declaredConfig;
  private final ModelConfig config;
  private final ModelSignature signature;
  private final InferenceScheduler scheduler;
  private final List<ModelRunner> runners;
  private final String runtimeName;
  private final VersionMemory memory;
  private final String filesFingerprint;
  private final boolean pinnedByConfig;
  private final List<List<String>> outputLabels;

  // Written with opaque stores by every acquire (plain stores on x86: no fence on the hot path); read
  // by the eviction scan, which needs recency, not ordering.
  @SuppressWarnings("unused")
  private long lastUsedNanos;
  private final AtomicInteger inFlight = new AtomicInteger();
  // Written once by the unloading thread; read by every acquire after its increment (see tryRetain).
  private volatile boolean retired;
  private final CountDownLatch drained = new CountDownLatch(1);
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  LoadedVersion(String name, long version, ModelConfig declaredConfig, ModelConfig config, ModelSignature signature,
      InferenceScheduler scheduler, List<ModelRunner> runners, String runtimeName, VersionMemory memory,
      String filesFingerprint, boolean pinnedByConfig, List<List<String>> outputLabels) {
    this.outputLabels = outputLabels; // per signature output, its label_filename's lines (null entries: none); null: none
    this.name = name;
    this.version = version;
    this.versionLabel = Long.toString(version);
    this.declaredConfig = declaredConfig;
    this.config = config;
    this.signature = signature;
    this.scheduler = scheduler;
    this.runners = List.copyOf(runners);
    this.runtimeName = runtimeName;
    this.memory = memory;
    this.filesFingerprint = filesFingerprint;
    this.pinnedByConfig = pinnedByConfig;
    LAST_USED.setOpaque(this, System.nanoTime()); // a fresh version counts as just used
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public long version() {
    return version;
  }

  /** The version as the protocol writes it ("3"), made once so responses need not format it. */
  @Override
  public String versionLabel() {
    return versionLabel;
  }

  /** The completed config: what the runtime filled in, instance groups made explicit. */
  @Override
  public ModelConfig config() {
    return config;
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  /**
   * The class labels of each signature output (the lines of its config {@code label_filename}, read at
   * load; Triton's classification extension names classes with them), or null when no output has any.
   * Entries are null for outputs without labels. Immutable.
   */
  public List<List<String>> outputLabels() {
    return outputLabels;
  }

  @Override
  public InferenceScheduler scheduler() {
    return scheduler;
  }

  public InferenceStats stats() {
    return scheduler.stats();
  }

  /** Name of the runtime that loaded it, e.g. "onnxruntime". */
  public String runtimeName() {
    return runtimeName;
  }

  /** What this version costs in memory, measured when it loaded. */
  public VersionMemory memory() {
    return memory;
  }

  /** {@link System#nanoTime()} of the last acquire (or of the load, before any). */
  public long lastUsedNanos() {
    return (long) LAST_USED.getOpaque(this);
  }

  /** Whether its config sets {@code parameters { key: "quiver.pinned" value { string_value: "true" } }}. */
  public boolean pinnedByConfig() {
    return pinnedByConfig;
  }

  /** Requests that acquired this version and have not released it yet. */
  public int inFlight() {
    return inFlight.get();
  }

  /** Ends one request's hold; call exactly once per successful {@link ModelManager#acquire}. */
  @Override
  public void release() {
    int left = inFlight.decrementAndGet();
    if (left == 0 && retired) {
      drained.countDown();
    } else if (left < 0) {
      inFlight.incrementAndGet();
      throw new IllegalStateException("LoadedVersion.release() called more often than acquire for model '"
          + name + "' version " + version);
    }
  }

  /** The config as declared in the repository when this version loaded (compared on reload). */
  ModelConfig declaredConfig() {
    return declaredConfig;
  }

  /** Fingerprint of the version's files when it loaded (see {@link VersionFiles}). */
  String filesFingerprint() {
    return filesFingerprint;
  }

  List<ModelRunner> runners() {
    return runners;
  }

  boolean isRetired() {
    return retired;
  }

  /**
   * Counts a request in unless the version was retired. Called after reading the version from the
   * routing table: an unload may have swapped the table and retired the version in between, in which
   * case the caller reads the (newer) table again.
   */
  boolean tryRetain() {
    // Dekker-style pairing with retire(): both the increment and the flag are sequentially consistent.
    // If this read sees retired == false, our increment precedes retire() in the synchronization
    // order, so awaitDrained() observes it and waits for our release().
    inFlight.incrementAndGet();
    if (!retired) {
      LAST_USED.setOpaque(this, System.nanoTime());
      return true;
    }
    release();
    return false;
  }

  /** True for the one caller that closes the runners (and gives the version's memory back to the budget). */
  boolean markClosed() {
    return closed.compareAndSet(false, true);
  }

  /** Stops new holds; called after the version has left the routing table. Idempotent. */
  void retire() {
    retired = true;
    if (inFlight.get() == 0) {
      drained.countDown();
    }
  }

  /** After {@link #retire()}: waits until no request holds the version. Returns false on timeout. */
  boolean awaitDrained(long timeoutMillis) {
    boolean interrupted = false;
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    try {
      while (true) {
        try {
          return drained.await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          // Unloading must finish (runners hold native memory); remember the interrupt and keep waiting.
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public String toString() {
    return "LoadedVersion[" + name + "/" + version + " " + runtimeName + " instances=" + runners.size()
        + " inFlight=" + inFlight.get() + (retired ? " retired" : "") + "]";
  }
}
