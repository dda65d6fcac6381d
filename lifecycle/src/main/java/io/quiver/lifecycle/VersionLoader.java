package io.quiver.lifecycle;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.InstanceSpec;
import io.quiver.core.spi.ModelRunner;
import io.quiver.core.spi.ModelRuntime;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.core.spi.SchedulerFactory;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelInstanceGroup;
import io.quiver.registry.ModelConfigValidator;
import io.quiver.registry.VersionPolicies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.StringJoiner;

/**
 * Loads one model version: picks the runtime, completes the config, opens one runner per instance,
 * warms them up and builds the scheduler, measuring what the version costs in memory on the way (its
 * files' size, the resident-set growth while its instances open and warm up, and the runtime's own
 * report). Runs on a load-pool thread; any number of loads run at once (the measured section one at
 * a time when the meter is exclusive). On failure everything opened so far is closed before the
 * exception leaves.
 *
 * <p>A version's completed config is kept in the manager's {@link VersionHistory} and reused while its
 * declared config and files stay the same: completing it opens the model once more (ONNX Runtime: a
 * whole session, as much CPU as one instance's), and a model evicted under the memory budget is
 * loaded again and again unchanged. Thread-safe: its state (the runtimes started) and the history are
 * concurrent structures.
 */
final class VersionLoader {
  /** Config parameter that pins a model: never evicted under the memory budget. */
  static final String PINNED_PARAMETER = "quiver.pinned";

  private final List<ModelRuntime> runtimes;
  private final SchedulerFactory schedulers;
  private final MemoryMeter meter;
  // Runtimes that have opened an instance in this process: the first one's resident growth includes the
  // runtime's own start (ONNX Runtime's environment: tens of MiB), so it is not charged to that version.
  private final java.util.Set<String> started = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private final VersionHistory history;

  VersionLoader(List<ModelRuntime> runtimes, SchedulerFactory schedulers, MemoryMeter meter, VersionHistory history) {
    this.history = history;
    this.runtimes = runtimes;
    this.schedulers = schedulers;
    this.meter = meter;
  }

  /** @throws InferenceException with the reason the version cannot serve */
  LoadedVersion load(RepositoryModel model, long version) {
    Path dir = model.versionDirectory(version);
    return load(model, version, dir, VersionFiles.of(dir));
  }

  /** As {@link #load(RepositoryModel, long)}, with the version's directory already fetched and its files read. */
  LoadedVersion load(RepositoryModel model, long version, Path dir, VersionFiles files) {
    String label = "model '" + model.name() + "' version " + version;
    ModelConfig declared = model.declaredConfig();
    if (ModelConfigValidator.isEnsemble(declared)) {
      return EnsembleVersions.load(model, version, schedulers, files);
    }
    ModelRuntime runtime = pickRuntime(declared, dir, label);
    String fileName = declared.getDefaultModelFilename().isEmpty()
        ? runtime.defaultModelFilename()
        : declared.getDefaultModelFilename();
    Path modelFile = dir.resolve(fileName);
    if (!Files.exists(modelFile)) {
      throw InferenceException.notFound("%s: model file %s does not exist", label, modelFile);
    }
    Boolean pinned = io.quiver.core.runtime.ModelParameters.boolValue(declared, PINNED_PARAMETER);
    ModelConfig completed = completedConfig(runtime, declared, modelFile, model.name(), version, files, label);
    ModelSignature signature = ModelSignature.of(completed);
    List<List<String>> labels = labels(completed, signature, dir, label);
    List<InstanceSpec> instances = instances(completed);

    List<ModelRunner> runners = new ArrayList<>(instances.size());
    try {
      long grown;
      MemoryMeter.Section measured = meter.begin();
      try {
        for (InstanceSpec instance : instances) {
          runners.add(runtime.newRunner(completed, modelFile, instance));
        }
        VersionWarmup.run(label, completed, signature, runners, dir);
      } finally {
        grown = measured.end();
      }
      if (started.add(runtime.name())) {
        grown = -1; // the runtime's start-up, not this version's
      }
      long reported = -1;
      for (ModelRunner runner : runners) {
        long r = runner.memoryBytes();
        if (r >= 0) {
          reported = Math.max(0, reported) + r;
        }
      }
      InferenceScheduler scheduler = schedulers.create(model.name(), version, completed, signature, runners);
      if (scheduler == null) {
        throw InferenceException.internal(label + ": scheduler factory returned null", null);
      }
      return new LoadedVersion(model.name(), version, declared, completed, signature, scheduler, runners, runtime.name(),
          VersionMemory.of(files.bytes(), grown, reported), files.fingerprint(), Boolean.TRUE.equals(pinned), labels);
    } catch (RuntimeException | Error e) {
      closeQuietly(runners, e);
      throw e;
    }
  }

