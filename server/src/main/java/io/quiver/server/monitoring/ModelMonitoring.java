package io.quiver.server.monitoring;

import io.quiver.control.grpc.MonitoringReferences;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRepository;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.lifecycle.ModelManager;
import io.quiver.proto.control.v1.SetMonitoringReferenceRequest;
import io.quiver.proto.control.v1.SetMonitoringReferenceResponse;
import io.quiver.proto.monitoring.v1.ModelMonitoringReport;
import io.quiver.registry.WritableModelRepository;
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's model monitoring: the monitors of the loaded, monitored versions, the one monitoring
 * thread that owns their statistics, and an I/O thread for the repository.
 *
 * <p><b>Threads.</b> {@code quiver-monitoring} (an agent in the Agrona sense): drains every monitor's
 * sample queue, closes windows, and runs commands (reports, reference changes) that other threads post
 * to its bounded command queue; it sleeps between rounds for {@value #MIN_SLEEP_MILLIS} to
 * {@value #IDLE_SLEEP_MILLIS} ms, longer the emptier it found the queues (without limit while nothing is
 * monitored), and a posted command wakes it. Nothing on the request path wakes it. {@code quiver-monitoring-io}: reads and writes reference
 * profiles in the repository, builds references from the configured file at load, and every
 * {@value #REFERENCE_POLL_SECONDS} s re-reads each version's stored reference (a conditional read) so
 * that a reference set through another replica takes effect here too.
 *
 * <p>Thread-safe. {@link #close()} stops both threads; idempotent.
 */
public final class ModelMonitoring implements MonitoringReferences, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ModelMonitoring.class);
  /** Name of the stored reference beside each version ({@code <model>/.quiver/<version>/...}). */
  public static final String REFERENCE_ATTACHMENT = "monitoring-reference.pb";
  /**
   * The agent's sleep between rounds adapts to the traffic: every wake-up costs a futex and a context
   * switch (several µs on a VM, far more on a loaded one: docs/benchmarks/monitoring.md), and waking
   * every millisecond cost ≈ 6 µs per request at 1.5k req/s whatever the sample rate. After a round
   * whose fullest queue was more than half full the next sleep is {@value #MIN_SLEEP_MILLIS} ms (no
   * overflow); under an eighth full the sleep doubles, up to {@value #IDLE_SLEEP_MILLIS} ms, so that a
   * round drains a batch of samples rather than a few.
   */
  static final long MIN_SLEEP_MILLIS = 1;
  static final long IDLE_SLEEP_MILLIS = 100;
  static final long REFERENCE_POLL_SECONDS = 30;
  static final int COMMAND_QUEUE = 256;
  private static final long COMMAND_TIMEOUT_SECONDS = 30;

  private final ModelRepository repository;
  private volatile ModelManager models;
  private final Set<VersionMonitor> monitors = ConcurrentHashMap.newKeySet();
  private final Map<VersionMonitor, String> referenceTags = new ConcurrentHashMap<>();
  private final ArrayBlockingQueue<Runnable> commands = new ArrayBlockingQueue<>(COMMAND_QUEUE);
  private final Thread agent;
  private final ScheduledExecutorService ioThread;
  private volatile boolean running = true;
  private final java.util.concurrent.atomic.AtomicBoolean polling = new java.util.concurrent.atomic.AtomicBoolean();

  public ModelMonitoring(ModelRepository repository) {
    this.repository = repository;
    this.agent = new Thread(this::runAgent, "quiver-monitoring");
    this.agent.setDaemon(true);
    this.agent.start();
    // The I/O thread starts with the first monitored version (its first task is the reference poll).
    this.ioThread = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "quiver-monitoring-io");
      t.setDaemon(true);
      return t;
    });
  }

  /** Lets reports and reference changes find versions. Call once, before the models start. */
  public void bind(ModelManager manager) {
    this.models = manager;
  }

  /** The monitors of the versions loaded now (for the metrics). */
  Set<VersionMonitor> monitors() {
    return monitors;
  }

  // =============================================================================================
  // Load and unload (model manager's load threads)

  /**
   * Opens the monitor of a version being loaded: reads its stored reference (blocking I/O, on the load
   * thread); without one, builds one from {@code reference_file} (on the I/O thread) or captures one
   * from live traffic ({@code reference_rows}).
   */
  VersionMonitor open(String model, long version, ModelSignature signature, List<TensorLayout> layouts,
      MonitoringConfig config, InferenceScheduler scheduler) {
    VersionMonitor monitor = new VersionMonitor(model, version, signature.outputs().size(), layouts, config,
        System.nanoTime());
    if (polling.compareAndSet(false, true)) {
      ioThread.scheduleWithFixedDelay(this::pollReferences, REFERENCE_POLL_SECONDS, REFERENCE_POLL_SECONDS, TimeUnit.SECONDS);
    }
    // The monitor is not yet visible to the agent: set up its reference directly.
    Reference stored = null;
    String problem = null;
    try {
      WritableModelRepository.StoredObject object = readReference(model, version, null);
      if (object != null) {
        referenceTags.put(monitor, object.tag());
        if (object.bytes() != null) {
          stored = Reference.parse(object.bytes(), layouts, config.psiBins());
        }
      }
    } catch (InferenceException e) {
      problem = "stored reference unusable: " + e.getMessage();
      log.warn("model '{}' version {}: {}", model, version, problem);
    }
    if (stored != null) {
      monitor.installReference(stored, null);
    } else if (problem != null) {
      monitor.referenceFailed(problem);
    } else if (!config.referenceFile().isEmpty()) {
      String source = "file:" + config.referenceFile();
      monitor.referenceBuilding(source);
      ioThread.execute(() -> buildAtLoad(monitor, signature, scheduler, source));
    } else if (config.referenceRows() > 0) {
      monitor.startCapture(config.referenceRows(), ref -> store(monitor, ref));
    }
    monitors.add(monitor);
    try {
      post(() -> { }); // wakes the agent, which sleeps without limit while no version is monitored
    } catch (InferenceException busy) {
      // a busy agent is awake anyway
    }
    log.info("model '{}' version {}: monitoring {} tensor(s) at sample rate {}, window {} s, reference {}", model, version,
        layouts.size(), config.sampleRate(), config.windowSeconds(), monitor.referenceInfo().getState());
    return monitor;
  }

  /** The version unloads: its monitor refuses samples and leaves the agent's set. */
  void closeMonitor(VersionMonitor monitor) {
    monitor.close();
    monitors.remove(monitor);
    referenceTags.remove(monitor);
  }

  private void buildAtLoad(VersionMonitor monitor, ModelSignature signature, InferenceScheduler scheduler, String source) {
    try {
      Path file = versionFile(monitor.model, monitor.version, monitor.config.referenceFile());
      Reference ref;
      synchronized (monitor) {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
          ref = ReferenceBuilder.build(monitor, signature, scheduler, in, source);
        }
      }
      String error = writeReference(monitor, ref);
      call(() -> {
        monitor.installReference(ref, error);
        return null;
      });
      log.info("model '{}' version {}: monitoring reference built from {} ({} rows)", monitor.model, monitor.version,
          source, ref.profile.getRows());
    } catch (RuntimeException | IOException e) {
      String message = e instanceof InferenceException ? e.getMessage() : e.toString();
      log.warn("model '{}' version {}: monitoring reference not built from {}: {}", monitor.model, monitor.version,
          source, message);
      post(() -> monitor.referenceFailed(message));
    }
  }

  // =============================================================================================
  // Reports (any thread; answered from the monitoring thread)

  /**
   * The report of a monitored version, built on the monitoring thread.
   *
   * @param version a version number, a traffic label, or "" for the routed version
   * @throws InferenceException NOT_FOUND / UNAVAILABLE (as for inference), FAILED_PRECONDITION when the
   *     version is not monitored, UNAVAILABLE when the monitoring thread's queue is full
   */
  public CompletableFuture<ModelMonitoringReport> report(String model, String version) {
    VersionMonitor monitor = monitorOf(model, version);
    CompletableFuture<ModelMonitoringReport> result = new CompletableFuture<>();
    post(() -> {
      try {
        result.complete(monitor.report());
      } catch (RuntimeException e) {
        result.completeExceptionally(e);
      }
    });
    return result;
  }

  private VersionMonitor monitorOf(String model, String version) {
    ModelManager m = requireModels();
    LoadedVersion loaded = m.acquire(model, version);
    try {
      return monitorOf(loaded);
    } finally {
      loaded.release();
    }
  }

  private static VersionMonitor monitorOf(LoadedVersion loaded) {
    VersionMonitor monitor = MonitoredScheduler.monitorOf(loaded.scheduler());
    if (monitor == null) {
      throw InferenceException.failedPrecondition("model '%s' version %d is not monitored; set parameters { key:"
          + " \"%s\" value { string_value: \"true\" } } in its config.pbtxt", loaded.name(), loaded.version(),
          MonitoringConfig.ENABLED);
    }
    return monitor;
  }

  private ModelManager requireModels() {
    ModelManager m = models;
    if (m == null) {
      throw InferenceException.unavailable("the server is starting");
    }
    return m;
  }

  // =============================================================================================
  // Reference changes (control plane)

  @Override
  public SetMonitoringReferenceResponse setReference(SetMonitoringReferenceRequest request) {
    io.quiver.registry.ModelNames.requireValid(request.getName());
    if (request.getVersion().length() > 64) {
      throw InferenceException.invalidField("version", "version must be a number or a traffic label of at most 64"
          + " characters; was %d characters", request.getVersion().length());
    }
    LoadedVersion loaded = requireModels().acquire(request.getName(), request.getVersion());
    try {
      VersionMonitor monitor = monitorOf(loaded);
      SetMonitoringReferenceResponse.Builder response = SetMonitoringReferenceResponse.newBuilder()
          .setName(monitor.model).setVersion(monitor.version);
      switch (request.getSourceCase()) {
        case CAPTURE_ROWS -> {
          long rows = Integer.toUnsignedLong(request.getCaptureRows());
          if (rows < 1 || rows > 10_000_000) {
            throw InferenceException.invalidField("capture_rows", "capture_rows must be between 1 and 10000000; was %d", rows);
          }
          call(() -> {
            monitor.startCapture(rows, ref -> store(monitor, ref));
            return null;
          });
          return response.setState("CAPTURING").setRows(rows).setSource("capture").build();
        }
        case REQUESTS_JSONL -> {
          Reference ref = buildAndStore(monitor, loaded, new ByteArrayInputStream(request.getRequestsJsonl().toByteArray()),
              "control-plane");
          return response.setState("READY").setRows(ref.profile.getRows()).setSource(ref.profile.getSource()).build();
        }
        case VERSION_FILE -> {
          String relative = request.getVersionFile();
          if (!MonitoringConfig.isSafeRelativePath(relative)) {
            throw InferenceException.invalidField("version_file", "version_file must be a relative path inside the version"
                + " directory ('/'-separated, no '..', '.' or empty segments); was '%s'",
                io.quiver.registry.ModelNames.printable(relative));
          }
          Path file = versionFile(monitor.model, monitor.version, relative);
          Reference ref;
          try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
            ref = buildAndStore(monitor, loaded, in, "file:" + relative);
          } catch (IOException e) {
            throw InferenceException.internal("cannot read " + file + ": " + e, e);
          }
          return response.setState("READY").setRows(ref.profile.getRows()).setSource(ref.profile.getSource()).build();
        }
        default -> throw InferenceException.invalidField("source",
            "the request needs a source: requests_jsonl, version_file or capture_rows");
      }
    } finally {
      loaded.release();
    }
  }

  /** Builds a reference (one build per version at a time), stores it (a failure to store fails the call), installs it. */
  private Reference buildAndStore(VersionMonitor monitor, LoadedVersion loaded, InputStream jsonl, String source) {
    Reference ref;
    synchronized (monitor) {
      post(() -> monitor.referenceBuilding(source));
      try {
        ref = ReferenceBuilder.build(monitor, loaded.signature(), loaded.scheduler(), jsonl, source);
      } catch (RuntimeException e) {
        String message = e.getMessage();
        post(() -> monitor.referenceFailed("not built from " + source + ": " + message));
        throw e;
      }
      if (repository instanceof WritableModelRepository writable) {
        try {
          writable.writeVersionAttachment(monitor.model, monitor.version, REFERENCE_ATTACHMENT, ref.bytes);
        } catch (InferenceException e) {
          post(() -> monitor.referenceFailed("not stored: " + e.getMessage()));
          throw e;
        }
      }
    }
    call(() -> {
      monitor.installReference(ref, repository instanceof WritableModelRepository ? null
          : "the repository is read-only: this reference lives in this server only");
      return null;
    });
    log.info("model '{}' version {}: monitoring reference replaced from {} ({} rows)", monitor.model, monitor.version,
        source, ref.profile.getRows());
    return ref;
  }

  /** A captured reference: stored on the I/O thread; a failure is noted on the reference, which scores anyway. */
  private void store(VersionMonitor monitor, Reference ref) {
    ioThread.execute(() -> {
      String error = writeReference(monitor, ref);
      log.info("model '{}' version {}: monitoring reference captured ({} rows){}", monitor.model, monitor.version,
          ref.profile.getRows(), error == null ? "" : "; " + error);
      if (error != null) {
        post(() -> monitor.referenceNote(error));
      }
    });
  }

  /** Writes a reference beside its version; returns null, or why it was not stored. */
  private String writeReference(VersionMonitor monitor, Reference ref) {
    if (!(repository instanceof WritableModelRepository writable)) {
      return "the repository is read-only: this reference lives in this server only";
    }
    try {
      writable.writeVersionAttachment(monitor.model, monitor.version, REFERENCE_ATTACHMENT, ref.bytes);
      return null;
    } catch (InferenceException e) {
      log.warn("model '{}' version {}: monitoring reference not stored: {}", monitor.model, monitor.version, e.getMessage());
      return "not stored in the repository: " + e.getMessage();
    }
  }

  private WritableModelRepository.StoredObject readReference(String model, long version, String knownTag) {
    if (!(repository instanceof WritableModelRepository writable)) {
      return null;
    }
    return writable.readVersionAttachment(model, version, REFERENCE_ATTACHMENT, knownTag);
  }

  /** A file inside a version's directory (fetched into the cache for S3), refusing anything outside it. */
  private Path versionFile(String model, long version, String relative) {
    Path dir = repository.model(model).versionDirectory(version).toAbsolutePath().normalize();
    Path file = dir.resolve(relative).normalize();
    if (!file.startsWith(dir) || !Files.isRegularFile(file)) {
      throw InferenceException.notFound("model '%s' version %d has no file '%s'", model, version,
          io.quiver.registry.ModelNames.printable(relative));
    }
    return file;
  }

  /** I/O thread: picks up references other replicas (or operators) stored since the last read. */
  private void pollReferences() {
    for (VersionMonitor monitor : monitors) {
      if (monitor.isClosed()) {
        continue;
      }
      try {
        WritableModelRepository.StoredObject object = readReference(monitor.model, monitor.version,
            referenceTags.get(monitor));
        if (object == null) {
          continue;
        }
        referenceTags.put(monitor, object.tag());
        if (object.bytes() == null || Arrays.equals(object.bytes(), monitor.referenceBytes())) {
          continue;
        }
        Reference ref = Reference.parse(object.bytes(), monitor.layouts(), monitor.config.psiBins());
        post(() -> monitor.installReference(ref, null));
        log.info("model '{}' version {}: monitoring reference changed in the repository ({} rows, from {})",
            monitor.model, monitor.version, ref.profile.getRows(), ref.profile.getSource());
      } catch (RuntimeException e) {
        String message = e.getMessage();
        log.warn("model '{}' version {}: stored monitoring reference not read: {}", monitor.model, monitor.version, message);
        try {
          post(() -> monitor.referenceNote("stored reference not read: " + message));
        } catch (InferenceException busy) {
          // noted next time
        }
      }
    }
  }

  // =============================================================================================
  // The agent

  /** Hands a command to the monitoring thread; never blocks. */
  private void post(Runnable command) {
    if (!running || !commands.offer(command)) {
      throw InferenceException.unavailable("the monitoring thread is %s", running ? "busy; retry" : "stopped");
    }
  }

  /** Runs a command on the monitoring thread and waits for it (control and I/O threads only). */
  private <T> T call(Supplier<T> command) {
    CompletableFuture<T> result = new CompletableFuture<>();
    post(() -> {
      try {
        result.complete(command.get());
      } catch (RuntimeException e) {
        result.completeExceptionally(e);
      }
    });
    try {
      return result.get(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
    } catch (TimeoutException e) {
      throw InferenceException.unavailable("the monitoring thread did not answer within %d s", COMMAND_TIMEOUT_SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw InferenceException.unavailable("interrupted");
    }
  }

  private void runAgent() {
    long sleep = MIN_SLEEP_MILLIS;
    while (running) {
      Runnable command;
      try {
        command = commands.poll(sleep, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        break;
      }
      double fullest = 0;
      while (command != null) {
        try {
          command.run();
        } catch (RuntimeException e) {
          log.warn("monitoring command failed", e);
        }
        command = commands.poll();
      }
      long now = System.nanoTime();
      for (VersionMonitor monitor : monitors) {
        try {
          int drained = monitor.drain(monitor.config.queueCapacity());
          fullest = Math.max(fullest, (double) drained / monitor.config.queueCapacity());
          monitor.maybeCloseWindow(now);
        } catch (RuntimeException e) {
          log.warn("monitoring of model '{}' version {} failed", monitor.model, monitor.version, e);
        }
      }
      // Nothing monitored: no wake-ups at all until a command (open() posts one) arrives.
      if (monitors.isEmpty()) {
        sleep = TimeUnit.HOURS.toMillis(1);
      } else if (fullest > 0.5) {
        sleep = MIN_SLEEP_MILLIS;
      } else if (fullest < 0.125) {
        sleep = Math.max(MIN_SLEEP_MILLIS, Math.min(IDLE_SLEEP_MILLIS, sleep * 2));
      }
    }
  }

  @Override
  public void close() {
    if (!running) {
      return;
    }
    running = false;
    agent.interrupt();
    ioThread.shutdownNow();
    try {
      agent.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
