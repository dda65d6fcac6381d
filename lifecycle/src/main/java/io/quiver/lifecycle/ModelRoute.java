package io.quiver.lifecycle;

import io.quiver.lifecycle.ModelVersionStatus.State;
import java.util.Arrays;
import java.util.Collection;

/**
 * One model's row in the routing table: its versions (ascending) with their states, the highest
 * READY one precomputed for default routing, and a model-level reason for when no version could even
 * be attempted. Immutable: the manager builds a new one for every change and publishes it in a new
 * table.
 */
final class ModelRoute {
  /** One version's state; {@code loaded} is non-null for READY and UNLOADING. */
  record Slot(long version, State state, String reason, LoadedVersion loaded) {
    static Slot ready(LoadedVersion loaded) {
      return new Slot(loaded.version(), State.READY, "", loaded);
    }

    static Slot loading(long version) {
      return new Slot(version, State.LOADING, "", null);
    }

    static Slot unavailable(long version, String reason) {
      return new Slot(version, State.UNAVAILABLE, reason, null);
    }

    Slot unloading() {
      return new Slot(version, State.UNLOADING, "", loaded);
    }
  }

  final String name;
  final long[] versions;
  final Slot[] slots;
  final LoadedVersion latestReady;
  final String problem;
  final TrafficSplit traffic;
  // Weighted routing among READY versions; null when no weight applies (then latestReady takes all).
  final LoadedVersion[] splitTargets;
  final int[] splitCumulative;
  final int splitTotal;

  ModelRoute(String name, Collection<Slot> ascending, String problem) {
    this(name, ascending, problem, TrafficSplit.NONE);
  }

  ModelRoute(String name, Collection<Slot> ascending, String problem, TrafficSplit traffic) {
    this.name = name;
    this.slots = ascending.toArray(new Slot[0]);
    this.versions = new long[slots.length];
    LoadedVersion latest = null;
    for (int i = 0; i < slots.length; i++) {
      versions[i] = slots[i].version();
      if (i > 0 && versions[i] <= versions[i - 1]) {
        throw new IllegalArgumentException("slots must be ascending and distinct: " + Arrays.toString(versions));
      }
      if (slots[i].state() == State.READY) {
        latest = slots[i].loaded();
      }
    }
    this.latestReady = latest;
    this.problem = problem == null ? "" : problem;
    this.traffic = traffic == null ? TrafficSplit.NONE : traffic;
    java.util.List<LoadedVersion> targets = new java.util.ArrayList<>();
    java.util.List<Integer> cumulative = new java.util.ArrayList<>();
    int total = 0;
    for (java.util.Map.Entry<Long, Integer> w : this.traffic.weights().entrySet()) {
      Slot slot = slot(w.getKey());
      if (w.getValue() > 0 && slot != null && slot.state() == State.READY) {
        total += w.getValue();
        targets.add(slot.loaded());
        cumulative.add(total);
      }
    }
    this.splitTargets = targets.isEmpty() ? null : targets.toArray(new LoadedVersion[0]);
    this.splitCumulative = cumulative.stream().mapToInt(Integer::intValue).toArray();
    this.splitTotal = total;
  }

  /** The same versions under new traffic settings. */
  ModelRoute withTraffic(TrafficSplit traffic) {
    return new ModelRoute(name, java.util.Arrays.asList(slots), problem, traffic);
  }

  /**
   * The version a request without a version goes to: by the weights when any READY version has one
   * (the same {@code requestId} always picks the same version while the weights stay; no id picks at
   * random), else the highest READY version. No allocation.
   */
  LoadedVersion route(String requestId) {
    LoadedVersion[] targets = splitTargets;
    if (targets == null) {
      return latestReady;
    }
    int hash = requestId == null || requestId.isEmpty()
        ? java.util.concurrent.ThreadLocalRandom.current().nextInt()
        : mix(requestId.hashCode());
    int point = Integer.remainderUnsigned(hash, splitTotal);
    for (int i = 0; i < targets.length; i++) {
      if (point < splitCumulative[i]) {
        return targets[i];
      }
    }
    return targets[targets.length - 1];
  }

  /** Murmur3's finalizer: spreads String.hashCode's weak low bits so that similar ids split evenly. */
  static int mix(int h) {
    h ^= h >>> 16;
    h *= 0x85ebca6b;
    h ^= h >>> 13;
    h *= 0xc2b2ae35;
    h ^= h >>> 16;
    return h;
  }

  /** The slot of {@code version}, or null. No allocation. */
  Slot slot(long version) {
    int i = Arrays.binarySearch(versions, version);
    return i >= 0 ? slots[i] : null;
  }

  boolean hasReady() {
    return latestReady != null;
  }

  /** What a client asking for the default version is told when none is READY. */
  String notReadyReason() {
    if (slots.length == 0) {
      return problem.isEmpty() ? "it has no versions" : problem;
    }
    Slot top = slots[slots.length - 1];
    return "version " + top.version() + " is " + top.state() + (top.reason().isEmpty() ? "" : ": " + top.reason());
  }
}
