package io.quiver.server.monitoring;

import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.proto.monitoring.v1.FeatureReport;
import io.quiver.proto.monitoring.v1.FeatureWindow;
import io.quiver.proto.monitoring.v1.ModelMonitoringReport;
import io.quiver.proto.monitoring.v1.ReferenceInfo;
import io.quiver.proto.monitoring.v1.ReferenceProfile;
import io.quiver.proto.monitoring.v1.SampleCounts;
import io.quiver.proto.monitoring.v1.TensorReport;
import io.quiver.proto.monitoring.v1.WindowInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import org.jctools.queues.MpscArrayQueue;

/**
 * The monitoring of one loaded model version.
 *
 * <p><b>Request path</b> ({@link #sampleInputs}, {@link #sampleOutputs}; any thread, never blocks): decides
 * whether to sample (one random draw unless {@code sample_rate} is 1), reserves the sample's bytes in
 * the queue's byte budget, copies the monitored tensors (whole rows, at most
 * {@link MonitoringConfig#maxSampleBytes()} per tensor) and offers the copy to a bounded
 * many-producer/one-consumer queue. A full queue (count or bytes) drops the sample and counts it;
 * nothing waits. The copy is deliberate: inputs may alias the gRPC message or a pooled buffer and
 * outputs a runner's buffer, any of which may be reused once the request completes; a copy of the
 * sampled rows is bounded and owned by the sample. Allocation per sampled request: the copies, a few
 * small arrays and the sample; none when the request is not sampled.
 *
 * <p><b>Monitoring thread</b> (everything else; one thread owns all the state below): summarises
 * samples into the current window's {@link TensorSummary}s (and a reference being captured), closes
 * windows (scores against the reference, publishes them, merges the window into the totals),
 * installs references and builds reports. Other threads reach it only through {@link ModelMonitoring}'s
 * command queue; what they read directly ({@link #lastWindow()}, {@link #referenceInfo()}, the sample
 * counters) is published through volatile fields holding immutable values.
 */
public final class VersionMonitor {
  final String model;
  final long version;
  final String versionLabel;
  final MonitoringConfig config;
  final List<TensorLayout> layouts;
  private final TensorLayout[] inputLayouts;
  private final TensorLayout[] outputLayouts;
  private final int[] outputPositionBySignature;
  private final MpscArrayQueue<Sample> queue;
  private final AtomicLong queuedBytes = new AtomicLong();
  final LongAdder taken = new LongAdder();
  final LongAdder dropped = new LongAdder();
  final LongAdder oversized = new LongAdder();
  private final int maxSampleBytes;
  private final boolean sampleAll;
  private final long windowNanos;
  // Set while a reference is being captured: then every request is sampled.
  private volatile boolean capturing;
  private volatile boolean closed;

  // ---- monitoring thread only ----
  private final TensorSummary[] window;
  private final TensorSummary[] totals;
  private long windowStartNanos;
  private long windowStartMillis;
  private long windowInputRows;
  private long windowOutputRows;
  private long windowIndex;
  private long summarised;
  private Reference reference;
  private TensorSummary[] capture;
  private long captureTarget;
  private long captureRows;
  private String captureSource;
  private Consumer<Reference> onCaptured = r -> { };

  // ---- published ----
  private volatile ClosedWindow lastWindow;
  private volatile ReferenceInfo referenceInfo = ReferenceInfo.newBuilder().setState("NONE").build();
  private volatile byte[] referenceBytes;
  private volatile long referenceRows;

  /** A closed window: its info, its scores per monitored tensor (layouts order) and feature, flagged features. */
  record ClosedWindow(WindowInfo info, FeatureWindow[][] features, int flagged) {}

  VersionMonitor(String model, long version, int outputsInSignature, List<TensorLayout> layouts, MonitoringConfig config,
      long nowNanos) {
    this.model = model;
    this.version = version;
    this.versionLabel = Long.toString(version);
    this.config = config;
    this.layouts = List.copyOf(layouts);
    this.inputLayouts = layouts.stream().filter(l -> !l.output()).toArray(TensorLayout[]::new);
    this.outputLayouts = layouts.stream().filter(TensorLayout::output).toArray(TensorLayout[]::new);
    this.outputPositionBySignature = new int[outputsInSignature];
    java.util.Arrays.fill(outputPositionBySignature, -1);
    for (TensorLayout l : outputLayouts) {
      outputPositionBySignature[l.signatureIndex()] = l.position();
    }
    this.queue = new MpscArrayQueue<>(config.queueCapacity());
    this.maxSampleBytes = config.maxSampleBytes();
    this.sampleAll = config.sampleRate() >= 1.0;
    this.windowNanos = TimeUnit.SECONDS.toNanos(config.windowSeconds());
    this.window = new TensorSummary[layouts.size()];
    this.totals = new TensorSummary[layouts.size()];
    for (int i = 0; i < layouts.size(); i++) {
      window[i] = new TensorSummary(layouts.get(i));
      totals[i] = new TensorSummary(layouts.get(i));
    }
    this.windowStartNanos = nowNanos;
    this.windowStartMillis = System.currentTimeMillis();
  }

