package io.quiver.lifecycle;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.proto.control.v1.DesiredModel;
import io.quiver.proto.control.v1.DesiredState;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.registry.VersionPolicies;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.ToIntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a {@link ModelManager} converged, on one daemon thread ({@code quiver-repository-poll}):
 * every interval it re-reads the desired-state manifest (a conditional read; applied when it changed,
 * e.g. by another replica), in {@link ControlMode#LAZY} lists the repository again (new models become
 * loadable on demand), and in {@link ControlMode#POLL} reloads each resident model whose version
 * policy now selects other versions than those serving (a new version put in the bucket, an old one
 * removed) and loads models that appeared. A version that failed is retried only once the
 * repository's listing for it changes. Models the desired state marks unloaded are left alone, and so
 * are models that are not resident but load on demand (evicted under the memory budget): they pick up
 * new versions when they next load. Owned by {@link ModelLifecycle}; runs whatever ports are open.
 */
public final class RepositoryPoller implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RepositoryPoller.class);

  private final ModelManager manager;
  private final DesiredStateStore desired;
  private final ToIntFunction<DesiredState> apply;
  private final boolean pollRepository;
  private final long intervalMillis;
  private final Map<String, String> lastAttempt = new HashMap<>(); // model -> fingerprint of the listing last loaded from
  private ScheduledExecutorService thread;

  /**
   * @param desired the desired-state store, or null when there is none
   * @param apply makes the manager match a changed desired state; returns the models changed
   * @param pollRepository watch the repository for new versions (POLL mode)
   */
  public RepositoryPoller(ModelManager manager, DesiredStateStore desired, ToIntFunction<DesiredState> apply,
      boolean pollRepository, long intervalMillis) {
    this.manager = Objects.requireNonNull(manager, "manager");
    this.desired = desired;
    this.apply = Objects.requireNonNull(apply, "apply");
    this.pollRepository = pollRepository;
    if (intervalMillis < 10) {
      throw new IllegalArgumentException("poll interval must be >= 10 ms; was " + intervalMillis);
    }
    this.intervalMillis = intervalMillis;
  }

  public synchronized void start() {
    if (thread != null) {
      return;
    }
    thread = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "quiver-repository-poll");
      t.setDaemon(true);
      return t;
    });
    thread.scheduleWithFixedDelay(this::pollQuietly, intervalMillis, intervalMillis, TimeUnit.MILLISECONDS);
  }

  public long intervalMillis() {
    return intervalMillis;
  }

  private void pollQuietly() {
    try {
      pollOnce();
    } catch (RuntimeException e) {
      log.warn("repository poll failed: {}", e.getMessage());
    }
  }

  /** One round: desired state, then (LAZY) the known models, then (POLL mode) the repository. Returns the number of models changed. */
  public synchronized int pollOnce() {
    int changed = 0;
    DesiredState state = null;
    if (desired != null) {
      try {
        DesiredState next = desired.refresh();
        state = desired.current();
        if (next != null) {
          log.info("desired state changed in {}; applying it", manager.repository().location());
          changed += apply.applyAsInt(next);
        }
      } catch (InferenceException e) {
        log.warn("desired state not read: {}", e.getMessage());
        state = desired.current();
      }
    }
    if (manager.options().controlMode() == ControlMode.LAZY) {
      try {
        manager.refreshKnownModels();
      } catch (InferenceException e) {
        log.warn("repository poll: cannot list {}: {}", manager.repository().location(), e.getMessage());
      }
    }
    if (pollRepository) {
      changed += pollRepository(state);
    }
    return changed;
  }

  private int pollRepository(DesiredState state) {
    List<String> names;
    try {
      names = manager.repository().modelNames();
    } catch (InferenceException e) {
      log.warn("repository poll: cannot list {}: {}", manager.repository().location(), e.getMessage());
      return 0;
    }
    int changed = 0;
    for (String name : names) {
      DesiredModel want = state == null ? null : state.getModelsMap().get(name);
      if (want != null && !want.getLoaded()) {
        continue; // explicitly unloaded by an operator
      }
      if (manager.isOnDemandOnly(name)) {
        continue; // not resident under the memory budget: it loads its newest versions when next asked for
      }
      try {
        RepositoryModel model = manager.repository().model(name);
        ModelVersionPolicy policy = manager.policyOverride(name);
        if (policy == null && model.declaredConfig().hasVersionPolicy()) {
          policy = model.declaredConfig().getVersionPolicy();
        }
        SortedSet<Long> wanted = VersionPolicies.select(policy, model.versions()).selected();
        SortedSet<Long> serving = new TreeSet<>(manager.readyVersions(name));
        String fingerprint = model.versions() + "|" + model.declaredConfig().hashCode() + "|" + policy;
        if (wanted.equals(serving) || fingerprint.equals(lastAttempt.get(name))) {
          continue;
        }
        lastAttempt.put(name, fingerprint);
        log.info("repository poll: model '{}' serves {} but its policy now selects {}; reloading", name, serving, wanted);
        manager.load(name, manager.policyOverride(name));
        changed++;
      } catch (InferenceException e) {
        log.warn("repository poll: model '{}': {}", name, e.getMessage());
      }
    }
    return changed;
  }

  @Override
  public synchronized void close() {
    if (thread != null) {
      thread.shutdownNow();
      try {
        thread.awaitTermination(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      thread = null;
    }
  }
}
