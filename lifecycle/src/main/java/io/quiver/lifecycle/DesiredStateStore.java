package io.quiver.lifecycle;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.ModelRepository;
import io.quiver.proto.control.v1.DesiredModel;
import io.quiver.proto.control.v1.DesiredState;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.registry.WritableModelRepository;
import io.quiver.registry.WritableModelRepository.StoredObject;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The desired state (which models may load, with which versions, traffic weights and pins; which an
 * operator unloaded) kept as a JSON manifest beside the models in the repository
 * ({@link WritableModelRepository#DESIRED_STATE_NAME}), so that a restarted server, or a second one
 * pointed at the same repository, converges to it. Reads are conditional on the last seen tag (ETag
 * for S3, mtime for a directory), so polling is cheap. For a repository that cannot be written the
 * state is kept in memory only (it still decides what the poller may reload). Thread-safe (methods
 * are synchronized; they do I/O and are for control threads only).
 */
public final class DesiredStateStore {
  private static final Logger log = LoggerFactory.getLogger(DesiredStateStore.class);
  private static final int MAX_MANIFEST_BYTES = 4 << 20;

  private WritableModelRepository repository; // null: in memory only (also after the repository refused a write)
  private DesiredState current = DesiredState.getDefaultInstance();
  private String tag;

  public DesiredStateStore(WritableModelRepository repository) {
    this.repository = Objects.requireNonNull(repository, "repository");
  }

  private DesiredStateStore() {
    this.repository = null;
  }

  /** A store beside {@code repository} when it can be written, else one kept in memory. */
  public static DesiredStateStore forRepository(ModelRepository repository) {
    return forRepository(repository, true);
  }

  /** With {@code persist} false, a store kept in memory whatever the repository (it is never written). */
  public static DesiredStateStore forRepository(ModelRepository repository, boolean persist) {
    return persist && repository instanceof WritableModelRepository w ? new DesiredStateStore(w) : new DesiredStateStore();
  }

  /** Whether the state is written beside the repository (false: in memory only). */
  public synchronized boolean isPersistent() {
    return repository != null;
  }

  /** The state last read or written. */
  public synchronized DesiredState current() {
    return current;
  }

  /**
   * Reads the manifest when it changed since the last read or write.
   *
   * @return the new state, or null when unchanged
   * @throws InferenceException when the store cannot be read (UNAVAILABLE for S3 down) or the manifest
   *     does not parse (INVALID_ARGUMENT)
   */
  public synchronized DesiredState refresh() {
    if (repository == null) {
      return null;
    }
    StoredObject read = repository.readDesiredState(tag);
    if (read == null) {
      return null;
    }
    DesiredState next = read.bytes() == null ? DesiredState.getDefaultInstance() : parse(read.bytes());
    tag = read.tag();
    if (next.equals(current)) {
      return null;
    }
    current = next;
    return next;
  }

  /**
   * Reads the latest manifest, applies {@code change} and writes the result back.
   *
   * @throws InferenceException when the manifest cannot be read or written (the state is then unchanged)
   */
  public synchronized DesiredState update(UnaryOperator<DesiredState> change) {
    if (repository == null) {
      current = change.apply(current);
      return current;
    }
    try {
      refresh();
    } catch (InferenceException e) {
      log.warn("desired state: could not re-read {} before updating it: {}", repository.location(), e.getMessage());
      throw e;
    }
    DesiredState next = change.apply(current);
    if (!next.equals(current)) {
      try {
        byte[] bytes = JsonFormat.printer().print(next).getBytes(StandardCharsets.UTF_8);
        repository.writeDesiredState(bytes);
      } catch (InvalidProtocolBufferException e) {
        throw InferenceException.internal("cannot print the desired state: " + e, e);
      } catch (InferenceException e) {
        if (isReadOnly(e)) {
          // A read-only repository (KServe mounts /mnt/models read-only): keep the state here from now on.
          log.warn("desired state: {} cannot be written ({}); it is kept in memory from now on",
              repository.location(), e.getMessage());
          repository = null;
          current = next;
          tag = null;
          return next;
        }
        log.warn("desired state: could not write {}: {}", repository.location(), e.getMessage());
        throw e;
      }
      current = next;
      tag = null; // our own write: the next refresh reads it once and then compares tags again
    }
    return next;
  }

  /** A refusal that retrying will not change: no permission, or a read-only file system or bucket policy. */
  static boolean isReadOnly(InferenceException e) {
    if (e.code() == io.quiver.core.ErrorCode.FAILED_PRECONDITION) {
      return true; // S3: access denied
    }
    for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
      if (t instanceof java.nio.file.AccessDeniedException || t instanceof java.nio.file.ReadOnlyFileSystemException) {
        return true;
      }
      if (t instanceof java.nio.file.FileSystemException f && f.getReason() != null
          && f.getReason().toLowerCase(java.util.Locale.ROOT).contains("read-only")) {
        return true;
      }
    }
    return false;
  }

  static DesiredState parse(byte[] bytes) {
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw InferenceException.invalidArgument("desired-state manifest is %d bytes; at most %d", bytes.length,
          MAX_MANIFEST_BYTES);
    }
    DesiredState.Builder b = DesiredState.newBuilder();
    try {
      JsonFormat.parser().merge(new String(bytes, StandardCharsets.UTF_8), b);
    } catch (InvalidProtocolBufferException e) {
      throw InferenceException.invalidArgument("desired-state manifest %s does not parse: %s",
          WritableModelRepository.DESIRED_STATE_NAME, e.getMessage());
    }
    return b.build();
  }

  // ---------------------------------------------------------------------------------------------
  // Conversions between the manifest and the manager's settings

  /** The version policy a desired model asks for, or null for the config's own. */
  public static ModelVersionPolicy policyOf(DesiredModel model) {
    if (model.getVersionsCount() > 0) {
      return ModelVersionPolicy.newBuilder()
          .setSpecific(ModelVersionPolicy.Specific.newBuilder().addAllVersions(model.getVersionsList())).build();
    }
    if (model.getAll()) {
      return ModelVersionPolicy.newBuilder().setAll(ModelVersionPolicy.All.getDefaultInstance()).build();
    }
    if (model.getLatest() > 0) {
      return ModelVersionPolicy.newBuilder()
          .setLatest(ModelVersionPolicy.Latest.newBuilder().setNumVersions(model.getLatest())).build();
    }
    return null;
  }

  public static TrafficSplit trafficOf(DesiredModel model) {
    Map<Long, Integer> weights = new HashMap<>();
    for (TrafficWeight w : model.getWeightsList()) {
      weights.put(w.getVersion(), w.getWeight());
    }
    return new TrafficSplit(weights, model.getLabelsMap());
  }

  public static DesiredModel.Builder withTraffic(DesiredModel.Builder model, TrafficSplit split) {
    model.clearWeights().clearLabels().putAllLabels(split.labels());
    split.weights().forEach((v, w) -> model.addWeights(TrafficWeight.newBuilder().setVersion(v).setWeight(w)));
    return model;
  }

  /** Writes {@code policy} into the desired model's versions / latest / all (null: the config's policy). */
  public static DesiredModel.Builder withPolicy(DesiredModel.Builder model, ModelVersionPolicy policy) {
    model.clearVersions().setLatest(0).setAll(false);
    if (policy == null) {
      return model;
    }
    switch (policy.getPolicyChoiceCase()) {
      case SPECIFIC -> model.addAllVersions(policy.getSpecific().getVersionsList());
      case ALL -> model.setAll(true);
      case LATEST -> model.setLatest(policy.getLatest().getNumVersions());
      default -> { }
    }
    return model;
  }
}
