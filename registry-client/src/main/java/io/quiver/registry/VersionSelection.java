package io.quiver.registry;

import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * What a version policy picked from the versions a repository holds.
 *
 * @param selected versions to serve, ascending; empty when the repository holds none the policy wants
 * @param missing versions the policy names (specific) that the repository does not hold, ascending
 * @param policy the policy in words, for messages ("latest 1", "all", "specific [1, 3]")
 */
public record VersionSelection(SortedSet<Long> selected, SortedSet<Long> missing, String policy) {
  public VersionSelection {
    selected = Collections.unmodifiableSortedSet(new TreeSet<>(selected));
    missing = Collections.unmodifiableSortedSet(new TreeSet<>(missing));
  }

  public boolean isEmpty() {
    return selected.isEmpty();
  }
}
