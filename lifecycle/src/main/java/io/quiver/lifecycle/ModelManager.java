package io.quiver.lifecycle;

import io.quiver.lifecycle.LifecycleListener.EvictionCause;
import io.quiver.lifecycle.LoadResult.Change;
import io.quiver.lifecycle.LoadResult.VersionChange;
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
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
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
 * what is no longer wanted. Under a memory budget it accounts what each loaded version costs
 * ({@link VersionMemory}) and evicts the least recently used unpinned models to make room; models
 * that are not resident but may serve (every model in {@link ControlMode#LAZY}, evicted ones in any
 * mode) load when a request asks for them ({@link #tryAcquire}, {@link #awaitResident}).
 *
 * <h2>Threading</h2>
 * <ul>
 *   <li>{@link #acquire}, {@link #tryAcquire}, {@link #isReady}, {@link #readyVersions}: any thread, the
 *       request hot path. They read an immutable routing table through one volatile field: no locks,
 *       and no allocation except for the exception on a miss. {@link #awaitResident} never blocks.
 *   <li>{@link #start}, {@link #load}, {@link #unload}, {@link #close}: control threads; they block.
 *       Operations on the same model are serialized by a per-model (striped) lock; different models
 *       proceed in parallel. Version loads run on a bounded pool of {@code options.loadThreads()}
 *       threads, never on the caller's or a transport thread. Writers publish a new table copy under
 *       a short table lock (copy-on-write). An eviction takes its victim's lock only if it is free
 *       ({@code tryLock}): a load never waits for another model's lock, so loads evicting each other's
 *       models cannot deadlock.
 * </ul>
 *
 * <h2>Version lifecycle</h2>
 * LOADING (not routable) → READY (routable) → UNLOADING (unroutable; waits for requests holding a
 * {@link LoadedVersion}, then closes the scheduler, which completes what it accepted, then the
 * runners) → gone. A version that fails to load is UNAVAILABLE with its reason; versions already
 * serving stay untouched, and a reload only retires old versions once every selected version is READY.
 *
 * <h2>Evictions and the acquire/evict race</h2>
 * An eviction first takes the victim out of the routing table (its versions UNLOADING), then retires
 * each version and waits for the requests holding it ({@link LoadedVersion#tryRetain} and
 * {@link LoadedVersion#retire} pair like Dekker's flags): a request that retained the version before
 * it was retired is drained, i.e. served; one that read the old table but retained too late reads the
 * table again, finds the model not resident, and parks for a reload. No request can run on a version
 * whose instances are closing, and none fails because of an eviction. Victims are chosen among models
 * whose every version is READY (none loading or leaving), unpinned, idle ones before busy ones, least
 * recently acquired first.
 */
public final class ModelManager implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ModelManager.class);
  /** One audit line per eviction, beside the control plane's lines for operators' operations. */
  private static final Logger audit = LoggerFactory.getLogger("io.quiver.control.audit");
  /** Lock stripes for per-model serialization (bounded, unlike a lock per name ever asked for). */
  private static final int LOCK_STRIPES = 64;
  private static final long POOL_SHUTDOWN_WAIT_MS = 10_000;
  /** A model whose on-demand load failed is tried again by requests only after this long. */
  static final long ON_DEMAND_RETRY_NANOS = TimeUnit.SECONDS.toNanos(5);
  /** {@link InferenceException#field()} of a load refused for lack of room in the memory budget. */
  static final String BUDGET_FIELD = "memory_budget";
  /** How long a load waits for room when nothing can be evicted at once (others are loading or leaving). */
  private static final long ROOM_WAIT_SLICE_MILLIS = 50;

  private final ModelRepository repository;
  private final List<ModelRuntime> runtimes;
  private final ModelManagerOptions options;
  private final VersionLoader loader;
  private final ThreadPoolExecutor loadPool;
  private final ReentrantLock[] modelLocks = new ReentrantLock[LOCK_STRIPES];
  private final Object tableWriteLock = new Object();
  // The routing table: replaced, never mutated (copy-on-write), so readers need no lock.
  private volatile Map<String, ModelRoute> routes = Map.of();
  // Models the control mode asked for at start and not unloaded or evicted since; allReady() is about these.
  private final Set<String> required = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean startCalled = new AtomicBoolean();
  private volatile boolean startFinished;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Map<String, ModelVersionPolicy> policyOverrides = new ConcurrentHashMap<>();
  private final Map<String, TrafficSplit> traffic = new ConcurrentHashMap<>();
  private final List<java.util.function.Consumer<String>> listeners = new java.util.concurrent.CopyOnWriteArrayList<>();

  // Memory and on-demand loading.
  private final MemoryBudget budget;
  private final OnDemandLoader onDemand;
  private final Set<String> optionPinned;
  private final Set<String> desiredPinned = ConcurrentHashMap.newKeySet();
  // The repository's model names as last listed (start, index(), refreshKnownModels()): LAZY mode's "known".
  private volatile Set<String> known = Set.of();
  // Models an operator unloaded (the desired state): never loaded on demand.
  private final Set<String> operatorUnloaded = ConcurrentHashMap.newKeySet();
  // Models evicted (or left out at start) under the budget: not resident, loaded on demand; value = why.
  private final Map<String, String> evicted = new ConcurrentHashMap<>();
  // What earlier loads of each version learned (completed config, cost), for its next load of the same files.
  private final VersionHistory history = new VersionHistory();
  private final Map<String, Long> failedAtNanos = new ConcurrentHashMap<>();
  private final Set<String> evictionClaims = new HashSet<>(); // guarded by budget's monitor
  private volatile LifecycleListener listener = LifecycleListener.NONE;

  /**
   * @param runtimes the runtimes to choose from, in order of preference (see {@link #discoverRuntimes()})
   * @param schedulers builds each loaded version's scheduler
   */
  public ModelManager(ModelRepository repository, List<ModelRuntime> runtimes, SchedulerFactory schedulers,
      ModelManagerOptions options) {
    this.repository = java.util.Objects.requireNonNull(repository, "repository");
    this.runtimes = List.copyOf(runtimes);
    this.options = java.util.Objects.requireNonNull(options, "options");
    this.budget = new MemoryBudget(options.memoryBudgetBytes());
    // With a budget every load's resident growth must be attributable to it: measured sections run one at a time.
    this.loader = new VersionLoader(this.runtimes, java.util.Objects.requireNonNull(schedulers, "schedulers"),
        new MemoryMeter(budget.enabled()), history);
    this.optionPinned = Set.copyOf(options.pinnedModels());
    for (int i = 0; i < LOCK_STRIPES; i++) {
      modelLocks[i] = new ReentrantLock();
    }
    // Unbounded queue: it only ever holds the versions of loads whose callers are blocked waiting for
    // them, so its length is bounded by the versions the repository holds.
    this.loadPool = new ThreadPoolExecutor(options.loadThreads(), options.loadThreads(), 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), new LoaderThreadFactory());
    this.loadPool.allowCoreThreadTimeOut(true);
    this.onDemand = new OnDemandLoader(this, options.loadThreads(), options.onDemandQueueLimit());
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

  /** Sets who is told about on-demand loads and evictions (metrics); replaces the previous one. */
  public void setListener(LifecycleListener listener) {
    this.listener = listener == null ? LifecycleListener.NONE : listener;
  }

  LifecycleListener listener() {
    return listener;
  }

  /**
   * Loads models per the control mode: NONE and POLL, every model in the repository; EXPLICIT, only
   * {@code options.startupModels()}; LAZY, only the pinned models and {@code options.startupModels()}.
   * Models an operator unloaded ({@link #setOperatorUnloaded}) are left out. Blocks until each load
   * finished or failed; a failed model is recorded (UNAVAILABLE with its reason, logged) and does not
   * stop the others. Under a memory budget nothing is evicted at start: a model that does not fit
   * beside those loaded before it is left out, not resident, and loads on its first request.
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
    List<String> listed = repository.modelNames();
    known = Set.copyOf(listed);
    TreeSet<String> wanted = switch (options.controlMode()) {
      case NONE, POLL -> new TreeSet<>(listed);
      case EXPLICIT -> new TreeSet<>(options.startupModels());
      case LAZY -> {
        TreeSet<String> pinnedAndNamed = new TreeSet<>(options.startupModels());
        pinnedAndNamed.addAll(optionPinned);
        pinnedAndNamed.addAll(desiredPinned);
        yield pinnedAndNamed;
      }
    };
    wanted.removeAll(operatorUnloaded);
    List<String> names = new ArrayList<>(wanted);
    // Ensembles load after the models their steps call (which load with them in explicit and lazy mode).
    List<List<String>> waves = EnsembleVersions.loadWaves(repository, names);
    List<String> loading = new ArrayList<>();
    waves.forEach(loading::addAll);
    required.addAll(loading);
    List<ReentrantLock> held = lockAll(loading);
    try {
      ensureOpen();
      int ready = 0;
      for (List<String> wave : waves) {
        List<LoadPlan> plans = new ArrayList<>(wave.size());
        for (String name : wave) {
          plans.add(prepare(name, true, true));
        }
        for (LoadPlan plan : plans) {
          try {
            finish(plan);
          } catch (InferenceException e) {
            // Recorded in the table and logged by finish(); the other models keep loading.
          }
          ModelRoute route = routes.get(plan.name);
          ready += route != null && route.hasReady() ? 1 : 0;
        }
      }
      rebalanceAfterStart();
      log.info("model manager started ({} mode, repository {}{}): {} of {} models ready in {} ms{}",
          options.controlMode(), repository.location(),
          budget.enabled() ? ", memory budget " + VersionMemory.human(budget.limit) : "", ready, loading.size(),
          millisSince(t0), options.controlMode() == ControlMode.LAZY
              ? "; " + listed.size() + " model(s) in the repository load on their first request" : "");
    } finally {
      unlock(held);
      startFinished = true;
    }
  }

  /**
   * (Re)loads one model per its version policy, blocking. New versions become routable only once
   * ready; versions no longer selected are drained and unloaded afterwards. A version already READY
   * is read again: when its config.pbtxt or its files changed (see {@link VersionFiles}) it is reloaded
   * (the new copy takes over atomically, the old one drains), as Triton does; otherwise it is kept.
   * Under a memory budget, room is made first by evicting the least recently used unpinned models.
   *
   * @return what happened to each version
   * @throws InferenceException INVALID_ARGUMENT for an invalid name or config; NOT_FOUND when the
   *     model or every selected version is missing; FAILED_PRECONDITION when the model alone needs more
   *     than the memory budget; RESOURCE_EXHAUSTED when the budget is held by models that cannot be
   *     evicted; INTERNAL (or the runtime's code) with the reason when no version could be loaded;
   *     UNAVAILABLE after close
   */
  public LoadResult load(String model) {
    ModelNames.requireValid(model);
    loadStepModels(model, new java.util.HashSet<>());
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      return finish(prepare(model, false, false));
    } finally {
      lock.unlock();
    }
  }

  /**
   * Like {@link #load(String)}, but with {@code policy} in place of the config's version_policy from
   * now on (also for later reloads and polls); null returns to the config's policy.
   */
  public LoadResult load(String model, ModelVersionPolicy policy) {
    ModelNames.requireValid(model);
    loadStepModels(model, new java.util.HashSet<>());
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      setPolicyOverride(model, policy);
      return finish(prepare(model, false, false));
    } finally {
      lock.unlock();
    }
  }

  /**
   * The load a request asked for (from {@link OnDemandLoader}): nothing when the model is already
   * resident, else {@link #load(String)}.
   *
   * @return whether a load ran
   */
  boolean loadOnDemand(String model) {
    if (!isReady(model, "")) {
      loadStepModels(model, new java.util.HashSet<>()); // an ensemble's steps first, outside its lock
    }
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      ModelRoute route = routes.get(model);
      if (route != null && route.hasReady()) {
        return false;
      }
      if (!loadsOnDemand(model)) {
        throw InferenceException.unavailable("model '%s' is not loaded (it was unloaded while requests waited for it)",
            model);
      }
      finish(prepare(model, false, false));
      return true;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Loads one model, blocking, from {@code source} instead of the repository's entry: Triton's
   * RepositoryModelLoad with a {@code config} override (the repository's files, another config) or with
   * {@code file:} contents (files staged by the caller). Every version the source's policy selects is
   * loaded anew, even one already serving with the same config, and takes over as a reload does. Only this
   * load uses the source: a later {@link #load(String)} (or a poll) reads the repository again.
   *
   * @throws InferenceException as {@link #load(String)}
   */
  public void load(String model, RepositoryModel source) {
    ModelNames.requireValid(model);
    java.util.Objects.requireNonNull(source, "source");
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      ensureOpen();
      finish(prepare(model, false, false, source));
    } finally {
      lock.unlock();
    }
  }

  /** Sets the version policy used from the next load on, without loading; null returns to the config's. */
  public void setPolicyOverride(String model, ModelVersionPolicy policy) {
    ModelNames.requireValid(model);
    if (policy == null) {
      policyOverrides.remove(model);
    } else {
      policyOverrides.put(model, policy);
    }
  }

  /**
   * For an ensemble: loads the models its steps call (transitively) that have no READY version, before
   * the ensemble and outside any model lock, as Triton loads an ensemble's composing models with it. A
   * step model that fails to load is logged; the ensemble's own load then fails naming that step.
   */
  private void loadStepModels(String model, java.util.Set<String> visited) {
    if (!visited.add(model)) {
      return;
    }
    for (String step : EnsembleVersions.stepModels(repository, model)) {
      if (isReady(step, "") || visited.contains(step) || ModelNames.problem(step) != null) {
        continue;
      }
      loadStepModels(step, visited);
      ReentrantLock lock = lockFor(step);
      lock.lock();
      try {
        ensureOpen();
        finish(prepare(step, false, false));
      } catch (InferenceException e) {
        log.warn("model '{}' (a step of ensemble '{}') did not load: {}", step, model, e.getMessage());
      } finally {
        lock.unlock();
      }
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

  // ---------------------------------------------------------------------------------------------
  // Memory, pins and on-demand loading

  /**
   * Records an operator's unload (true) or load (false) from the desired state: an unloaded model is
   * never loaded on demand, and start leaves it out. Does not load or unload anything itself.
   */
  public void setOperatorUnloaded(String model, boolean unloaded) {
    ModelNames.requireValid(model);
    if (unloaded) {
      operatorUnloaded.add(model);
      evicted.remove(model);
    } else {
      operatorUnloaded.remove(model);
    }
  }

  /** Pins (from the desired state) or unpins a model; {@code --pin-model} pins cannot be undone here. */
  public void setPinned(String model, boolean pinned) {
    ModelNames.requireValid(model);
    if (pinned) {
      desiredPinned.add(model);
    } else {
      desiredPinned.remove(model);
    }
  }

  /** Whether the model is never evicted: pinned by option, by the desired state, or by its config's {@code quiver.pinned}. */
  public boolean isPinned(String model) {
    if (model == null) {
      return false;
    }
    if (optionPinned.contains(model) || desiredPinned.contains(model)) {
      return true;
    }
    ModelRoute route = routes.get(model);
    if (route != null) {
      for (Slot slot : route.slots) {
        if (slot.loaded() != null && slot.loaded().pinnedByConfig()) {
          return true;
        }
      }
    }
    return false;
  }

  /** Lists the repository again: in LAZY mode, models added since become loadable on demand. */
  public void refreshKnownModels() {
    known = Set.copyOf(repository.modelNames());
  }

  /**
   * Whether a request for the model, when it is not resident, loads it: in LAZY mode every model the
   * repository listed (and no operator unloaded); in the other modes the models evicted or left out at
   * start under the memory budget. Lock-free.
   */
  public boolean loadsOnDemand(String model) {
    if (model == null || closed.get()) {
      return false;
    }
    if (options.controlMode() == ControlMode.LAZY) {
      return known.contains(model) && !operatorUnloaded.contains(model);
    }
    return evicted.containsKey(model);
  }

  /** Whether the model loads on demand and has no READY version now. */
  public boolean isOnDemandOnly(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    return (route == null || !route.hasReady()) && loadsOnDemand(model);
  }

  /** What each resident version of the model costs (READY and UNLOADING versions), by version; empty when none. */
  public Map<Long, VersionMemory> memory(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    if (route == null) {
      return Map.of();
    }
    Map<Long, VersionMemory> out = new TreeMap<>();
    for (Slot slot : route.slots) {
      if (slot.loaded() != null) {
        out.put(slot.version(), slot.loaded().memory());
      }
    }
    return out;
  }

  /** Bytes held by loaded versions that have not closed yet, all models together. */
  public long memoryUsedBytes() {
    return budget.resident();
  }

  /** The memory budget in bytes, 0 when there is none. */
  public long memoryBudgetBytes() {
    return budget.enabled() ? budget.limit : 0;
  }

  /** Requests waiting for models to load on demand, all models together. */
  public int waitingRequests() {
    return onDemand.waiting();
  }

  /**
   * Sets how requests without a version are split among the model's versions, and its labels. Weights
   * of versions not READY are kept and apply once they are. Takes effect atomically for new requests;
   * for a model that loads on demand, once it loads.
   *
   * @throws InferenceException NOT_FOUND when the model is neither loaded nor loadable on demand;
   *     INVALID_ARGUMENT for bad weights
   */
  public void setTraffic(String model, TrafficSplit split) {
    ModelNames.requireValid(model);
    java.util.Objects.requireNonNull(split, "split");
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(model);
      if (current == null && !loadsOnDemand(model)) {
        throw InferenceException.notFound("model '%s' is not loaded", model);
      }
      if (split.isEmpty()) {
        traffic.remove(model);
      } else {
        traffic.put(model, split);
      }
      if (current != null) {
        publish(model, current);
      }
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

  /** The index rows of one model (see {@link #index()}); one row with version "" when it has no version to show. */
  public List<ModelVersionStatus> status(String model) {
    ModelRoute route = model == null ? null : routes.get(model);
    if (route == null) {
      return List.of(new ModelVersionStatus(model, "", State.UNAVAILABLE, notResidentReason(model)));
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

  /** Why a model has no entry in the routing table. */
  private String notResidentReason(String model) {
    String why = model == null ? null : evicted.get(model);
    if (why != null) {
      return why;
    }
    if (options.controlMode() == ControlMode.LAZY && loadsOnDemand(model)) {
      return "not resident; loads on its first request";
    }
    return "not loaded";
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
      evicted.remove(model);
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
    return acquire(model, version, null, false);
  }

  /**
   * Like {@link #acquire(String, String)}, but a request without a version is routed by the model's
   * traffic weights, the same {@code requestId} always landing on the same version (so retries stick);
   * a null or empty id picks by weight at random. A version may also be a label (stable, canary).
   * Lock-free; allocates nothing on success.
   */
  public LoadedVersion acquire(String model, String version, String requestId) {
    return acquire(model, version, requestId, false);
  }

  /**
   * The request path's acquire: like {@link #acquire(String, String, String)}, but returns null, instead
   * of failing, when the model has no READY version and loads on demand (see {@link #loadsOnDemand}):
   * not resident, being evicted, being loaded, or failed more than a few seconds ago. The caller then
   * parks the request with {@link #awaitResident}. Lock-free; allocates nothing on success or null.
   */
  public LoadedVersion tryAcquire(String model, String version, String requestId) {
    return acquire(model, version, requestId, true);
  }

  /**
   * Parks a request until its model is resident and hands it an acquired version then (or the reason
   * it cannot be served), through {@code waiter}, exactly once. The first request for a model that is
   * not resident starts its one load; requests arriving meanwhile join it. Never blocks.
   *
   * @param deadlineNanos the request's {@link System#nanoTime()} deadline, or {@link io.quiver.core.InferRequest#NO_DEADLINE}
   * @throws InferenceException RESOURCE_EXHAUSTED with a retry hint when the model's waiting queue is
   *     full; DEADLINE_EXCEEDED when the deadline has passed; UNAVAILABLE after close
   */
  public void awaitResident(String model, String version, String requestId, long deadlineNanos, ResidentWaiter waiter) {
    onDemand.park(model, version, requestId, deadlineNanos, waiter);
  }

  private LoadedVersion acquire(String model, String version, String requestId, boolean orNull) {
    while (true) {
      ModelRoute route = model == null ? null : routes.get(model);
      if (route == null) {
        if (loadsOnDemand(model)) {
          if (orNull) {
            return null;
          }
          throw InferenceException.unavailable("model '%s' is not resident; it loads on its first inference request", model);
        }
        throw unknownModel(model);
      }
      LoadedVersion target;
      if (version == null || version.isEmpty()) {
        target = route.route(requestId);
        if (target == null) {
          if (orNull && mayPark(route)) {
            return null;
          }
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
          if (orNull && mayPark(route)) {
            return null;
          }
          throw InferenceException.notFound("model '%s' has no version '%s' (ready versions: %s)",
              route.name, ModelNames.printable(version), readyVersions(route));
        }
        if (slot.state() != State.READY) {
          if (orNull && mayPark(route)) {
            return null;
          }
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

  /**
   * Whether a request finding {@code route} without what it asks for should wait for a load: the
   * model has no READY version, loads on demand, and is loading or leaving, or its last failure is old
   * enough to try again.
   */
  private boolean mayPark(ModelRoute route) {
    if (route.hasReady() || !loadsOnDemand(route.name)) {
      return false;
    }
    for (Slot slot : route.slots) {
      if (slot.state() == State.LOADING || slot.state() == State.UNLOADING) {
        return true;
      }
    }
    Long failed = failedAtNanos.get(route.name);
    return failed == null || System.nanoTime() - failed > ON_DEMAND_RETRY_NANOS;
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
   * once with version "" (reason "not loaded" when it was never loaded or was unloaded; in LAZY mode
   * "not resident; loads on its first request"; for an evicted model, when and why it was evicted).
   */
  public List<ModelVersionStatus> index() {
    Map<String, ModelRoute> table = routes;
    TreeSet<String> names = new TreeSet<>(table.keySet());
    try {
      List<String> listed = repository.modelNames();
      names.addAll(listed);
      known = Set.copyOf(listed);
    } catch (InferenceException e) {
      log.warn("repository index lists loaded models only: {}", e.getMessage());
    }
    List<ModelVersionStatus> out = new ArrayList<>();
    for (String name : names) {
      ModelRoute route = table.get(name);
      if (route == null) {
        out.add(new ModelVersionStatus(name, "", State.UNAVAILABLE, notResidentReason(name)));
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

  /** True once {@link #start()} has run and every model the control mode asked for (and not unloaded or evicted since) is READY. */
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

  /** Fails every waiting request, unloads everything (draining as {@link #unload} does) and stops the load pool. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    long t0 = System.nanoTime();
    onDemand.close();
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
  // Loading: prepare (read the repository, pick versions, read the files of those serving, mark
  // LOADING, submit) then finish (wait, publish, drain what was replaced, keep within the budget).
  // start() prepares every model before finishing any, so the pool loads models in parallel.

  /** What one load of one model is doing; owned by the thread holding the model's lock. */
  private static final class LoadPlan {
    final String name;
    final boolean startup;
    RepositoryModel model;
    VersionSelection selection;
    InferenceException failure;
    final Map<Long, Future<LoadedVersion>> pending = new TreeMap<>();
    final Map<Long, String> reloadReasons = new HashMap<>();
    final Set<Long> unchanged = new TreeSet<>();

    LoadPlan(String name, boolean startup) {
      this.name = name;
      this.startup = startup;
    }
  }

  /**
   * Caller holds the model's lock. Never throws: failures go into the plan.
   *
   * @param startup loads at start: under a budget they take room only where it is free (no eviction)
   */
  private LoadPlan prepare(String name, boolean recordMissing, boolean startup) {
    return prepare(name, recordMissing, startup, null);
  }

  /** @param source the model to load instead of the repository's entry (every selected version reloads), or null */
  private LoadPlan prepare(String name, boolean recordMissing, boolean startup, RepositoryModel source) {
    LoadPlan plan = new LoadPlan(name, startup);
    try {
      plan.model = source != null ? source : repository.model(name);
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
    // Versions serving now are read again (Triton's reload of changed files): only this thread changes
    // this model's table entry, so reading it outside the table lock is safe.
    ModelRoute serving = routes.get(name);
    for (long version : selection.selected()) {
      Slot slot = serving == null ? null : serving.slot(version);
      if (slot == null || slot.state() != State.READY) {
        continue;
      }
      if (!slot.loaded().declaredConfig().equals(plan.model.declaredConfig())) {
        plan.reloadReasons.put(version, "config.pbtxt changed");
        continue;
      }
      try {
        VersionFiles now = VersionFiles.of(plan.model.versionDirectory(version));
        if (!now.fingerprint().equals(slot.loaded().filesFingerprint())) {
          plan.reloadReasons.put(version, "model files changed");
        }
      } catch (RuntimeException e) {
        plan.reloadReasons.put(version, "files could not be read again: " + VersionLoader.reason(e));
      }
    }
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(name);
      TreeMap<Long, Slot> slots = slotsOf(current);
      for (long version : selection.selected()) {
        Slot slot = slots.get(version);
        boolean ready = slot != null && slot.state() == State.READY;
        if (ready && source == null && !plan.reloadReasons.containsKey(version)) {
          plan.unchanged.add(version);
          continue;
        }
        if (!ready) {
          slots.put(version, Slot.loading(version));
        }
        RepositoryModel model = plan.model;
        plan.pending.put(version, loadPool.submit(() -> loadVersion(model, version, startup)));
      }
      publish(name, new ModelRoute(name, slots.values(), ""));
    }
    return plan;
  }

  /** Load-pool thread: fetches the files, reserves room in the budget, loads, trades the reservation for the measured cost. */
  private LoadedVersion loadVersion(RepositoryModel model, long version, boolean startup) {
    long t0 = System.nanoTime();
    long reservation = 0;
    try {
      Path dir = model.versionDirectory(version);
      VersionFiles files = VersionFiles.of(dir);
      // Making room may wait for evictions; closing the versions it evicts yields to serving in drain.
      reservation = reserve(model, version, files, startup);
      LoadedVersion loaded;
      // Session set-up and warm-up: the CPU-heavy part, which may yield to serving (LoadScheduling).
      try (LoadScheduling.Section lowered = options.loadScheduling().enter()) {
        loaded = loader.load(model, version, dir, files);
      }
      budget.loaded(reservation, loaded.memory());
      reservation = 0;
      history.measured(model.name(), version, model.declaredConfig(), files.fingerprint(), loaded.memory());
      VersionMemory m = loaded.memory();
      log.info("loaded model '{}' version {} ({}, {} instance(s)) in {} ms: ok; memory {} ({}: files {}, resident growth {}, runtime {})",
          model.name(), version, loaded.runtimeName(), loaded.runners().size(), millisSince(t0), VersionMemory.human(m.bytes()),
          m.source(), VersionMemory.human(m.fileBytes()),
          m.residentGrowthBytes() < 0 ? "unattributed" : VersionMemory.human(m.residentGrowthBytes()),
          m.reportedBytes() < 0 ? "n/a" : VersionMemory.human(m.reportedBytes()));
      return loaded;
    } catch (RuntimeException | Error e) {
      if (reservation > 0) {
        budget.cancelled(reservation);
      }
      if (e instanceof InferenceException ie && BUDGET_FIELD.equals(ie.field()) && startup) {
        log.info("model '{}' version {} not loaded at start: {}", model.name(), version, ie.getMessage());
      } else {
        log.warn("loading model '{}' version {} failed after {} ms: {}", model.name(), version, millisSince(t0),
            VersionLoader.reason(e));
      }
      throw e;
    }
  }

  /**
   * Load-pool thread: reserves the version's estimated cost, evicting least recently used unpinned
   * models (not this one) until it fits. A version never measured, whose guessed cost does not fit
   * once nothing more can be evicted, reserves only its files' size (or its runtime's last report)
   * instead: it loads, and its measured cost decides whether it stays. Holds no lock while it evicts
   * or waits.
   *
   * @return the bytes reserved (give them back with {@link MemoryBudget#cancelled} if the load fails)
   */
  private long reserve(RepositoryModel source, long version, VersionFiles files, boolean startup) {
    String model = source.name();
    VersionHistory.Learned past = history.get(model, version, source.declaredConfig(), files.fingerprint());
    Long before = past == null || past.smallestBytes() < 0 ? null : past.smallestBytes();
    long estimate = budget.estimate(files.bytes(), before);
    if (!budget.enabled()) {
      budget.tryReserve(estimate);
      return estimate;
    }
    // Refused up front only on figures that do not err: its files, and what its runtime reported.
    long reported = past == null ? -1 : past.reportedBytes();
    long certain = Math.max(files.bytes(), reported);
    if (certain > budget.limit) {
      throw InferenceException.failedPrecondition(
          "model '%s' version %d needs at least %s (%s), more than the whole memory budget of %s", model, version,
          VersionMemory.human(certain), reported > files.bytes() ? "reported by its runtime when it last loaded"
              : "the size of its files", VersionMemory.human(budget.limit));
    }
    estimate = Math.min(estimate, budget.limit);
    long giveUpAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.drainTimeoutMillis()) + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      if (budget.tryReserve(estimate)) {
        return estimate;
      }
      if (startup) {
        throw new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, String.format(java.util.Locale.ROOT,
            "model '%s' version %d (about %s) did not fit the memory budget of %s beside the models loaded before it",
            model, version, VersionMemory.human(estimate), VersionMemory.human(budget.limit)), BUDGET_FIELD, 0L, null);
      }
      long need = budget.shortfall(estimate);
      Evictions done = need > 0 ? evictForRoom(model, need, EvictionCause.MEMORY_BUDGET, "model '" + model + "' version " + version)
          : Evictions.NONE;
      if (done.evicted > 0) {
        continue;
      }
      boolean othersMoving = need <= 0 || done.contended || budget.reserved() > 0;
      if (!othersMoving && before == null && estimate > certain) {
        // Nothing more can be evicted and the estimate is only a guess from other models' ratios: load
        // at the floor that does not err and let the measured cost decide (keepWithinBudget).
        estimate = Math.min(certain, budget.limit);
        continue;
      }
      if (!othersMoving || System.nanoTime() - giveUpAt > 0) {
        throw new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, String.format(java.util.Locale.ROOT,
            "the memory budget of %s is full: %s held by models that cannot be evicted now (pinned: %s) and %s "
                + "reserved by loads under way; model '%s' version %d needs about %s",
            VersionMemory.human(budget.limit), VersionMemory.human(budget.resident()), pinnedResident(),
            VersionMemory.human(budget.reserved()), model, version, VersionMemory.human(estimate)),
            BUDGET_FIELD, TimeUnit.SECONDS.toNanos(1), null);
      }
      try {
        budget.awaitChange(ROOM_WAIT_SLICE_MILLIS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw InferenceException.unavailable("interrupted while waiting for room in the memory budget");
      }
    }
  }

  private List<String> pinnedResident() {
    List<String> out = new ArrayList<>();
    for (String name : new TreeSet<>(routes.keySet())) {
      if (isPinned(name)) {
        out.add(name);
      }
    }
    return out;
  }

  /** Caller holds the model's lock. Waits for the plan's loads, publishes, drains what was replaced, keeps within the budget. */
  private LoadResult finish(LoadPlan plan) {
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
    boolean deferred = plan.startup && loaded.isEmpty() && !failed.isEmpty()
        && failed.values().stream().allMatch(ModelManager::isBudgetRefusal) && !routeHasReady(plan.name);
    if (deferred) {
      return defer(plan, failed);
    }
    VersionSelection selection = plan.selection;
    List<LoadedVersion> retiring = new ArrayList<>();
    List<VersionChange> changes = new ArrayList<>();
    synchronized (tableWriteLock) {
      TreeMap<Long, Slot> slots = slotsOf(routes.get(plan.name));
      for (LoadedVersion version : loaded.values()) {
        Slot previous = slots.put(version.version(), Slot.ready(version));
        if (previous != null && previous.loaded() != null) {
          retiring.add(previous.loaded()); // same version reloaded: the new copy takes over, the old one drains
        }
        String why = plan.reloadReasons.get(version.version());
        changes.add(new VersionChange(version.version(), why != null ? Change.RELOADED : Change.LOADED, why == null ? "" : why));
      }
      for (Map.Entry<Long, Throwable> e : failed.entrySet()) {
        Slot previous = slots.get(e.getKey());
        if (previous == null || previous.state() != State.READY) { // a failed reload leaves the serving copy
          slots.put(e.getKey(), Slot.unavailable(e.getKey(), VersionLoader.reason(e.getValue())));
        }
        changes.add(new VersionChange(e.getKey(), Change.FAILED, VersionLoader.reason(e.getValue())));
      }
      for (long version : plan.unchanged) {
        changes.add(new VersionChange(version, Change.UNCHANGED, ""));
      }
      for (long version : selection.missing()) {
        String reason = "version " + version + " is named by version_policy " + selection.policy() + " but is not in the repository";
        slots.put(version, Slot.unavailable(version, reason));
        changes.add(new VersionChange(version, Change.FAILED, reason));
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
          changes.add(new VersionChange(version, Change.UNLOADED, ""));
        }
      }
      for (LoadedVersion version : retiring) {
        Slot slot = slots.get(version.version());
        if (slot != null && slot.loaded() == version) {
          slots.put(version.version(), slot.unloading());
        }
      }
      if (!loaded.isEmpty()) {
        evicted.remove(plan.name);
      }
      publish(plan.name, new ModelRoute(plan.name, slots.values(), ""));
    }
    drain(plan.name, retiring);
    changes.sort(Comparator.comparingLong(VersionChange::version));
    LoadResult result = new LoadResult(plan.name, changes);

    if (!plan.pending.isEmpty() && loaded.isEmpty()) {
      failedAtNanos.put(plan.name, System.nanoTime());
      StringJoiner reasons = new StringJoiner("; ");
      for (Map.Entry<Long, Throwable> e : failed.entrySet()) {
        reasons.add("version " + e.getKey() + ": " + VersionLoader.reason(e.getValue()));
      }
      Throwable first = failed.values().iterator().next();
      log.warn("model '{}' not loaded: {}", plan.name, reasons);
      long retry = first instanceof InferenceException ie ? ie.retryAfterNanos() : 0L;
      String field = first instanceof InferenceException ie ? ie.field() : null;
      throw new InferenceException(VersionLoader.code(first),
          "model '" + plan.name + "': no version could be loaded: " + reasons, field, retry, first);
    }
    failedAtNanos.remove(plan.name);
    if (!failed.isEmpty()) {
      log.warn("model '{}' loaded partly: versions {} failed, {} ready", plan.name, failed.keySet(), readyVersions(plan.name));
    }
    if (!loaded.isEmpty() && budget.enabled()) {
      keepWithinBudget(plan.name, loaded.values());
    }
    return result;
  }

  /** Whether a load other than {@code model}'s holds a reservation or is not yet published. */
  private boolean othersLoading(String model) {
    if (budget.reserved() > 0) {
      return true;
    }
    for (ModelRoute route : routes.values()) {
      if (route.name.equals(model)) {
        continue;
      }
      for (Slot slot : route.slots) {
        if (slot.state() == State.LOADING) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * After start, whose loads overlapped: evicts the least recently used models until the total fits
   * (each load left the excess that belonged to loads still under way to the next one).
   */
  private void rebalanceAfterStart() {
    while (budget.enabled() && budget.overBy() > 0) {
      if (evictForRoom(null, budget.overBy(), EvictionCause.OVER_BUDGET_AFTER_LOAD, "start").evicted == 0) {
        log.warn("memory budget of {} exceeded by {} after start: nothing more can be evicted (pinned: {})",
            VersionMemory.human(budget.limit), VersionMemory.human(budget.overBy()), pinnedResident());
        return;
      }
    }
  }

  private static boolean isBudgetRefusal(Throwable t) {
    return t instanceof InferenceException e && BUDGET_FIELD.equals(e.field()) && e.code() == ErrorCode.RESOURCE_EXHAUSTED;
  }

  private boolean routeHasReady(String model) {
    ModelRoute route = routes.get(model);
    return route != null && route.hasReady();
  }

  /** Caller holds the model's lock. At start, a model that did not fit the budget: not resident, loaded on demand. */
  private LoadResult defer(LoadPlan plan, Map<Long, Throwable> failed) {
    String reason = "not resident: it did not fit the memory budget at start; loads on its first request";
    synchronized (tableWriteLock) {
      evicted.put(plan.name, reason);
      required.remove(plan.name);
      publish(plan.name, null);
    }
    List<VersionChange> changes = new ArrayList<>();
    failed.forEach((v, e) -> changes.add(new VersionChange(v, Change.FAILED, VersionLoader.reason(e))));
    return new LoadResult(plan.name, changes);
  }

  /**
   * Caller holds {@code model}'s lock, right after its new versions were published. A version's
   * measured cost can exceed its estimate: evict others until the total fits again. If it still does
   * not (what is left is pinned, or this model alone needs more than the budget), this model's new
   * versions are taken back and the load fails: FAILED_PRECONDITION when the model alone is over the
   * budget, else RESOURCE_EXHAUSTED with a retry hint.
   */
  private void keepWithinBudget(String model, Collection<LoadedVersion> fresh) {
    long own = 0;
    long certain = 0; // the figures that do not err: files, runtime reports
    for (LoadedVersion version : fresh) {
      own += version.memory().bytes();
      certain += Math.max(version.memory().fileBytes(), version.memory().reportedBytes());
    }
    boolean alone = certain > budget.limit; // then evicting others would not help: nothing is evicted for it
    boolean othersMoving = false;
    while (!alone && budget.overBy() > 0) {
      Evictions done = evictForRoom(model, budget.overBy(), EvictionCause.OVER_BUDGET_AFTER_LOAD, "model '" + model + "'");
      if (done.evicted == 0) {
        othersMoving = done.contended;
        break;
      }
    }
    if (budget.overBy() <= 0) {
      return;
    }
    if (!alone && own > budget.limit) {
      // Only its resident growth says it does not fit, and that figure includes what the allocator keeps
      // after loading: it is kept (everything else evictable has gone) and is the first to go next time.
      log.warn("model '{}' measured {} while loading (files {}), more than the memory budget of {}; kept, since its files "
          + "and runtime report fit: the measurement includes memory the allocator keeps after loading",
          model, VersionMemory.human(own), VersionMemory.human(certain), VersionMemory.human(budget.limit));
      return;
    }
    if (!alone && (othersMoving || othersLoading(model))) {
      // Part of the excess belongs to loads not published yet (or to models leaving right now): the
      // last of those loads to finish evicts what is then least recently used.
      log.info("memory budget of {} exceeded by {} while other loads are under way; evicting when they finish",
          VersionMemory.human(budget.limit), VersionMemory.human(budget.overBy()));
      return;
    }
    String reason = alone
        ? String.format(java.util.Locale.ROOT, "model '%s' measured %s once loaded, more than the whole memory budget of %s",
            model, VersionMemory.human(own), VersionMemory.human(budget.limit))
        : String.format(java.util.Locale.ROOT, "model '%s' measured %s once loaded and does not fit the memory budget of %s: "
            + "%s is held by models that cannot be evicted now (pinned: %s) or reserved by loads under way",
            model, VersionMemory.human(own), VersionMemory.human(budget.limit),
            VersionMemory.human(budget.resident() + budget.reserved() - own), pinnedResident());
    List<LoadedVersion> retiring = new ArrayList<>();
    synchronized (tableWriteLock) {
      TreeMap<Long, Slot> slots = slotsOf(routes.get(model));
      for (LoadedVersion version : fresh) {
        Slot slot = slots.get(version.version());
        if (slot != null && slot.loaded() == version) {
          slots.put(version.version(), slot.unloading());
          retiring.add(version);
        }
      }
      publish(model, new ModelRoute(model, slots.values(), ""));
    }
    drain(model, retiring);
    synchronized (tableWriteLock) {
      TreeMap<Long, Slot> slots = slotsOf(routes.get(model));
      for (LoadedVersion version : retiring) {
        slots.put(version.version(), Slot.unavailable(version.version(), reason));
      }
      publish(model, new ModelRoute(model, slots.values(), ""));
    }
    failedAtNanos.put(model, System.nanoTime());
    log.warn("{}: unloaded again", reason);
    if (alone) {
      throw InferenceException.failedPrecondition("%s", reason);
    }
    throw new InferenceException(ErrorCode.RESOURCE_EXHAUSTED, reason, BUDGET_FIELD, TimeUnit.SECONDS.toNanos(1), null);
  }

  // ---------------------------------------------------------------------------------------------
  // Eviction

  private record Victim(String name, long bytes, long lastUsedNanos, boolean busy) {}

  /** What one round of evictions achieved; {@code contended}: a victim's lock was taken by someone else. */
  private record Evictions(int evicted, boolean contended) {
    static final Evictions NONE = new Evictions(0, false);
  }

  /**
   * Evicts least recently used unpinned models other than {@code exclude} until {@code need} bytes
   * are freed: candidates in recency order, skipping any whose lock is busy (another thread is
   * loading or unloading it) or that another load already claimed. Holds no lock while a victim
   * drains, apart from the victim's own (taken with tryLock).
   */
  private Evictions evictForRoom(String exclude, long need, EvictionCause cause, String forWhat) {
    List<Victim> candidates;
    boolean[] busySkipped = new boolean[1];
    synchronized (budget) {
      candidates = candidates(exclude, busySkipped);
    }
    int evictedNow = 0;
    // Models skipped for a moment (loading, leaving, claimed, being handed to waiting requests) may be
    // evictable shortly: the caller waits and tries again rather than giving up.
    boolean contended = busySkipped[0];
    long freed = 0;
    for (Victim v : candidates) {
      if (freed >= need) {
        break;
      }
      synchronized (budget) {
        if (!evictionClaims.add(v.name)) {
          contended = true;
          continue;
        }
        budget.evictionStarted(v.bytes);
      }
      try {
        if (evict(v, cause, forWhat)) {
          evictedNow++;
          freed += v.bytes;
        } else {
          contended = true;
        }
      } finally {
        synchronized (budget) {
          evictionClaims.remove(v.name);
        }
        budget.evictionEnded(v.bytes);
      }
    }
    return new Evictions(evictedNow, contended);
  }

  /**
   * Caller holds the budget's monitor. Every model that may be evicted, least recently used (idle
   * before busy) first; {@code busySkipped[0]} is set when a model was passed over only for the moment.
   */
  private List<Victim> candidates(String exclude, boolean[] busySkipped) {
    List<Victim> candidates = new ArrayList<>();
    for (ModelRoute route : routes.values()) {
      if (route.name.equals(exclude == null ? "" : exclude) || optionPinned.contains(route.name)
          || desiredPinned.contains(route.name) || !route.hasReady()) {
        continue;
      }
      if (evictionClaims.contains(route.name) || onDemand.hasWaiters(route.name)) {
        busySkipped[0] = true;
        continue;
      }
      long bytes = 0;
      long last = Long.MIN_VALUE;
      boolean busy = false;
      boolean eligible = true;
      for (Slot slot : route.slots) {
        if (slot.state() == State.LOADING || slot.state() == State.UNLOADING) {
          busySkipped[0] = true;
          eligible = false;
          break;
        }
        if (slot.loaded() != null && slot.loaded().pinnedByConfig()) {
          eligible = false;
          break;
        }
        if (slot.state() == State.READY) {
          LoadedVersion v = slot.loaded();
          bytes += v.memory().bytes();
          long used = v.lastUsedNanos();
          last = last == Long.MIN_VALUE || used - last > 0 ? used : last;
          busy |= v.inFlight() > 0;
        }
      }
      if (eligible) {
        candidates.add(new Victim(route.name, bytes, last, busy));
      }
    }
    // nanoTime values compare by their difference (they may wrap).
    candidates.sort((a, b) -> a.busy != b.busy ? (a.busy ? 1 : -1) : Long.signum(a.lastUsedNanos - b.lastUsedNanos));
    return candidates;
  }

  /**
   * Evicts one model if its lock is free: out of the routing table first (requests that miss from
   * then on park for a reload), then drained, then its instances closed. Its intent (traffic, policy,
   * pins) stays; it loads again on its next request.
   *
   * @return false when the model was busy (its lock taken) or changed since it was chosen
   */
  private boolean evict(Victim victim, EvictionCause cause, String forWhat) {
    ReentrantLock lock = lockFor(victim.name);
    if (!lock.tryLock()) {
      return false;
    }
    long t0 = System.nanoTime();
    try {
      if (closed.get()) {
        return false;
      }
      List<LoadedVersion> retiring = new ArrayList<>();
      List<Long> versions = new ArrayList<>();
      long bytes = 0;
      synchronized (tableWriteLock) {
        ModelRoute current = routes.get(victim.name);
        if (current == null || !current.hasReady() || isPinned(victim.name)) {
          return false;
        }
        List<Slot> unloading = new ArrayList<>();
        for (Slot slot : current.slots) {
          if (slot.state() == State.LOADING || slot.state() == State.UNLOADING) {
            return false;
          }
          if (slot.loaded() != null) {
            retiring.add(slot.loaded());
            versions.add(slot.version());
            bytes += slot.loaded().memory().bytes();
            unloading.add(slot.unloading());
          }
        }
        long idleMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - victim.lastUsedNanos);
        // Marked before it leaves the table: a request that misses from now on parks for a reload.
        evicted.put(victim.name, String.format(java.util.Locale.ROOT,
            "evicted at %s to stay within the memory budget (it held %s, idle %d ms); loads on its next request",
            Instant.now(), VersionMemory.human(bytes), idleMillis));
        required.remove(victim.name);
        publish(victim.name, new ModelRoute(victim.name, unloading, ""));
      }
      drain(victim.name, retiring);
      synchronized (tableWriteLock) {
        ModelRoute after = routes.get(victim.name);
        if (after != null && after.slots.length == 0) {
          publish(victim.name, null);
        }
      }
      long idleMillis = TimeUnit.NANOSECONDS.toMillis(t0 - victim.lastUsedNanos);
      audit.info("who=lifecycle op=Evict model={} args=[versions={} bytes={} idle_ms={} in_flight={} cause={} for={}] when={} "
              + "result=OK duration_ms={}", victim.name, versions, bytes, idleMillis, victim.busy ? "yes" : "no",
          cause.label(), forWhat, Instant.now(), millisSince(t0));
      listener.evicted(victim.name, bytes, cause);
      return true;
    } finally {
      lock.unlock();
    }
  }

  // ---------------------------------------------------------------------------------------------

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
      failedAtNanos.remove(model);
      publish(model, null);
    }
  }

  /**
   * Retires the versions (they have already left routing), waits for their holders, then closes each
   * scheduler (completing its accepted requests) and its runners, gives their memory back to the
   * budget, and finally drops their UNLOADING slots.
   */
  private void drain(String model, List<LoadedVersion> versions) {
    if (versions.isEmpty()) {
      return;
    }
    long t0 = System.nanoTime();
    for (LoadedVersion version : versions) {
      version.retire();
    }
    int[] holding = new int[versions.size()];
    for (int i = 0; i < holding.length; i++) {
      LoadedVersion version = versions.get(i);
      holding[i] = version.inFlight();
      if (!version.awaitDrained(options.drainTimeoutMillis())) {
        log.warn("model '{}' version {}: {} request(s) still hold it after {} ms; closing its scheduler anyway",
            model, version.version(), version.inFlight(), options.drainTimeoutMillis());
      }
    }
    // Closing sessions is load work: on whichever thread drains (an eviction's, an unload's, a reload's),
    // it yields to serving like a load does (LoadScheduling; nested inside a load's own section it changes
    // nothing). Waiting for the holders above costs no CPU, so the section (which also lowers the JIT) starts here.
    try (LoadScheduling.Section lowered = options.loadScheduling().enter()) {
      for (int i = 0; i < holding.length; i++) {
        closeVersion(model, versions.get(i), holding[i], t0);
      }
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

  /** Closes a drained version's scheduler and runners (once) and gives its memory back. */
  private void closeVersion(String model, LoadedVersion version, int holding, long t0) {
    if (!version.markClosed()) {
      return;
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
    budget.released(version.memory().bytes());
    log.info("unloaded model '{}' version {} in {} ms ({} request(s) held it when draining began): ok",
        model, version.version(), millisSince(t0), holding);
  }

  /** Records a model-level failure; versions already serving are kept. */
  private void recordProblem(String name, String reason) {
    synchronized (tableWriteLock) {
      ModelRoute current = routes.get(name);
      TreeMap<Long, Slot> slots = slotsOf(current);
      slots.values().removeIf(slot -> slot.state() == State.UNAVAILABLE || slot.state() == State.LOADING);
      publish(name, new ModelRoute(name, slots.values(), reason));
    }
    failedAtNanos.put(name, System.nanoTime());
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
