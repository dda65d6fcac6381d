package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class LoadRangeTest {
  @Test
  void geometric_doublesUpToEnd() {
    assertThat(LoadRange.parse("1:256:x2").intValues()).containsExactly(1, 2, 4, 8, 16, 32, 64, 128, 256);
  }

  @Test
  void geometric_alwaysEndsAtEnd() {
    assertThat(LoadRange.parse("1:100:x4").intValues()).containsExactly(1, 4, 16, 64, 100);
  }

  @Test
  void linear_stepsAndIncludesEnd() {
    assertThat(LoadRange.parse("4:32:4").intValues()).containsExactly(4, 8, 12, 16, 20, 24, 28, 32);
    assertThat(LoadRange.parse("1:10:4").intValues()).containsExactly(1, 5, 9, 10);
  }

  @Test
  void fractionalRates_doNotDrift() {
    assertThat(LoadRange.parse("0.5:1.5:0.1").values()).hasSize(11).last().isEqualTo(1.5);
  }

  @Test
  void singleValue_andStartEnd() {
    assertThat(LoadRange.parse("64").intValues()).containsExactly(64);
    assertThat(LoadRange.parse("2:4").intValues()).containsExactly(2, 3, 4);
  }

  @Test
  void invalid_isRejectedNamingTheText() {
    assertThatThrownBy(() -> LoadRange.parse("8:4")).hasMessageContaining("8:4");
    assertThatThrownBy(() -> LoadRange.parse("1:8:x1")).hasMessageContaining("factor");
    assertThatThrownBy(() -> LoadRange.parse("a:b")).hasMessageContaining("not a number");
    assertThatThrownBy(() -> LoadRange.parse("1:1000000:0.001")).hasMessageContaining("more than");
  }

  @Test
  void list_keepsOrderAndRepeats_forLoadsThatRiseAndFall() {
    assertThat(LoadRange.parse("500,1000,2000,1000,500").values()).containsExactly(500.0, 1000.0, 2000.0, 1000.0, 500.0);
    assertThatThrownBy(() -> LoadRange.parse("500,-1")).hasMessageContaining("500,-1");
  }

  @Test
  void rejections_areResourceExhaustedOrUnavailable_only() {
    assertThat(LoadGenerator.isRejection(io.grpc.Status.Code.RESOURCE_EXHAUSTED)).isTrue();
    assertThat(LoadGenerator.isRejection(io.grpc.Status.Code.UNAVAILABLE)).isTrue();
    assertThat(LoadGenerator.isRejection(io.grpc.Status.Code.DEADLINE_EXCEEDED)).isFalse();
    assertThat(LoadGenerator.isRejection(io.grpc.Status.Code.INVALID_ARGUMENT)).isFalse();
  }
}
