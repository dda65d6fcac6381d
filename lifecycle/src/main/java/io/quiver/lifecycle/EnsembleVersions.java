package io.quiver.lifecycle;

import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.ModelRepository;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelEnsembling;
import io.quiver.registry.ModelConfigValidator;
import io.quiver.registry.VersionPolicies;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the lifecycle knows about ensembles ({@code platform: "ensemble"}, docs/ensembles.md): a version
 * has no model file, no runtime and no instances, only a scheduler, which the scheduler factory builds
 * from the config (checking the graph against the step models then); and an ensemble loads after the
 * models its steps call, which load with it when they are not loaded yet. Stateless.
 */
final class EnsembleVersions {
  /** The runtime name an ensemble version reports. */
  static final String RUNTIME = "ensemble";

  private EnsembleVersions() {}

  /** Loads one ensemble version: the config as declared (nothing to complete), and its scheduler. */
  static LoadedVersion load(RepositoryModel model, long version, SchedulerFactory schedulers, VersionFiles files) {
    String label = "model '" + model.name() + "' version " + version;
    ModelConfig declared = model.declaredConfig();
    ModelConfig.Builder completed = declared.toBuilder().setName(model.name());
    if (!completed.hasVersionPolicy()) {
      completed.setVersionPolicy(VersionPolicies.DEFAULT_POLICY);
    }
    ModelConfig config = completed.build();
    ModelConfigValidator.validate(config, model.name(), "of " + label);
    ModelSignature signature = ModelSignature.of(config);
    InferenceScheduler scheduler = schedulers.create(model.name(), version, config, signature, List.of());
    if (scheduler == null) {
      throw InferenceException.internal(label + ": scheduler factory returned null", null);
    }
    // No model file and no runtime: the version holds only its config (and the .keep file git needs).
    return new LoadedVersion(model.name(), version, declared, config, signature, scheduler, List.of(), RUNTIME,
        VersionMemory.ofFiles(files.bytes()), files.fingerprint(), false, null);
  }

  /** The models an ensemble's steps call, in step order without repeats; empty for anything else. */
  static List<String> stepModels(ModelConfig config) {
    if (!ModelConfigValidator.isEnsemble(config)) {
      return List.of();
    }
    Set<String> names = new LinkedHashSet<>();
    for (ModelEnsembling.Step step : config.getEnsembleScheduling().getStepList()) {
      names.add(step.getModelName());
    }
    return List.copyOf(names);
  }

  /** The step models of the named model as the repository declares it; empty when it is no ensemble or unreadable. */
  static List<String> stepModels(ModelRepository repository, String name) {
    try {
      return stepModels(repository.model(name).declaredConfig());
    } catch (RuntimeException e) {
      return List.of(); // the load itself reports why the model cannot be read
    }
  }

  /**
   * {@code names} and, before each ensemble, the models its steps call (transitively), in waves: every
   * model of a wave depends only on models of earlier waves, so each wave can load in parallel once the
   * one before it is done. A dependency cycle puts the rest in one last wave (their loads then fail,
   * naming the step).
   */
  static List<List<String>> loadWaves(ModelRepository repository, List<String> names) {
    Set<String> present = null; // listed once, only if an ensemble names a model not asked for
    List<String> all = new ArrayList<>();
    Map<String, List<String>> dependencies = new java.util.HashMap<>();
    java.util.ArrayDeque<String> toVisit = new java.util.ArrayDeque<>(names);
    while (!toVisit.isEmpty()) {
      String name = toVisit.poll();
      if (dependencies.containsKey(name)) {
        continue;
      }
      List<String> steps = stepModels(repository, name);
      dependencies.put(name, steps);
      all.add(name);
      for (String step : steps) {
        if (!names.contains(step)) {
          if (present == null) {
            present = new java.util.HashSet<>(repository.modelNames());
          }
          if (!present.contains(step)) {
            continue; // not in the repository: the ensemble's load names the missing step
          }
        }
        toVisit.add(step);
      }
    }
    for (Map.Entry<String, List<String>> e : dependencies.entrySet()) {
      e.setValue(e.getValue().stream().filter(dependencies::containsKey).toList());
    }
    List<List<String>> waves = new ArrayList<>();
    Set<String> placed = new java.util.HashSet<>();
    while (placed.size() < all.size()) {
      List<String> wave = new ArrayList<>();
      for (String name : all) {
        if (!placed.contains(name) && placed.containsAll(dependencies.get(name))) {
          wave.add(name);
        }
      }
      if (wave.isEmpty()) { // a cycle: load what is left together and let the graph checks report it
        for (String name : all) {
          if (!placed.contains(name)) {
            wave.add(name);
          }
        }
      }
      wave.sort(null);
      placed.addAll(wave);
      waves.add(wave);
    }
    return waves;
  }
}
