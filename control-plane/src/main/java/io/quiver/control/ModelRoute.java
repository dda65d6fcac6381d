package io.quiver.control;

import io.quiver.control.ModelVersionStatus.State;
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

  ModelRoute(String name, Collection<Slot> ascending, String problem) {
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
