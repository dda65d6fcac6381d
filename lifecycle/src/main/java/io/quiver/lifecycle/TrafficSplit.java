package io.quiver.lifecycle;

import io.quiver.core.InferenceException;
import java.util.Map;
import java.util.TreeMap;

/**
 * A model's traffic settings: relative weights per version for requests that name no version, and
 * labels (stable, canary...) that name versions. Immutable.
 *
 * @param weights version → relative weight (≥ 0); empty means the highest READY version takes all
 * @param labels label → version
 */
public record TrafficSplit(Map<Long, Integer> weights, Map<String, Long> labels) {
  public static final TrafficSplit NONE = new TrafficSplit(Map.of(), Map.of());
  /** Upper bound of one weight (weights are relative; this keeps their sum inside an int). */
  public static final int MAX_WEIGHT = 1_000_000;

  public TrafficSplit {
    weights = java.util.Collections.unmodifiableMap(new TreeMap<>(weights));
    labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
    for (Map.Entry<Long, Integer> e : weights.entrySet()) {
      if (e.getKey() < 0) {
        throw InferenceException.invalidArgument("traffic weight version must be >= 0; was %d", e.getKey());
      }
      if (e.getValue() < 0 || e.getValue() > MAX_WEIGHT) {
        throw InferenceException.invalidArgument("traffic weight of version %d must be between 0 and %d; was %d",
            e.getKey(), MAX_WEIGHT, e.getValue());
      }
    }
    if (weights.size() > 64) {
      throw InferenceException.invalidArgument("at most 64 weighted versions; was %d", weights.size());
    }
    for (Map.Entry<String, Long> e : labels.entrySet()) {
      String label = e.getKey();
      if (label.isEmpty() || label.length() > 63 || !label.matches("[A-Za-z][A-Za-z0-9_.-]*")) {
        throw InferenceException.invalidArgument(
            "traffic label must start with a letter and hold only letters, digits, '_', '.', '-' (at most 63); was '%s'",
            io.quiver.registry.ModelNames.printable(label));
      }
      if (e.getValue() < 0) {
        throw InferenceException.invalidArgument("label '%s' must name a version >= 0; was %d", label, e.getValue());
      }
    }
  }

  public boolean isEmpty() {
    return weights.isEmpty() && labels.isEmpty();
  }
}
