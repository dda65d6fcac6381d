package io.quiver.lifecycle;

import com.github.benmanes.caffeine.cache.Caffeine;
import io.quiver.proto.inference.ModelConfig;
import java.util.Map;

/**
 * What earlier loads of a model version learned that its next load can reuse, as long as it loads the
 * same files (their {@link VersionFiles#fingerprint}) with the same declared config: the completed
 * config (completing it opens the model once more; for ONNX Runtime a whole session) and what the
 * version cost (the estimate its next load reserves, and the runtime's report that can refuse it up
 * front). New files or a new config make a version new: nothing learned before applies (a version that
 * once reported more than the budget is not refused for it after it got smaller files or fewer
 * instances). The runtime and model file a load picks follow from the declared config and the files,
 * so they are not part of the key.
 *
 * <p>Bounded: the last {@value #MAX_VERSIONS} versions used, least recently used out first (a version
 * forgotten is estimated as one never loaded). Thread-safe.
 */
final class VersionHistory {
  static final int MAX_VERSIONS = 4096;

  /**
   * @param completed the completed config (normalized and validated); null until a load completed it
   * @param smallestBytes the smallest cost measured over its loads (resident growth only errs upwards); -1: none yet
   * @param reportedBytes what its runtime reported at its last load; -1: no report, or none yet
   */
  record Learned(ModelConfig completed, long smallestBytes, long reportedBytes) {}

  private record Entry(ModelConfig declared, String fingerprint, Learned learned) {
    boolean sameSource(ModelConfig declared, String fingerprint) {
      return this.fingerprint.equals(fingerprint) && this.declared.equals(declared);
    }
  }

  private final Map<String, Entry> entries = Caffeine.newBuilder().maximumSize(MAX_VERSIONS).<String, Entry>build().asMap();

  /** What loads of these files with this declared config learned; null when there were none (or they were forgotten). */
  Learned get(String model, long version, ModelConfig declared, String fingerprint) {
    Entry entry = entries.get(key(model, version));
    return entry != null && entry.sameSource(declared, fingerprint) ? entry.learned : null;
  }

  /** A load completed the version's config. */
  void completed(String model, long version, ModelConfig declared, String fingerprint, ModelConfig completed) {
    entries.merge(key(model, version), new Entry(declared, fingerprint, new Learned(completed, -1, -1)),
        (old, now) -> old.sameSource(declared, fingerprint)
            ? new Entry(declared, fingerprint, new Learned(completed, old.learned.smallestBytes, old.learned.reportedBytes))
            : now);
  }

  /** A load measured what the version costs. */
  void measured(String model, long version, ModelConfig declared, String fingerprint, VersionMemory memory) {
    entries.merge(key(model, version), new Entry(declared, fingerprint, new Learned(null, memory.bytes(), memory.reportedBytes())),
        (old, now) -> {
          if (!old.sameSource(declared, fingerprint)) {
            return now;
          }
          long smallest = old.learned.smallestBytes < 0 ? memory.bytes() : Math.min(old.learned.smallestBytes, memory.bytes());
          return new Entry(declared, fingerprint, new Learned(old.learned.completed, smallest, memory.reportedBytes()));
        });
  }

  private static String key(String model, long version) {
    return model + "/" + version;
  }
}