  /** The version's completed config: the one an earlier load of the same files and declared config completed, else the runtime's. */
  private ModelConfig completedConfig(ModelRuntime runtime, ModelConfig declared, Path modelFile, String name,
      long version, VersionFiles files, String label) {
    VersionHistory.Learned learned = history.get(name, version, declared, files.fingerprint());
    if (learned != null && learned.completed() != null) {
      return learned.completed();
    }
    ModelConfig completed = normalize(runtime.completeConfig(declared, modelFile), name, runtime);
    ModelConfigValidator.validate(completed, name, "(completed by " + runtime.name() + ") of " + label);
    history.completed(name, version, declared, files.fingerprint(), completed);
    return completed;
  }

  /** Largest label file read, in bytes. */
  static final long MAX_LABEL_FILE_BYTES = 16L << 20;

  /**
   * The lines of each output's {@code label_filename}, looked for in the model directory (Triton's place)
   * and then in the version directory (where a remote repository's cache has it: an S3 repository fetches
   * a version's directory only). The name must stay inside the model directory (relative, no '..'); an
   * oversized file fails the load. A file that is not there is a warning, not a load failure (Triton fails
   * the load): the output's classification then answers "score:index" without labels.
   */
  static List<List<String>> labels(ModelConfig completed, ModelSignature signature, Path versionDir, String label) {
    List<List<String>> labels = null;
    for (io.quiver.proto.inference.ModelOutput output : completed.getOutputList()) {
      String file = output.getLabelFilename();
      if (file.isEmpty()) {
        continue;
      }
      Path name = Path.of(file).normalize();
      if (name.isAbsolute() || name.startsWith("..") || file.contains("\\")) {
        throw InferenceException.invalidArgument("%s: label_filename '%s' of output '%s' must name a file inside the"
            + " model directory", label, file, output.getName());
      }
      Path modelDir = versionDir.toAbsolutePath().getParent();
      Path path = modelDir != null && Files.isRegularFile(modelDir.resolve(file)) ? modelDir.resolve(file)
          : versionDir.resolve(file);
      try {
        if (Files.size(path) > MAX_LABEL_FILE_BYTES) {
          throw InferenceException.invalidArgument("%s: label_filename '%s' of output '%s' is over %d bytes", label, file,
              output.getName(), MAX_LABEL_FILE_BYTES);
        }
        List<String> lines = List.copyOf(Files.readAllLines(path, java.nio.charset.StandardCharsets.UTF_8));
        if (labels == null) {
          labels = new ArrayList<>(java.util.Collections.nCopies(signature.outputs().size(), (List<String>) null));
        }
        labels.set(signature.outputIndex(output.getName()), lines);
      } catch (java.io.IOException | java.io.UncheckedIOException e) {
        org.slf4j.LoggerFactory.getLogger(VersionLoader.class).warn("{}: cannot read label_filename '{}' of output '{}'"
            + " (looked in {} and {}): {}; its classification answers carry no labels", label, file, output.getName(),
            modelDir, versionDir, e.toString());
      }
    }
    return labels == null ? null : java.util.Collections.unmodifiableList(labels);
  }

  /**
   * The runtime for a version: the one that handles the config's platform/backend when it names one;
   * otherwise the first (in discovery order) whose default model file is in the version directory.
   */
  ModelRuntime pickRuntime(ModelConfig declared, Path dir, String label) {
    if (runtimes.isEmpty()) {
      throw InferenceException.failedPrecondition("%s: no model runtimes are installed", label);
    }
    String platform = declared.getPlatform();
    String backend = declared.getBackend();
    if (!platform.isEmpty() || !backend.isEmpty()) {
      for (ModelRuntime runtime : runtimes) {
        if (runtime.handles(platform, backend)) {
          return runtime;
        }
      }
      throw InferenceException.invalidArgument("%s: no runtime handles platform '%s' backend '%s'; installed: %s",
          label, platform, backend, describeRuntimes());
    }
    StringJoiner lookedFor = new StringJoiner(", ");
    for (ModelRuntime runtime : runtimes) {
      if (Files.exists(dir.resolve(runtime.defaultModelFilename()))) {
        return runtime;
      }
      lookedFor.add(runtime.defaultModelFilename() + " (" + runtime.name() + ")");
    }
    throw InferenceException.invalidArgument(
        "%s: the config names no platform or backend, and %s holds none of the files the installed runtimes "
            + "look for: %s; set platform in config.pbtxt or add the model file", label, dir, lookedFor);
  }