  // =============================================================================================
  // Request path

  /**
   * After validation, before the request is submitted: maybe samples its monitored inputs.
   *
   * @param inputs the validated inputs in signature order (null = an absent optional input)
   * @param rows the request's batch size
   */
  public void sampleInputs(Tensor[] inputs, int rows) {
    if (inputLayouts.length == 0 || closed || !sampled()) {
      return;
    }
    Tensor[] tensors = new Tensor[inputLayouts.length];
    for (TensorLayout l : inputLayouts) {
      tensors[l.position()] = inputs[l.signatureIndex()];
    }
    offer(false, tensors, rows);
  }

  /**
   * On success, while the outputs are still valid: maybe samples the monitored outputs returned.
   *
   * @param outputIndices signature positions of {@code outputs}
   */
  public void sampleOutputs(int[] outputIndices, Tensor[] outputs, int rows) {
    if (outputLayouts.length == 0 || closed || !sampled()) {
      return;
    }
    Tensor[] tensors = null;
    for (int j = 0; j < outputs.length && j < outputIndices.length; j++) {
      int position = outputPositionBySignature[outputIndices[j]];
      if (position >= 0) {
        if (tensors == null) {
          tensors = new Tensor[outputLayouts.length];
        }
        tensors[position] = outputs[j];
      }
    }
    if (tensors != null) {
      offer(true, tensors, rows);
    }
  }

  private boolean sampled() {
    return sampleAll || capturing || ThreadLocalRandom.current().nextDouble() < config.sampleRate();
  }

  private void offer(boolean output, Tensor[] tensors, int rows) {
    int[] sizes = new int[tensors.length];
    int total = 0;
    boolean any = false;
    for (int i = 0; i < tensors.length; i++) {
      if (tensors[i] == null) {
        continue;
      }
      int n = Sample.bytesToCopy(tensors[i], rows, maxSampleBytes);
      if (n < 0) {
        oversized.increment();
        continue;
      }
      sizes[i] = n;
      total += n;
      any = true;
    }
    if (!any) {
      return;
    }
    // Reserve before copying: a sample that cannot be queued costs no copy. Released by the consumer.
    if (queuedBytes.addAndGet(total) > config.queueBytes()) {
      queuedBytes.addAndGet(-total);
      dropped.increment();
      return;
    }
    Sample sample = Sample.copy(output, tensors, sizes, total, rows);
    if (!queue.offer(sample)) {
      queuedBytes.addAndGet(-total);
      dropped.increment();
      return;
    }
    taken.increment();
  }

  /** Whether the version is still served; after {@link #close()} samples are refused. */
  boolean isClosed() {
    return closed;
  }

  /** Refuses further samples (the version is unloading). Any thread; idempotent. */
  void close() {
    closed = true;
    capturing = false;
  }

  // =============================================================================================
  // Monitoring thread

  /** Summarises up to {@code max} queued samples; returns how many it took. */
  int drain(int max) {
    int n = 0;
    Sample sample;
    while (n < max && (sample = queue.relaxedPoll()) != null) {
      queuedBytes.addAndGet(-sample.bytes);
      if (!closed) {
        summarise(sample);
      }
      n++;
    }
    return n;
  }

  /** Samples waiting in the queue (approximate). */
  int queued() {
    return queue.size();
  }

  void summarise(Sample sample) {
    TensorLayout[] role = sample.output ? outputLayouts : inputLayouts;
    int offset = sample.output ? inputLayouts.length : 0;
    for (TensorLayout l : role) {
      byte[] data = sample.data[l.position()];
      if (data == null) {
        continue;
      }
      int index = offset + l.position();
      window[index].add(data, sample.elements[l.position()], reference == null ? null : reference.of(l));
      if (capture != null) {
        capture[index].add(data, sample.elements[l.position()], null);
      }
    }
    if (sample.output) {
      windowOutputRows += sample.rows;
    } else {
      windowInputRows += sample.rows;
    }
    summarised++;
    if (capture != null && (!sample.output || inputLayouts.length == 0)) {
      captureRows += sample.rows;
      if (captureRows >= captureTarget) {
        finishCapture();
      }
    }
  }

