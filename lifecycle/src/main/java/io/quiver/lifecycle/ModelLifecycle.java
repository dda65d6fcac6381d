package io.quiver.lifecycle;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.control.v1.DesiredModel;
import io.quiver.proto.control.v1.DesiredState;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.registry.ModelNames;
import io.quiver.registry.WritableModelRepository;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one owner of the model lifecycle's truth: the {@link ModelManager}, the desired state kept
 * beside the repository ({@link DesiredStateStore}), the {@link RepositoryPoller} that converges to
 * it, and the staging of uploads. It runs whatever ports are open; the control plane, the data
 * plane's repository API (Triton's RepositoryModelLoad/Unload) and any console are only its clients.
 *
 * <p>Every operation writes the desired state first and then makes the manager converge to it, so a
 * restart, the poller, or a second replica never undoes what an operator asked, whichever API they
 * used. If the desired state cannot be written the operation fails and changes nothing.
 *
 * <h2>Desired-state rules</h2>
 * <ul>
 *   <li>{@code loaded: false}: an operator unloaded the model; it is not loaded at start, by the
 *       poller, or on demand, until someone loads it again.
 *   <li>{@code loaded: true} with a version policy and traffic: outside LAZY mode the model is loaded
 *       (with that policy). In LAZY mode, and for a model evicted under the memory budget in any mode,
 *       it means "may be loaded": the policy and traffic apply when it next loads, on demand.
 *   <li>{@code pinned: true}: never evicted under the budget; in LAZY mode loaded at start.
 * </ul>
 *
 * <p>Threading: operations block (they load and drain) and are for control threads. Operations on
 * one model are serialized (a striped lock held across the desired-state write and the manager's
 * work), so the manager ends in the order the desired state was written; different models proceed in
 * parallel. {@link #start()} and {@link #close()} once each, from one thread.
 */
public final class ModelLifecycle implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ModelLifecycle.class);
  private static final int LOCK_STRIPES = 32;

  private final ModelManager manager;
  private final LifecycleOptions options;
  private final DesiredStateStore desired;
  private final RepositoryPoller poller;
  private final UploadStaging uploads;
  private final ReentrantLock[] locks = new ReentrantLock[LOCK_STRIPES];
  private boolean started;
  private boolean closed;

  /** What an upload put into the repository and, when asked to load, what the load did. */
  public record UploadResult(long version, LoadResult load) {}

  public ModelLifecycle(ModelManager manager, LifecycleOptions options) {
    this.manager = Objects.requireNonNull(manager, "manager");
    this.options = Objects.requireNonNull(options, "options");
    this.desired = DesiredStateStore.forRepository(manager.repository(), options.persistDesiredState());
    boolean poll = manager.options().controlMode() == ControlMode.POLL;
    this.poller = options.pollIntervalMillis() > 0
        ? new RepositoryPoller(manager, desired, this::converge, poll, options.pollIntervalMillis())
        : null;
    this.uploads = new UploadStaging(options.uploadStagingDir());
    for (int i = 0; i < LOCK_STRIPES; i++) {
      locks[i] = new ReentrantLock();
    }
  }

  public ModelManager manager() {
    return manager;
  }

  public DesiredStateStore desiredState() {
    return desired;
  }

  /** The poller, or null when polling is off (interval 0). */
  public RepositoryPoller poller() {
    return poller;
  }

  public UploadStaging uploads() {
    return uploads;
  }

  /**
   * Sweeps interrupted uploads, reads the desired state, starts the manager with it (models an
   * operator unloaded stay out, pinned ones load in LAZY mode, policies apply from the first load),
   * converges to what start left, then starts the poller. Blocks until the start's loads finished.
   */
  public synchronized void start() {
    if (started) {
      throw InferenceException.failedPrecondition("model lifecycle already started");
    }
    started = true;
    uploads.sweep();
    DesiredState state;
    try {
      desired.refresh();
    } catch (InferenceException e) {
      log.warn("desired state not read at start (starting without it): {}", e.getMessage());
    }
    state = desired.current();
    for (Map.Entry<String, DesiredModel> e : state.getModelsMap().entrySet()) {
      String name = e.getKey();
      if (ModelNames.problem(name) != null) {
        log.warn("desired state: ignoring entry with an invalid model name '{}'", ModelNames.printable(name));
        continue;
      }
      DesiredModel want = e.getValue();
      manager.setOperatorUnloaded(name, !want.getLoaded());
      manager.setPinned(name, want.getLoaded() && want.getPinned());
      if (want.getLoaded()) {
        manager.setPolicyOverride(name, DesiredStateStore.policyOf(want));
      }
    }
    manager.start();
    int changed = converge(state);
    if (state.getModelsCount() > 0) {
      log.info("desired state from {} ({}): {} model(s) in it, {} change(s) applied after start",
          manager.repository().location(), desired.isPersistent() ? "manifest" : "in memory", state.getModelsCount(), changed);
    }
    if (poller != null) {
      poller.start();
    }
  }

  /**
   * Makes the manager match {@code state} (see the class comment's rules). One model failing is
   * logged and does not stop the others. Called at start and by the poller when the manifest changed.
   *
   * @return how many models were changed
   */
  public int converge(DesiredState state) {
    int changed = 0;
    for (Map.Entry<String, DesiredModel> e : new TreeMap<>(state.getModelsMap()).entrySet()) {
      String name = e.getKey();
      if (ModelNames.problem(name) != null) {
        continue;
      }
      DesiredModel want = e.getValue();
      ReentrantLock lock = lockFor(name);
      lock.lock();
      try {
        manager.setPinned(name, want.getLoaded() && want.getPinned());
        if (!want.getLoaded()) {
          manager.setOperatorUnloaded(name, true);
          if (manager.isLoaded(name)) {
            manager.unload(name);
            changed++;
          }
          continue;
        }
        manager.setOperatorUnloaded(name, false);
        ModelVersionPolicy policy = DesiredStateStore.policyOf(want);
        boolean samePolicy = Objects.equals(policy, manager.policyOverride(name));
        boolean lazy = manager.options().controlMode() == ControlMode.LAZY && !manager.isPinned(name);
        if (manager.isLoaded(name) && !manager.isOnDemandOnly(name)) {
          if (!samePolicy) {
            manager.load(name, policy);
            changed++;
          }
        } else if (lazy || manager.isOnDemandOnly(name)) {
          if (!samePolicy) {
            manager.setPolicyOverride(name, policy); // applies when it next loads
            changed++;
          }
        } else {
          manager.load(name, policy);
          changed++;
        }
        TrafficSplit split = DesiredStateStore.trafficOf(want);
        if (!split.equals(manager.traffic(name))) {
          manager.setTraffic(name, split);
          changed++;
        }
      } catch (InferenceException ex) {
        log.warn("desired state: model '{}' could not be brought to its desired state: {}", name, ex.getMessage());
      } finally {
        lock.unlock();
      }
    }
    return changed;
  }

  /**
   * Loads (or reloads) a model by its current policy (Triton's RepositoryModelLoad): records
   * {@code loaded: true}, then loads. A model already loaded has its files read again and is
   * reloaded when they or its config changed.
   */
  public LoadResult load(String model) {
    return load(model, null, false, null);
  }

  /**
   * Loads a model with {@code policy} (null: the config's own) from now on, pinning or unpinning it
   * when {@code pin} is not null: records it in the desired state, then loads.
   *
   * @throws InferenceException NOT_FOUND when the model is neither loaded nor in the repository;
   *     UNAVAILABLE (or INTERNAL) when the desired state cannot be written; the load's failure
   */
  public LoadResult load(String model, ModelVersionPolicy policy, Boolean pin) {
    return load(model, policy, true, pin);
  }

  private LoadResult load(String model, ModelVersionPolicy policy, boolean setPolicy, Boolean pin) {
    ModelNames.requireValid(model);
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      requireKnown(model);
      record(model, m -> {
        m.setLoaded(true);
        if (setPolicy) {
          DesiredStateStore.withPolicy(m, policy);
        }
        if (pin != null) {
          m.setPinned(pin);
        }
        return m;
      });
      manager.setOperatorUnloaded(model, false);
      if (pin != null) {
        manager.setPinned(model, pin);
      }
      LoadResult result = setPolicy ? manager.load(model, policy) : manager.load(model);
      log.info("load of model '{}': {}", model, result.summary());
      return result;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Unloads a model (Triton's RepositoryModelUnload): records {@code loaded: false} (dropping its
   * policy, traffic and pin), then drains and unloads it. A model of the repository that is not
   * loaded is only recorded (it will not load on demand or at the next start).
   *
   * @throws InferenceException NOT_FOUND when the model is neither loaded nor in the repository;
   *     UNAVAILABLE (or INTERNAL) when the desired state cannot be written
   */
  public void unload(String model) {
    ModelNames.requireValid(model);
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      requireKnown(model);
      record(model, m -> DesiredModel.newBuilder().setLoaded(false));
      manager.setOperatorUnloaded(model, true);
      manager.setPinned(model, false);
      if (manager.isLoaded(model)) {
        manager.unload(model);
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Sets a model's traffic weights and labels: recorded first, then applied.
   *
   * @throws InferenceException NOT_FOUND when the model is neither loaded nor loadable on demand
   */
  public void setTraffic(String model, TrafficSplit split) {
    ModelNames.requireValid(model);
    Objects.requireNonNull(split, "split");
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      if (!manager.isLoaded(model) && !manager.loadsOnDemand(model)) {
        throw InferenceException.notFound("model '%s' is not loaded", model);
      }
      record(model, m -> DesiredStateStore.withTraffic(m.setLoaded(true), split));
      manager.setTraffic(model, split);
    } finally {
      lock.unlock();
    }
  }

  /**
   * Puts an uploaded version into the repository and, when {@code load}, loads the model. A version
   * that then fails to load is taken back out (its files removed, config.pbtxt restored to what it was,
   * the model's desired-state entry restored), so that no later poll, restart or replica meets it
   * again, and the failure is returned with the load's reason.
   *
   * @param version the version number, or null for one above the highest present
   * @param configText the model's new config.pbtxt, or null to keep the current one
   * @throws InferenceException FAILED_PRECONDITION when the repository cannot be written; ALREADY_EXISTS
   *     when the version is present; the load's failure (after the take-back)
   */
  public UploadResult putVersion(String model, Long version, Path staged, String configText, boolean load) {
    ModelNames.requireValid(model);
    if (!(manager.repository() instanceof WritableModelRepository repo)) {
      throw InferenceException.failedPrecondition("repository %s does not take uploads", manager.repository().location());
    }
    ReentrantLock lock = lockFor(model);
    lock.lock();
    try {
      long v = version != null ? version : nextVersion(model);
      String previousConfig = load && configText != null ? repo.readConfigText(model) : null;
      DesiredModel previousDesired = desired.current().getModelsMap().get(model);
      repo.putVersion(model, v, staged, configText);
      if (!load) {
        return new UploadResult(v, null);
      }
      LoadResult result = null;
      InferenceException failure = null;
      try {
        result = load(model);
      } catch (InferenceException e) {
        failure = e;
      }
      if (failure == null && !result.failed(v)) {
        return new UploadResult(v, result);
      }
      String reason = failure != null ? failure.getMessage() : result.failureReason(v);
      takeBack(repo, model, v, configText != null, previousConfig, previousDesired);
      ErrorCode code = failure != null ? failure.code() : ErrorCode.FAILED_PRECONDITION;
      throw new InferenceException(code == ErrorCode.NOT_FOUND ? ErrorCode.FAILED_PRECONDITION : code,
          "model '" + model + "' version " + v + " was uploaded but failed to load, so it was taken out of the "
              + "repository again: " + reason);
    } finally {
      lock.unlock();
    }
  }

  /** Caller holds the model's lock. Undoes a failed upload; problems are logged (the load's failure is what the caller reports). */
  private void takeBack(WritableModelRepository repo, String model, long version, boolean configWritten,
      String previousConfig, DesiredModel previousDesired) {
    try {
      repo.removeVersion(model, version);
      if (configWritten) {
        repo.writeConfigText(model, previousConfig);
      }
    } catch (InferenceException e) {
      log.error("model '{}' version {} failed to load and could not be taken out of {}: {}", model, version,
          repo.location(), e.getMessage());
    }
    try {
      desired.update(state -> {
        DesiredState.Builder b = state.toBuilder();
        if (previousDesired == null) {
          b.removeModels(model);
        } else {
          b.putModels(model, previousDesired);
        }
        return b.build();
      });
      manager.setOperatorUnloaded(model, previousDesired != null && !previousDesired.getLoaded());
    } catch (InferenceException e) {
      log.warn("model '{}': the desired state was not restored after a failed upload: {}", model, e.getMessage());
    }
    try {
      boolean anyLeft = !repo.model(model).versions().isEmpty();
      if (anyLeft && manager.isLoaded(model)) {
        manager.load(model); // clears the failed version's record; the serving ones stay as they are
      } else if (manager.isLoaded(model)) {
        manager.unload(model);
      }
    } catch (InferenceException e) {
      if (manager.isLoaded(model) && !manager.isReady(model, "")) {
        try {
          manager.unload(model);
        } catch (InferenceException ignored) {
          // nothing left to unload
        }
      }
    }
  }

  private long nextVersion(String model) {
    try {
      var versions = manager.repository().model(model).versions();
      return versions.isEmpty() ? 1 : versions.last() + 1;
    } catch (InferenceException e) {
      if (e.code() == ErrorCode.NOT_FOUND) {
        return 1;
      }
      throw e;
    }
  }

  /** @throws InferenceException NOT_FOUND when the model is neither in the table nor in the repository */
  private void requireKnown(String model) {
    if (manager.isLoaded(model)) {
      return;
    }
    try {
      manager.repository().model(model);
    } catch (InferenceException e) {
      if (e.code() == ErrorCode.NOT_FOUND) {
        throw InferenceException.notFound("model '%s' is neither loaded nor in repository %s", model,
            manager.repository().location());
      }
      if (e.code() != ErrorCode.INVALID_ARGUMENT) {
        throw e; // the store cannot be read: do not record anything
      }
      // a config that does not parse: the load reports it with the details
    }
  }

  /** Writes the model's desired entry; a failure to write it fails the operation before anything changes. */
  private void record(String name, UnaryOperator<DesiredModel.Builder> change) {
    try {
      desired.update(state -> {
        DesiredModel current = state.getModelsMap().getOrDefault(name, DesiredModel.getDefaultInstance());
        return state.toBuilder().putModels(name, change.apply(current.toBuilder()).build()).build();
      });
    } catch (InferenceException e) {
      throw new InferenceException(e.code() == ErrorCode.INTERNAL ? ErrorCode.UNAVAILABLE : e.code(),
          "model '" + name + "': the desired state in " + manager.repository().location()
              + " could not be written, so nothing was changed: " + e.getMessage(), null, e.retryAfterNanos(), e);
    }
  }

  private ReentrantLock lockFor(String model) {
    return locks[(model.hashCode() & 0x7fffffff) % LOCK_STRIPES];
  }

  /** Stops the poller, then closes the manager (failing waiting requests, draining and unloading every model). Idempotent. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (poller != null) {
      poller.close();
    }
    manager.close();
  }
}