  /**
   * Makes the completed config say what will run: the model's name, the platform, the version policy,
   * and instance groups with explicit counts and kinds (Triton's defaults: one CPU instance; KIND_AUTO
   * is CPU since no GPU is detected yet).
   */
  static ModelConfig normalize(ModelConfig completed, String name, ModelRuntime runtime) {
    ModelConfig.Builder b = completed.toBuilder().setName(name);
    if (b.getPlatform().isEmpty() && b.getBackend().isEmpty()) {
      b.setPlatform(runtime.platform());
    }
    if (!b.hasVersionPolicy()) {
      b.setVersionPolicy(VersionPolicies.DEFAULT_POLICY);
    }
    if (b.getInstanceGroupCount() == 0) {
      b.addInstanceGroup(ModelInstanceGroup.newBuilder().setName(name).setCount(1).setKind(ModelInstanceGroup.Kind.KIND_CPU));
    } else {
      for (int i = 0; i < b.getInstanceGroupCount(); i++) {
        ModelInstanceGroup.Builder g = b.getInstanceGroupBuilder(i);
        if (g.getName().isEmpty()) {
          g.setName(name + "_" + i);
        }
        if (g.getCount() == 0) {
          g.setCount(1);
        }
        if (g.getKind() == ModelInstanceGroup.Kind.KIND_AUTO) {
          g.setKind(ModelInstanceGroup.Kind.KIND_CPU);
        }
      }
    }
    return b.build();
  }

  /** One spec per instance: count per group, and for KIND_GPU count on each listed GPU (GPU 0 when none is listed). */
  static List<InstanceSpec> instances(ModelConfig normalized) {
    List<InstanceSpec> specs = new ArrayList<>();
    for (ModelInstanceGroup group : normalized.getInstanceGroupList()) {
      switch (group.getKind()) {
        case KIND_GPU -> {
          List<Integer> gpus = group.getGpusCount() == 0 ? List.of(0) : group.getGpusList();
          for (int gpu : gpus) {
            for (int i = 0; i < group.getCount(); i++) {
              specs.add(new InstanceSpec(group.getName(), specs.size(), InstanceSpec.Kind.GPU, gpu));
            }
          }
        }
        case KIND_CPU, KIND_AUTO -> {
          for (int i = 0; i < group.getCount(); i++) {
            specs.add(new InstanceSpec(group.getName(), specs.size(), InstanceSpec.Kind.CPU, -1));
          }
        }
        default -> throw InferenceException.invalidArgument("model '%s': instance_group '%s' kind %s is not supported",
            normalized.getName(), group.getName(), group.getKind());
      }
    }
    return specs;
  }

  /** Closes a failed or unloaded version's runners, last opened first; failures are attached to {@code cause}. */
  static void closeQuietly(List<ModelRunner> runners, Throwable cause) {
    for (int i = runners.size() - 1; i >= 0; i--) {
      try {
        runners.get(i).close();
      } catch (RuntimeException e) {
        if (cause != null) {
          cause.addSuppressed(e);
        }
      }
    }
  }

  private String describeRuntimes() {
    StringJoiner out = new StringJoiner(", ");
    for (ModelRuntime runtime : runtimes) {
      out.add(runtime.name() + " (" + runtime.platform() + ")");
    }
    return out.toString();
  }

  /** A failure as one line for state reasons and logs: the message of ours, the type and message of anything else. */
  static String reason(Throwable t) {
    if (t instanceof InferenceException e) {
      return e.getMessage();
    }
    String message = t.getMessage();
    return t.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }

  static ErrorCode code(Throwable t) {
    return t instanceof InferenceException e ? e.code() : ErrorCode.INTERNAL;
  }
}