  /** Rows in the current window: its input rows, or output rows when no input is monitored. */
  long windowRows() {
    return inputLayouts.length > 0 ? windowInputRows : windowOutputRows;
  }

  /** Closes the window if it is at least window_seconds old and holds at least min_window_rows rows. */
  boolean maybeCloseWindow(long nowNanos) {
    if (nowNanos - windowStartNanos < windowNanos || windowRows() < config.minWindowRows()) {
      return false;
    }
    closeWindow(nowNanos);
    return true;
  }

  /** Scores the current window against the reference, publishes the scores, folds it into the totals. */
  void closeWindow(long nowNanos) {
    long endMillis = System.currentTimeMillis();
    FeatureWindow[][] scores = new FeatureWindow[layouts.size()][];
    int flagged = 0;
    for (int i = 0; i < layouts.size(); i++) {
      TensorLayout l = layouts.get(i);
      TensorSummary w = window[i];
      Reference.TensorReference ref = reference == null ? null : reference.of(l);
      scores[i] = new FeatureWindow[l.features()];
      for (int f = 0; f < l.features(); f++) {
        scores[i][f] = w.numeric != null ? Drift.numeric(w.numeric[f], ref, f, config)
            : Drift.categorical(w.categorical[f], ref, f, config);
        if (scores[i][f].getFlagsCount() > 0) {
          flagged++;
        }
      }
    }
    WindowInfo info = WindowInfo.newBuilder().setIndex(++windowIndex).setStartUnixMillis(windowStartMillis)
        .setEndUnixMillis(endMillis).setRows(windowRows()).setScored(reference != null).build();
    lastWindow = new ClosedWindow(info, scores, flagged);
    startWindow(nowNanos, endMillis);
  }

  /** Folds the current window into the totals and starts a new one (no scores published). */
  private void startWindow(long nowNanos, long nowMillis) {
    for (int i = 0; i < layouts.size(); i++) {
      totals[i].merge(window[i]);
      window[i].reset();
    }
    windowInputRows = 0;
    windowOutputRows = 0;
    windowStartNanos = nowNanos;
    windowStartMillis = nowMillis;
  }

  /**
   * Makes {@code ref} the reference; the current window restarts (its out-of-range counts were
   * against the old reference). An ongoing capture is abandoned.
   */
  void installReference(Reference ref, String error) {
    reference = ref;
    referenceBytes = ref.bytes;
    referenceRows = ref.profile.getRows();
    capture = null;
    capturing = false;
    ReferenceProfile p = ref.profile;
    referenceInfo = ReferenceInfo.newBuilder().setState("READY").setSource(p.getSource()).setRows(p.getRows())
        .setCreatedUnixMillis(p.getCreatedUnixMillis()).setError(error == null ? "" : error).build();
    startWindow(System.nanoTime(), System.currentTimeMillis());
  }

  /** Starts capturing a reference from the next {@code rows} sampled rows; the current one scores meanwhile. */
  void startCapture(long rows, Consumer<Reference> whenCaptured) {
    capture = new TensorSummary[layouts.size()];
    for (int i = 0; i < layouts.size(); i++) {
      capture[i] = new TensorSummary(layouts.get(i));
    }
    captureTarget = rows;
    captureRows = 0;
    captureSource = "capture";
    onCaptured = whenCaptured;
    capturing = true;
    publishCaptureState();
  }

  private void publishCaptureState() {
    ReferenceInfo.Builder b = ReferenceInfo.newBuilder().setState("CAPTURING").setSource(captureSource)
        .setRows(captureTarget).setCapturedRows(captureRows);
    ReferenceInfo previous = referenceInfo;
    if (reference != null) {
      b.setCreatedUnixMillis(previous.getCreatedUnixMillis());
    }
    referenceInfo = b.build();
  }

  private void finishCapture() {
    ReferenceProfile profile = profile(capture, captureRows, captureSource, model, version);
    Reference ref = Reference.of(profile, profile.toByteArray(), layouts, config.psiBins());
    Consumer<Reference> done = onCaptured;
    installReference(ref, null);
    done.accept(ref);
  }

