package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelVersionPolicy;
import java.util.Iterator;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * Applies a model's {@code version_policy} (Triton / TF Serving semantics) to the versions present:
 * {@code latest { num_versions: N }} the N highest (latest 1 when the config has no policy),
 * {@code all} every version, {@code specific { versions: [...] }} those listed, with the listed ones
 * that are absent reported in {@link VersionSelection#missing()} rather than failing. Stateless.
 */
public final class VersionPolicies {
  /** The policy a config without version_policy gets. */
  public static final ModelVersionPolicy DEFAULT_POLICY = ModelVersionPolicy.newBuilder()
      .setLatest(ModelVersionPolicy.Latest.newBuilder().setNumVersions(1))
      .build();

  private VersionPolicies() {}

  /**
   * @param policy the config's policy; null or one with no choice set means latest 1
   * @param available version numbers present in the repository
   * @throws InferenceException INVALID_ARGUMENT for latest with num_versions 0 (the validator rejects
   *     that earlier; this guards callers that skip it)
   */
  public static VersionSelection select(ModelVersionPolicy policy, SortedSet<Long> available) {
    ModelVersionPolicy effective = effective(policy);
    TreeSet<Long> selected = new TreeSet<>();
    TreeSet<Long> missing = new TreeSet<>();
    switch (effective.getPolicyChoiceCase()) {
      case ALL -> selected.addAll(available);
      case SPECIFIC -> {
        for (long v : effective.getSpecific().getVersionsList()) {
          (available.contains(v) ? selected : missing).add(v);
        }
      }
      default -> {
        long n = Integer.toUnsignedLong(effective.getLatest().getNumVersions());
        if (n < 1) {
          throw InferenceException.invalidArgument("version_policy.latest.num_versions must be >= 1; was %d", n);
        }
        Iterator<Long> newestFirst = new TreeSet<>(available).descendingIterator();
        for (long i = 0; i < n && newestFirst.hasNext(); i++) {
          selected.add(newestFirst.next());
        }
      }
    }
    return new VersionSelection(selected, missing, describe(effective));
  }

  /** The policy in words: "latest 2", "all", "specific [1, 3]". */
  public static String describe(ModelVersionPolicy policy) {
    ModelVersionPolicy effective = effective(policy);
    return switch (effective.getPolicyChoiceCase()) {
      case ALL -> "all";
      case SPECIFIC -> "specific " + effective.getSpecific().getVersionsList();
      default -> "latest " + Integer.toUnsignedLong(effective.getLatest().getNumVersions());
    };
  }

  private static ModelVersionPolicy effective(ModelVersionPolicy policy) {
    return policy == null || policy.getPolicyChoiceCase() == ModelVersionPolicy.PolicyChoiceCase.POLICYCHOICE_NOT_SET
        ? DEFAULT_POLICY
        : policy;
  }
}
