package io.quiver.control.grpc;

import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.ModelVersionStatus;
import io.quiver.lifecycle.TrafficSplit;
import io.quiver.lifecycle.VersionMemory;
import io.quiver.core.InferenceException;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.VersionState;
import io.quiver.proto.control.v1.VersionStatus;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Conversions for the control service: manager state to proto (errors go through the one mapper,
 * {@code io.quiver.transport.GrpcErrors}). The one place
 * where the manager's index becomes {@link ModelStatus}es: ListModels, WatchModels and the web
 * console's models page all read it here. Stateless.
 */
public final class ControlStatuses {
  private ControlStatuses() {}

  /** Every model, grouped from the manager's index, with traffic weights and labels. */
  public static List<ModelStatus> all(ModelManager manager) {
    Map<String, List<ModelVersionStatus>> byName = new java.util.TreeMap<>();
    for (ModelVersionStatus row : manager.index()) {
      byName.computeIfAbsent(row.name(), k -> new ArrayList<>()).add(row);
    }
    List<ModelStatus> out = new ArrayList<>(byName.size());
    byName.forEach((name, rows) -> out.add(of(manager, name, rows)));
    return out;
  }

  /** One model, as {@link #all} shows it. */
  public static ModelStatus of(ModelManager manager, String name) {
    return of(manager, name, manager.status(name));
  }

  private static ModelStatus of(ModelManager manager, String name, List<ModelVersionStatus> rows) {
    ModelStatus.Builder b = of(name, rows, manager.traffic(name), manager.memory(name)).toBuilder();
    return b.setPinned(manager.isPinned(name)).build();
  }

  static ModelStatus of(String name, List<ModelVersionStatus> rows, TrafficSplit traffic, Map<Long, VersionMemory> memory) {
    ModelStatus.Builder b = ModelStatus.newBuilder().setName(name);
    for (ModelVersionStatus row : rows) {
      if (row.version().isEmpty()) {
        b.setReason(row.reason());
        continue;
      }
      long version = Long.parseLong(row.version());
      VersionStatus.Builder v = VersionStatus.newBuilder().setVersion(version).setState(state(row.state()))
          .setReason(row.reason()).setWeight(traffic.weights().getOrDefault(version, 0));
      VersionMemory m = memory.get(version);
      if (m != null) {
        v.setMemoryBytes(m.bytes());
      }
      traffic.labels().forEach((label, target) -> {
        if (target == version) {
          v.addLabels(label);
        }
      });
      b.addVersions(v);
    }
    return b.build();
  }

  static VersionState state(ModelVersionStatus.State state) {
    return switch (state) {
      case READY -> VersionState.READY;
      case LOADING -> VersionState.LOADING;
      case UNLOADING -> VersionState.UNLOADING;
      case UNAVAILABLE -> VersionState.FAILED;
    };
  }
}