  /** Marks the reference as failed (it could not be read, parsed or built); scoring continues with the last good one. */
  void referenceFailed(String error) {
    referenceInfo = referenceInfo.toBuilder().setState(reference == null ? "FAILED" : "READY").setError(error).build();
  }

  /** Marks a reference as being built from a file (or sent requests). */
  void referenceBuilding(String source) {
    ReferenceInfo previous = referenceInfo;
    referenceInfo = previous.toBuilder().setState("BUILDING").setSource(source).setError("").build();
  }

  /** Notes a storage problem of the current reference (it scores; other replicas do not see it). */
  void referenceNote(String error) {
    referenceInfo = referenceInfo.toBuilder().setError(error).build();
  }

  /** The reference profile of some summaries. */
  static ReferenceProfile profile(TensorSummary[] summaries, long rows, String source, String model, long version) {
    ReferenceProfile.Builder b = ReferenceProfile.newBuilder().setFormat(Reference.FORMAT).setModel(model)
        .setVersion(version).setSource(source).setCreatedUnixMillis(System.currentTimeMillis()).setRows(rows);
    for (TensorSummary s : summaries) {
      b.addTensors(s.toProfile());
    }
    return b.build();
  }

  /** The current report: settings, counters, reference, last closed and current window, per-feature details. */
  ModelMonitoringReport report() {
    ModelMonitoringReport.Builder b = ModelMonitoringReport.newBuilder().setModel(model).setVersion(versionLabel)
        .setSettings(config.toProto())
        .setSamples(SampleCounts.newBuilder().setTaken(taken.sum()).setDropped(dropped.sum())
            .setOversized(oversized.sum()).setSummarised(summarised))
        .setReference(capture == null ? referenceInfo : referenceInfo.toBuilder().setCapturedRows(captureRows).build())
        .setCurrentWindow(WindowInfo.newBuilder().setIndex(windowIndex + 1).setStartUnixMillis(windowStartMillis)
            .setRows(windowRows()))
        .setReportUnixMillis(System.currentTimeMillis());
    ClosedWindow closedWindow = lastWindow;
    if (closedWindow != null) {
      b.setWindow(closedWindow.info()).setFlaggedFeatures(closedWindow.flagged());
    } else {
      b.setWindow(WindowInfo.getDefaultInstance());
    }
    for (int i = 0; i < layouts.size(); i++) {
      TensorLayout l = layouts.get(i);
      TensorReport.Builder t = TensorReport.newBuilder().setName(l.name()).setRole(l.role())
          .setDatatype(l.dataType().wireName()).setLayout(l.layoutName());
      TensorSummary all = totals[i].copy();
      all.merge(window[i]);
      Reference.TensorReference ref = reference == null ? null : reference.of(l);
      for (int f = 0; f < l.features(); f++) {
        FeatureReport.Builder fr = FeatureReport.newBuilder().setName(l.featureName(f))
            .setKind(l.categorical() ? "categorical" : "numeric")
            .setTotals(all.numeric != null ? all.numeric[f].toStats() : all.categorical[f].toStats());
        if (ref != null) {
          fr.setReference(ref.stats[f]);
        }
        if (closedWindow != null) {
          fr.setWindow(closedWindow.features()[i][f]);
        }
        t.addFeatures(fr);
      }
      b.addTensors(t);
    }
    return b.build();
  }

  // =============================================================================================
  // Published (any thread)

  /** The last closed window, or null before the first one closed. */
  ClosedWindow lastWindow() {
    return lastWindow;
  }

  ReferenceInfo referenceInfo() {
    return referenceInfo;
  }

  /** The stored bytes of the reference in force, or null. */
  byte[] referenceBytes() {
    return referenceBytes;
  }

  /** Rows of the reference in force (0 = none). */
  long referenceRows() {
    return referenceRows;
  }

  /** The monitored tensors, inputs first. */
  List<TensorLayout> layouts() {
    return layouts;
  }

  /** Checks that a reference could be built for this version now: an InferenceException otherwise. */
  void requireOpen() {
    if (closed) {
      throw InferenceException.unavailable("model '%s' version %d is unloading", model, version);
    }
  }

  @Override
  public String toString() {
    return "VersionMonitor[" + model + "/" + version + " tensors=" + new ArrayList<>(layouts.stream()
        .map(TensorLayout::name).toList()) + "]";
  }
}
