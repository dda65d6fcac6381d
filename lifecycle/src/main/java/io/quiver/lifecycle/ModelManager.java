package io.quiver.lifecycle;

import io.quiver.lifecycle.ModelRoute.Slot;
import io.quiver.lifecycle.ModelVersionStatus.State;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.ModelRepository;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.registry.ModelNames;
import io.quiver.registry.VersionPolicies;
import io.quiver.registry.VersionSelection;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.StringJoiner;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The lifecycle and routing table of loaded model versions (Triton's model lifecycle, TF Serving's
 * manager). The repository says what exists; the version policy says what should serve; the manager
 * loads that on a small pool, publishes it to the routing table once ready, and drains and unloads
 * what is no longer wanted.
 *
 * <h2>Threading</h2>
 * <ul>
 *   <li>{@link #acquire}, {@link #isReady}, {@link #readyVersions}: any thread, the request hot path.
 *       They read an immutable routing table through one volatile field: no locks, and no allocation
 *       except for the exception on a miss.
 *   <li>{@link #start}, {@link #load}, {@link #unload}, {@link #close}: control threads; they block.
 *       Operations on the same model are serialized by a per-model (striped) lock; different models
 *       proceed in parallel. Version loads run on a bounded pool of {@code options.loadThreads()}
 *       threads, never on the caller's or a transport thread. Writers publish a new table copy under
 *       a short table lock (copy-on-write).
 * </ul>
 *
 * <h2>Version lifecycle</h2>
 * LOADING (not routable) → READY (routable) → UNLOADING (unroutable; waits for requests holding a
 * {@link LoadedVersion}, then closes the scheduler, which completes what it accepted, then the
 * runners) → gone. A version that fails to load is UNAVAILABLE with its reason; versions already
 * serving stay untouched, and a reload only retires old versions once every selected version is READY.
 */
public final class ModelManager implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ModelManager.class);
  /** Lock stripes for per-model serialization (bounded, unlike a lock per name ever asked for). */
  private static final int LOCK_STRIPES = 64;
  private static final long POOL_SHUTDOWN_WAIT_MS = 10_000;

  private final ModelRepository repository;
  private final List<ModelRuntime> runtimes;
  private final ModelManagerOptions options;
  private final VersionLoader loader;
  private final ThreadPoolExecutor loadPool;
  private final ReentrantLock[] modelLocks = new ReentrantLock[LOCK_STRIPES];
  private final Object tableWriteLock = new Object();
  // The routing table: replaced, never mutated (copy-on-write), so readers need no lock.
  private volatile Map<String, ModelRoute> routes = Map.of();
  // Models the control mode asked for at start and not unloaded since; allReady() is about these.
  private final Set<String> required = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean startCalled = new AtomicBoolean();
  private volatile boolean startFinished;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Map<String, ModelVersionPolicy> policyOverrides = new ConcurrentHashMap<>();
  private final Map<String, TrafficSplit> traffic = new ConcurrentHashMap<>();
  private final List<java.util.function.Consumer<String>> listeners = new java.util.concurrent.CopyOnWriteArrayList<>();

  /**
   * @param runtimes the runtimes to choose from, in order of preference (see {@link #discoverRuntimes()})
   * @param schedulers builds each loaded version's scheduler
   */
  public ModelManager(ModelRepository repository, List<ModelRuntime> runtimes, SchedulerFactory schedulers,
      ModelManagerOptions options) {
    this.repository = java.util.Objects.requireNonNull(repository, "repository");
    this.runtimes = List.copyOf(runtimes);
    this.options = java.util.Objects.requireNonNull(options, "options");
    this.loader = new VersionLoader(this.runtimes, java.util.Objects.requireNonNull(schedulers, "schedulers"));
    for (int i = 0; i < LOCK_STRIPES; i++) {
      modelLocks[i] = new ReentrantLock();
    }
    // Unbounded queue: it only ever holds the versions of loads whose callers are blocked waiting for
    // them, so its length is bounded by the versions the repository holds.
    this.loadPool = new ThreadPoolExecutor(options.loadThreads(), options.loadThreads(), 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), new LoaderThreadFactory());
    this.loadPool.allowCoreThreadTimeOut(true);
  }

  /** The {@link ModelRuntime}s on the class path or module path ({@link ServiceLoader}); a broken provider is logged and skipped. */
  public static List<ModelRuntime> discoverRuntimes() {
    List<ModelRuntime> found = new ArrayList<>();
    Iterator<ModelRuntime> it = ServiceLoader.load(ModelRuntime.class).iterator();
    while (true) {
      try {
        if (!it.hasNext()) {
          break;
        }
        found.add(it.next());
      } catch (ServiceConfigurationError e) {
        log.error("skipping a model runtime that failed to load: {}", e.toString());
      }
    }
    log.info("model runtimes found: {}", found.stream().map(ModelRuntime::name).toList());
    return List.copyOf(found);
  }

  public ModelManagerOptions options() {
    return options;
  }

  public ModelRepository repository() {
    return repository;
  }

  /**
   * Loads models per the control mode: NONE, every model in the repository; EXPLICIT, only
   * {@code options.startupModels()}. Blocks until each load finished or failed; a failed model is
   * recorded (UNAVAILABLE with its reason, logged) and does not stop the others.
   *
   * @throws InferenceException FAILED_PRECONDITION when called twice; UNAVAILABLE after close; what
   *     the repository throws when it cannot be listed
   */
  public void start() {
    ensureOpen();
    if (!startCalled.compareAndSet(false, true)) {
      throw InferenceException.failedPrecondition("model manager already started");
    }
    long t0 = System.nanoTime();
    List<String> names = options.controlMode() != ControlMode.EXPLICIT
        ? repository.modelNames()
        : new ArrayList<>(new TreeSet<>(options.startupModels()));
    required.addAll(names);
    List<ReentrantLock> held = lockAll(names);
    try {
      ensureOpen();
      List<LoadPlan> plans = new ArrayList<>(names.size());
      for (String name : names) {
        plans.add(prepare(name, true));
      }
      int ready = 0;
      for (LoadPlan plan : plans) {
        try {
          finish(plan);
        } catch (InferenceException e) {
          // Recorded in the table and logged by finish(); the other models keep loading.
        }
        ModelRoute route = routes.get(plan.name);
        ready += route != null && route.hasReady() ? 1 : 0;
      }
      log.info("model manager started ({} mode, repository {}): {} of {} models ready in {} ms",
          options.controlMode(), repository.location(), ready, names.size(), millisSince(t0));
    } finally {
      unlock(held);
      startFinished = true;
    }
  }

  /**
   * (Re)loads one model per its version policy, blocking. New versions become routable only once
   * ready; versions no longer selected are drained and unloaded afterwards. A version already READY
   * and declared with the same config is kept as it is; a changed config.pbtxt reloads it (the new
   * copy takes over atomically, the old one drains).
   *
   * @throws InferenceException INVALID_ARGUMENT for an invalid name or config; NOT_FOUND when the
   *     model or every selected version is missing; INTERNAL (or the runtime's code) with the reason
   *     when no version could be loaded; UNAVAILABLE after close
   */
  public void load(String model) {
    ModelNames.requireValid(model);
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      finish(prepare(model, false));
    } finally {
      lock.unlock();
    }
  }

  /**
   * Like {@link #load(String)}, but with {@code policy} in place of the config's version_policy from
   * now on (also for later reloads and polls); null returns to the config's policy.
   */
  public void load(String model, ModelVersionPolicy policy) {
    ModelNames.requireValid(model);
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      if (policy == null) {
        policyOverrides.remove(model);
      } else {
        policyOverrides.put(model, policy);
      }
      finish(prepare(model, false));
    } finally {
      lock.unlock();
    }
  }

  /** The policy given to {@link #load(String, ModelVersionPolicy)}, or null when the config's applies. */
  public ModelVersionPolicy policyOverride(String model) {
    return policyOverrides.get(model);
  }

  /** Whether the model is in the routing table (loaded, loading, or failed with a recorded reason). */
  public boolean isLoaded(String model) {
    return model != null && routes.containsKey(model);
  }

  /** Names of the models in the routing table, sorted. */
  public List<String> loadedModels() {
    return new ArrayList<>(new TreeSet<>(routes.keySet()));
  }

  /**
   * Sets how requests without a version are split among the model's versions, and its labels. Weights
   * of versions not READY are kept and apply once they are. Takes effect atomically for new requests.
   *
   * @throws InferenceException NOT_FOUND when the model is not loaded; INVALID_ARGUMENT for bad weights
   */
  public void setTraffic(String model, TrafficSplit split) {
    ModelNames.requireValid(model);
    java.util.Objects.requireNonNull(split, "split");
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(model);
      if (current == null) {
        throw InferenceException.notFound("model '%s' is not loaded", model);
      }
      if (split.isEmpty()) {
        traffic.remove(model);
      } else {
        traffic.put(model, split);
      }
      publish(model, current);
    }
    log.info("model '{}' traffic: weights {} labels {}", model, split.weights(), split.labels());
  }

  /** The model's traffic settings ({@link TrafficSplit#NONE} when none are set). */
  public TrafficSplit traffic(String model) {
    TrafficSplit split = model == null ? null : traffic.get(model);
    return split == null ? TrafficSplit.NONE : split;
  }

  /**
   * Adds a listener told the name of each model whose versions, states or traffic changed. It is
   * called on the changing thread while the table lock is held: it must be quick, must not block and
   * must not call back into the manager's control methods (reading {@link #index()} is fine).
   */
  public void addListener(java.util.function.Consumer<String> listener) {
    listeners.add(java.util.Objects.requireNonNull(listener));
  }

  public void removeListener(java.util.function.Consumer<String> listener) {
    listeners.remove(listener);
  }

  /** The index rows of one model (see {@link #index()}); empty when it is neither loaded nor in the repository. */
  public List<ModelVersionStatus> status(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    if (route == null) {
      return List.of(new ModelVersionStatus(model, "", State.UNAVAILABLE, "not loaded"));
    }
    if (route.slots.length == 0) {
      return List.of(new ModelVersionStatus(model, "", State.UNAVAILABLE, route.problem));
    }
    List<ModelVersionStatus> out = new ArrayList<>(route.slots.length);
    for (Slot slot : route.slots) {
      out.add(new ModelVersionStatus(model, Long.toString(slot.version()), slot.state(), slot.reason()));
    }
    return out;
  }

  /** The model-level reason recorded for it (e.g. the repository being unreachable), or "". */
  public String problem(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    return route == null ? "" : route.problem;
  }

  /**
   * Unloads every version: stops routing new requests to the model, waits for requests holding its
   * versions (up to {@code options.drainTimeoutMillis()}), closes the schedulers (which complete every
   * accepted request) and then the runners. The model no longer counts for {@link #allReady()}.
   *
   * @throws InferenceException NOT_FOUND when the model is not loaded; INVALID_ARGUMENT for an invalid name
   */
  public void unload(String model) {
    ModelNames.requireValid(model);
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      unloadLocked(model);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Routes a request: version "" (or null) is the highest READY version, anything else that version.
   * The returned version counts the request in flight until the caller calls
   * {@link LoadedVersion#release()}, exactly once. Lock-free; allocates nothing on success.
   *
   * @throws InferenceException NOT_FOUND for an unknown model or version; UNAVAILABLE, naming the
   *     state and reason, for a version that is loading, failed or unloading
   */
  public LoadedVersion acquire(String model, String version) {
    return acquire(model, version, null);
  }

  /**
   * Like {@link #acquire(String, String)}, but a request without a version is routed by the model's
   * traffic weights, the same {@code requestId} always landing on the same version (so retries stick);
   * a null or empty id picks by weight at random. A version may also be a label (stable, canary).
   * Lock-free; allocates nothing on success.
   */
  public LoadedVersion acquire(String model, String version, String requestId) {
    while (true) {
      ModelRoute route = model == null ? null : routes.get(model);
      if (route == null) {
        throw unknownModel(model);
      }
      LoadedVersion target;
      if (version == null || version.isEmpty()) {
        target = route.route(requestId);
        if (target == null) {
          throw InferenceException.unavailable("model '%s' has no ready version: %s", route.name, route.notReadyReason());
        }
      } else {
        long number = parseVersion(version);
        if (number < 0) {
          Long labelled = route.traffic.labels().get(version);
          number = labelled == null ? -1 : labelled;
        }
        Slot slot = number < 0 ? null : route.slot(number);
        if (slot == null) {
          throw InferenceException.notFound("model '%s' has no version '%s' (ready versions: %s)",
              route.name, ModelNames.printable(version), readyVersions(route));
        }
        if (slot.state() != State.READY) {
          throw InferenceException.unavailable("model '%s' version %d is %s%s", route.name, number, slot.state(),
              slot.reason().isEmpty() ? "" : ": " + slot.reason());
        }
        target = slot.loaded();
      }
      if (target.tryRetain()) {
        return target;
      }
      // Retired between our table read and the retain: the table has been replaced since; read it again.
    }
  }

  /** Whether the model (any version, for "" or null) or the given version is READY; false for unknown. Never throws. */
  public boolean isReady(String model, String version) {
    ModelRoute route = model == null ? null : routes.get(model);
    if (route == null) {
      return false;
    }
    if (version == null || version.isEmpty()) {
      return route.hasReady();
    }
    long number = parseVersion(version);
    Slot slot = number < 0 ? null : route.slot(number);
    return slot != null && slot.state() == State.READY;
  }

  /** The READY version numbers of a model, ascending; empty for an unknown model. Allocates the list. */
  public List<Long> readyVersions(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    return route == null ? List.of() : readyVersions(route);
  }

  /**
   * Every model in the repository plus every one in the table, each version with its state and reason,
   * sorted by name then version: Triton's RepositoryIndex. A model with no version to show appears
   * once with version "" (reason "not loaded" when it was never loaded or was unloaded).
   */
  public List<ModelVersionStatus> index() {
    Map<String, ModelRoute> table = routes;
    TreeSet<String> names = new TreeSet<>(table.keySet());
    try {
      names.addAll(repository.modelNames());
    } catch (InferenceException e) {
      log.warn("repository index lists loaded models only: {}", e.getMessage());
    }
    List<ModelVersionStatus> out = new ArrayList<>();
    for (String name : names) {
      ModelRoute route = table.get(name);
      if (route == null) {
        out.add(new ModelVersionStatus(name, "", State.UNAVAILABLE, "not loaded"));
      } else if (route.slots.length == 0) {
        out.add(new ModelVersionStatus(name, "", State.UNAVAILABLE, route.problem));
      } else {
        for (Slot slot : route.slots) {
          out.add(new ModelVersionStatus(name, Long.toString(slot.version()), slot.state(), slot.reason()));
        }
      }
    }
    return out;
  }

  /** True once {@link #start()} has run and every model the control mode asked for (and not unloaded since) is READY. */
  public boolean allReady() {
    if (!startFinished || closed.get()) {
      return false;
    }
    Map<String, ModelRoute> table = routes;
    for (String name : required) {
      ModelRoute route = table.get(name);
      if (route == null || !route.hasReady()) {
        return false;
      }
    }
    return true;
  }

  /** Unloads everything (draining as {@link #unload} does) and stops the load pool. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    long t0 = System.nanoTime();
    List<ReentrantLock> held = lockAll(null);
    try {
      for (String name : new TreeSet<>(routes.keySet())) {
        try {
          unloadLocked(name);
        } catch (RuntimeException e) {
          log.warn("closing model '{}' failed: {}", name, VersionLoader.reason(e));
        }
      }
    } finally {
      unlock(held);
    }
    loadPool.shutdown();
    try {
      if (!loadPool.awaitTermination(POOL_SHUTDOWN_WAIT_MS, TimeUnit.MILLISECONDS)) {
        log.warn("model load threads did not stop within {} ms", POOL_SHUTDOWN_WAIT_MS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.info("model manager closed in {} ms", millisSince(t0));
  }

  // ---------------------------------------------------------------------------------------------
  // Loading: prepare (read the repository, pick versions, mark LOADING, submit) then finish (wait,
  // publish, drain what was replaced). start() prepares every model before finishing any, so the
  // pool loads models in parallel.

  /** What one load of one model is doing; owned by the thread holding the model's lock. */
  private static final class LoadPlan {
    final String name;
    RepositoryModel model;
    VersionSelection selection;
    InferenceException failure;
    final Map<Long, Future<LoadedVersion>> pending = new TreeMap<>();

    LoadPlan(String name) {
      this.name = name;
    }
  }

  /** Caller holds the model's lock. Never throws: failures go into the plan. */
  private LoadPlan prepare(String name, boolean recordMissing) {
    LoadPlan plan = new LoadPlan(name);
    try {
      plan.model = repository.model(name);
      ModelConfig declared = plan.model.declaredConfig();
      ModelVersionPolicy override = policyOverrides.get(name);
      plan.selection = VersionPolicies.select(override != null ? override
          : declared.hasVersionPolicy() ? declared.getVersionPolicy() : null, plan.model.versions());
    } catch (RuntimeException e) {
      plan.failure = asInferenceException(e, "model '" + name + "'");
      if (recordMissing || plan.failure.code() != ErrorCode.NOT_FOUND || routes.containsKey(name)) {
        recordProblem(name, plan.failure.getMessage());
      }
      return plan;
    }
    VersionSelection selection = plan.selection;
    if (selection.isEmpty()) {
      plan.failure = InferenceException.notFound("model '%s' has no version to serve: version_policy %s, versions in %s: %s",
          name, selection.policy(), repository.location(), plan.model.versions());
      recordProblem(name, plan.failure.getMessage());
      return plan;
    }
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(name);
      TreeMap<Long, Slot> slots = slotsOf(current);
      for (long version : selection.selected()) {
        Slot slot = slots.get(version);
        boolean serving = slot != null && slot.state() == State.READY;
        if (serving && slot.loaded().declaredConfig().equals(plan.model.declaredConfig())) {
          continue;
        }
        if (!serving) {
          slots.put(version, Slot.loading(version));
        }
        RepositoryModel model = plan.model;
        plan.pending.put(version, loadPool.submit(() -> loadVersion(model, version)));
      }
      publish(name, new ModelRoute(name, slots.values(), ""));
    }
    return plan;
  }

  private LoadedVersion loadVersion(RepositoryModel model, long version) {
    long t0 = System.nanoTime();
    try {
      LoadedVersion loaded = loader.load(model, version);
      log.info("loaded model '{}' version {} ({}, {} instance(s)) in {} ms: ok", model.name(), version,
          loaded.runtimeName(), loaded.runners().size(), millisSince(t0));
      return loaded;
    } catch (RuntimeException | Error e) {
      log.warn("loading model '{}' version {} failed after {} ms: {}", model.name(), version, millisSince(t0),
          VersionLoader.reason(e));
      throw e;
    }
  }

  /** Caller holds the model's lock. Waits for the plan's loads, publishes, drains what was replaced. */
  private void finish(LoadPlan plan) {
    if (plan.failure != null) {
      log.warn("model '{}' not loaded: {}", plan.name, plan.failure.getMessage());
      throw plan.failure;
    }
    Map<Long, LoadedVersion> loaded = new TreeMap<>();
    Map<Long, Throwable> failed = new TreeMap<>();
    for (Map.Entry<Long, Future<LoadedVersion>> e : plan.pending.entrySet()) {
      try {
        loaded.put(e.getKey(), getUninterruptibly(e.getValue()));
      } catch (ExecutionException ex) {
        failed.put(e.getKey(), ex.getCause());
      }
    }
    VersionSelection selection = plan.selection;
    List<LoadedVersion> retiring = new ArrayList<>();
    synchronized (tableWriteLock) {
      TreeMap<Long, Slot> slots = slotsOf(routes.get(plan.name));
      for (LoadedVersion version : loaded.values()) {
        Slot previous = slots.put(version.version(), Slot.ready(version));
        if (previous != null && previous.loaded() != null) {
          retiring.add(previous.loaded()); // same version reloaded: the new copy takes over, the old one drains
        }
      }
      for (Map.Entry<Long, Throwable> e : failed.entrySet()) {
        Slot previous = slots.get(e.getKey());
        if (previous == null || previous.state() != State.READY) { // a failed reload leaves the serving copy
          slots.put(e.getKey(), Slot.unavailable(e.getKey(), VersionLoader.reason(e.getValue())));
        }
      }
      for (long version : selection.missing()) {
        slots.put(version, Slot.unavailable(version, "version " + version + " is named by version_policy "
            + selection.policy() + " but is not in the repository"));
      }
      boolean everySelectedReady = true;
      for (long version : selection.selected()) {
        Slot slot = slots.get(version);
        everySelectedReady &= slot != null && slot.state() == State.READY;
      }
      for (Iterator<Slot> it = slots.values().iterator(); it.hasNext(); ) {
        Slot slot = it.next();
        long version = slot.version();
        if (selection.selected().contains(version) || selection.missing().contains(version)) {
          continue;
        }
        if (slot.state() != State.READY) {
          it.remove(); // a stale failure record of a version no longer wanted
        } else if (everySelectedReady) {
          retiring.add(slot.loaded()); // no longer selected: stop routing now, drain below
        }
      }
      for (LoadedVersion version : retiring) {
        Slot slot = slots.get(version.version());
        if (slot != null && slot.loaded() == version) {
          slots.put(version.version(), slot.unloading());
        }
      }
      publish(plan.name, new ModelRoute(plan.name, slots.values(), ""));
    }
    drain(plan.name, retiring);

    if (!plan.pending.isEmpty() && loaded.isEmpty()) {
      StringJoiner reasons = new StringJoiner("; ");
      for (Map.Entry<Long, Throwable> e : failed.entrySet()) {
        reasons.add("version " + e.getKey() + ": " + VersionLoader.reason(e.getValue()));
      }
      Throwable first = failed.values().iterator().next();
      log.warn("model '{}' not loaded: {}", plan.name, reasons);
      throw new InferenceException(VersionLoader.code(first),
          "model '" + plan.name + "': no version could be loaded: " + reasons, null, 0L, first);
    }
    if (!failed.isEmpty()) {
      log.warn("model '{}' loaded partly: versions {} failed, {} ready", plan.name, failed.keySet(), readyVersions(plan.name));
    }
  }

  /** Caller holds the model's lock (or all locks, from close). */
  private void unloadLocked(String model) {
    List<LoadedVersion> retiring = new ArrayList<>();
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(model);
      if (current == null) {
        throw InferenceException.notFound("model '%s' is not loaded", model);
      }
      List<Slot> unloading = new ArrayList<>();
      for (Slot slot : current.slots) {
        if (slot.loaded() != null) {
          retiring.add(slot.loaded());
          unloading.add(slot.unloading());
        }
      }
      publish(model, new ModelRoute(model, unloading, ""));
    }
    required.remove(model);
    drain(model, retiring);
    synchronized (tableWriteLock) {
      traffic.remove(model);
      policyOverrides.remove(model);
      publish(model, null);
    }
  }

  /**
   * Retires the versions (they have already left routing), waits for their holders, then closes each
   * scheduler (completing its accepted requests) and its runners, and finally drops their UNLOADING slots.
   */
  private void drain(String model, List<LoadedVersion> versions) {
    if (versions.isEmpty()) {
      return;
    }
    long t0 = System.nanoTime();
    for (LoadedVersion version : versions) {
      version.retire();
    }
    for (LoadedVersion version : versions) {
      int holding = version.inFlight();
      if (!version.awaitDrained(options.drainTimeoutMillis())) {
        log.warn("model '{}' version {}: {} request(s) still hold it after {} ms; closing its scheduler anyway",
            model, version.version(), version.inFlight(), options.drainTimeoutMillis());
      }
      try {
        version.scheduler().close();
      } catch (RuntimeException e) {
        log.warn("model '{}' version {}: closing the scheduler failed: {}", model, version.version(), VersionLoader.reason(e));
      }
      for (int i = version.runners().size() - 1; i >= 0; i--) {
        try {
          version.runners().get(i).close();
        } catch (RuntimeException e) {
          log.warn("model '{}' version {}: closing instance {} failed: {}", model, version.version(), i,
              VersionLoader.reason(e));
        }
      }
      log.info("unloaded model '{}' version {} in {} ms ({} request(s) held it when draining began): ok",
          model, version.version(), millisSince(t0), holding);
    }
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(model);
      if (current != null) {
        Map<LoadedVersion, Boolean> gone = new IdentityHashMap<>();
        versions.forEach(v -> gone.put(v, Boolean.TRUE));
        List<Slot> kept = new ArrayList<>(current.slots.length);
        for (Slot slot : current.slots) {
          if (!(slot.state() == State.UNLOADING && gone.containsKey(slot.loaded()))) {
            kept.add(slot);
          }
        }
        publish(model, new ModelRoute(model, kept, current.problem));
      }
    }
  }

  /** Records a model-level failure; versions already serving are kept. */
  private void recordProblem(String name, String reason) {
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(name);
      TreeMap<Long, Slot> slots = slotsOf(current);
      slots.values().removeIf(slot -> slot.state() == State.UNAVAILABLE || slot.state() == State.LOADING);
      publish(name, new ModelRoute(name, slots.values(), reason));
    }
  }

  /** Caller holds tableWriteLock. {@code route} null removes the model. */
  private void publish(String name, ModelRoute route) {
    Map<String, ModelRoute> next = new HashMap<>(routes);
    if (route == null) {
      next.remove(name);
    } else {
      next.put(name, route.withTraffic(traffic.get(name)));
    }
    routes = Map.copyOf(next); // volatile write: publishes the fully built table to lock-free readers
    for (java.util.function.Consumer<String> listener : listeners) {
      try {
        listener.accept(name);
      } catch (RuntimeException e) {
        log.warn("model listener failed for '{}': {}", name, e.toString());
      }
    }
  }

  private static TreeMap<Long, Slot> slotsOf(ModelRoute route) {
    TreeMap<Long, Slot> slots = new TreeMap<>();
    if (route != null) {
      for (Slot slot : route.slots) {
        slots.put(slot.version(), slot);
      }
    }
    return slots;
  }

  // ---------------------------------------------------------------------------------------------

  private static List<Long> readyVersions(ModelRoute route) {
    List<Long> out = new ArrayList<>(route.slots.length);
    for (Slot slot : route.slots) {
      if (slot.state() == State.READY) {
        out.add(slot.version());
      }
    }
    return out;
  }

  private InferenceException unknownModel(String model) {
    if (closed.get()) {
      return InferenceException.unavailable("model manager is shut down");
    }
    return InferenceException.notFound("unknown model '%s': not in the repository or not loaded",
        model == null ? "" : ModelNames.printable(model));
  }

  /** A request's version string as a number; -1 when it is not a decimal of at most 18 digits. No allocation. */
  static long parseVersion(String version) {
    int n = version.length();
    if (n == 0 || n > 18) {
      return -1;
    }
    long value = 0;
    for (int i = 0; i < n; i++) {
      char c = version.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      value = value * 10 + (c - '0');
    }
    return value;
  }

  private void ensureOpen() {
    if (closed.get()) {
      throw InferenceException.unavailable("model manager is shut down");
    }
  }

  private ReentrantLock lockFor(String model) {
    return modelLocks[(model.hashCode() & 0x7fffffff) % LOCK_STRIPES];
  }

  /** Locks the stripes of {@code models} (all stripes when null) in ascending order, so that no two callers deadlock. */
  private List<ReentrantLock> lockAll(List<String> models) {
    TreeSet<Integer> stripes = new TreeSet<>();
    if (models == null) {
      for (int i = 0; i < LOCK_STRIPES; i++) {
        stripes.add(i);
      }
    } else {
      for (String model : models) {
        stripes.add((model.hashCode() & 0x7fffffff) % LOCK_STRIPES);
      }
    }
    List<ReentrantLock> held = new ArrayList<>(stripes.size());
    for (int stripe : stripes) {
      modelLocks[stripe].lock();
      held.add(modelLocks[stripe]);
    }
    return held;
  }

  private static void unlock(List<ReentrantLock> held) {
    for (int i = held.size() - 1; i >= 0; i--) {
      held.get(i).unlock();
    }
  }

  private static <T> T getUninterruptibly(Future<T> future) throws ExecutionException {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          return future.get();
        } catch (InterruptedException e) {
          // The load must be seen through: abandoning it would leak its runners.
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static InferenceException asInferenceException(RuntimeException e, String what) {
    return e instanceof InferenceException ie ? ie : InferenceException.internal(what + ": " + VersionLoader.reason(e), e);
  }

  private static long millisSince(long startNanos) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
  }

  private static final class LoaderThreadFactory implements ThreadFactory {
    private final AtomicInteger count = new AtomicInteger();

    @Override
    public Thread newThread(Runnable r) {
      Thread t = new Thread(r, "quiver-model-load-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    }
  }
}
