package io.quiver.examples.client;

import io.quiver.client.ModelControlClient;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.VersionStatus;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The control plane (port 8003): upload a version directory and load it, split traffic between two
 * versions, watch the change arrive. {@code java ... ControlPlaneExample HOST:8003 MODEL VERSION_DIR}.
 */
public final class ControlPlaneExample {
  private ControlPlaneExample() {}

  public static void main(String[] args) {
    if (args.length < 3) {
      System.err.println("usage: ControlPlaneExample HOST:PORT MODEL VERSION_DIR");
      System.exit(2);
    }
    run(args[0], args[1], Path.of(args[2]), System.out);
  }

  /** Uploads {@code versionDir} as a new version of {@code model}, sends it 10% of traffic; returns the model's status. */
  public static ModelStatus run(String target, String model, Path versionDir, PrintStream out) {
    try (ModelControlClient control = ModelControlClient.builder().target(target).build()) {
      for (ModelStatus status : control.listModels()) {
        out.println(status.getName() + " " + status.getVersionsList().stream().map(v -> v.getVersion() + ":" + v.getState()).toList());
      }
      var uploaded = control.upload(model, versionDir, ModelControlClient.UploadOptions.defaults());
      out.println("uploaded " + model + " version " + uploaded.getVersion() + " (" + uploaded.getBytes() + " bytes)");
      List<Long> before = control.listModels(model).get(0).getVersionsList().stream().map(VersionStatus::getVersion).toList();
      long stable = before.isEmpty() ? uploaded.getVersion() : before.get(before.size() - 1);
      control.loadVersions(model, stable, uploaded.getVersion());
      try (ModelControlClient.ModelWatch watch = control.watch(model, Duration.ofMinutes(1))) {
        ModelStatus split = control.setTraffic(model, Map.of(stable, 90, uploaded.getVersion(), 10),
            Map.of("canary", uploaded.getVersion()));
        ModelEvent first = watch.next(); // the current state, then changes
        out.println("watch #" + first.getSequence() + ": " + first.getModel().getVersionsCount() + " versions");
        out.println("traffic: " + split.getVersionsList().stream().map(v -> v.getVersion() + "=" + v.getWeight()).toList());
        return split;
      }
    }
  }
}
