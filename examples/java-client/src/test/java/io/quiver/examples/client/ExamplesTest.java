package io.quiver.examples.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import io.quiver.client.QuiverException;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.VersionStatus;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every runnable example, run against a real Quiver serving the example models (and its control plane). */
class ExamplesTest {
  @TempDir static Path repository;
  @TempDir static Path uploads;
  static LiveQuiver quiver;
  private final ByteArrayOutputStream printed = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(printed, true, StandardCharsets.UTF_8);

  @BeforeAll
  static void start() throws Exception {
    ExampleModels.writeExampleRepository(repository);
    quiver = LiveQuiver.start(LiveQuiver.options(repository).withControlPlane(
        ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1")));
  }

  @AfterAll
  static void stop() {
    quiver.close();
  }

  @Test
  void blocking_typedCallsReturnTheModelsAnswers() {
    int[] sums = BlockingExample.run(quiver.target(), out);
    assertThat(sums).containsExactly(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    assertThat(printed.toString(StandardCharsets.UTF_8))
        .contains("live=true ready=true identity_fp32 ready=true")
        .contains("identity_fp32 -> [0.0, 0.5, 1.0")
        .contains("OUTPUT1=[-1, 0, 1, 2");
  }

  @Test
  void async_manyCallsInFlight_allAnswered() {
    int[] classes = AsyncExample.run(quiver.target(), 64, out);
    assertThat(classes).hasSize(64);
    assertThat(java.util.Arrays.stream(classes).boxed().toList()).allMatch(c -> c >= 0 && c < 4);
  }

  @Test
  void streaming_everyAnswerArrivesOverOneStream() throws Exception {
    long sum = StreamingExample.run(quiver.target(), 500, 16, out);
    assertThat(sum).isEqualTo(499L * 500 / 2);
  }

  @Test
  void errorHandling_badShapeNamesTheField() throws Exception {
    QuiverException error = ErrorHandlingExample.run(quiver.target(), out);
    assertThat(error.code()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(error.badRequestField()).isEqualTo("inputs[INPUT0].shape");
    assertThat(printed.toString(StandardCharsets.UTF_8)).contains("then a good request: InferResult{model=identity_fp32");
  }

  @Test
  void controlPlane_uploadLoadSplitAndWatch() throws Exception {
    ExampleModels.writeSimple(uploads);
    ModelStatus status = ControlPlaneExample.run(quiver.controlTarget(), "simple", uploads.resolve("simple/1"), out);
    assertThat(status.getVersionsList()).extracting(VersionStatus::getVersion, VersionStatus::getWeight)
        .containsExactlyInAnyOrder(org.assertj.core.groups.Tuple.tuple(1L, 90), org.assertj.core.groups.Tuple.tuple(2L, 10));
    assertThat(status.getVersionsList().stream().filter(v -> v.getVersion() == 2).findFirst().orElseThrow().getLabelsList())
        .containsExactly("canary");
    assertThat(printed.toString(StandardCharsets.UTF_8)).contains("uploaded simple version 2").contains("watch #");
  }
}
