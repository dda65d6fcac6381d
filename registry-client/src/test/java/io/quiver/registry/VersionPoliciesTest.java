package io.quiver.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.proto.inference.ModelVersionPolicy;
import java.util.SortedSet;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class VersionPoliciesTest {
  private static final SortedSet<Long> PRESENT = new TreeSet<>(java.util.List.of(1L, 2L, 3L, 7L));

  private static ModelVersionPolicy latest(int n) {
    return ModelVersionPolicy.newBuilder().setLatest(ModelVersionPolicy.Latest.newBuilder().setNumVersions(n)).build();
  }

  private static ModelVersionPolicy specific(long... versions) {
    ModelVersionPolicy.Specific.Builder b = ModelVersionPolicy.Specific.newBuilder();
    for (long v : versions) {
      b.addVersions(v);
    }
    return ModelVersionPolicy.newBuilder().setSpecific(b).build();
  }

  @Test
  void select_withoutPolicy_isTheLatestVersion() {
    assertThat(VersionPolicies.select(null, PRESENT).selected()).containsExactly(7L);
    assertThat(VersionPolicies.select(ModelVersionPolicy.getDefaultInstance(), PRESENT).selected()).containsExactly(7L);
    assertThat(VersionPolicies.select(null, PRESENT).policy()).isEqualTo("latest 1");
  }

  @Test
  void select_latestN_isTheNHighest() {
    assertThat(VersionPolicies.select(latest(2), PRESENT).selected()).containsExactly(3L, 7L);
    assertThat(VersionPolicies.select(latest(10), PRESENT).selected()).containsExactly(1L, 2L, 3L, 7L);
  }

  @Test
  void select_all_isEveryVersion() {
    ModelVersionPolicy all = ModelVersionPolicy.newBuilder().setAll(ModelVersionPolicy.All.getDefaultInstance()).build();
    VersionSelection selection = VersionPolicies.select(all, PRESENT);
    assertThat(selection.selected()).containsExactly(1L, 2L, 3L, 7L);
    assertThat(selection.policy()).isEqualTo("all");
  }

  @Test
  void select_specific_reportsAbsentVersionsInsteadOfFailing() {
    VersionSelection selection = VersionPolicies.select(specific(2, 5, 7), PRESENT);
    assertThat(selection.selected()).containsExactly(2L, 7L);
    assertThat(selection.missing()).containsExactly(5L);
    assertThat(selection.policy()).isEqualTo("specific [2, 5, 7]");
  }

  @Test
  void select_nothingPresent_isEmptyNotAnError() {
    assertThat(VersionPolicies.select(latest(1), new TreeSet<>()).isEmpty()).isTrue();
    VersionSelection none = VersionPolicies.select(specific(4), PRESENT);
    assertThat(none.isEmpty()).isTrue();
    assertThat(none.missing()).containsExactly(4L);
  }

  @Test
  void select_latestZero_isInvalidArgument() {
    assertThatThrownBy(() -> VersionPolicies.select(latest(0), PRESENT))
        .hasFieldOrPropertyWithValue("code", ErrorCode.INVALID_ARGUMENT)
        .hasMessageContaining("num_versions must be >= 1; was 0");
  }
}
