package io.quiver.server.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Job URIs: parsing, and the root check that keeps jobs inside the configured locations. */
class JobLocationTest {
  @TempDir Path dir;

  @Test
  void localPaths_mustStayUnderTheRoot_evenThroughDotDotOrASymbolicLink() throws Exception {
    Path root = Files.createDirectories(dir.resolve("root"));
    Path secret = Files.createDirectories(dir.resolve("secret"));
    Files.writeString(secret.resolve("x.jsonl"), "{}");
    Files.createSymbolicLink(root.resolve("link"), secret);
    JobLocation rootLocation = JobLocation.parseRoot("--jobs-input-root", root.toString());

    assertThat(JobLocation.parse("input_uri", root.resolve("a.jsonl").toString()).isUnder(rootLocation)).isTrue();
    assertThat(JobLocation.parse("input_uri", "file://" + root.resolve("new/dir")).isUnder(rootLocation)).isTrue();
    assertThat(JobLocation.parse("input_uri", root + "/../secret/x.jsonl").isUnder(rootLocation)).isFalse();
    assertThat(JobLocation.parse("input_uri", root.resolve("link/x.jsonl").toString()).isUnder(rootLocation)).isFalse();
    assertThat(JobLocation.parse("input_uri", dir.resolve("rootx/a").toString()).isUnder(rootLocation)).isFalse();
  }

  @Test
  void s3Locations_mustStayUnderTheRootPrefix() {
    JobLocation root = JobLocation.parseRoot("--jobs-output-root", "s3://data/out");
    assertThat(JobLocation.parse("output_uri", "s3://data/out/run1").isUnder(root)).isTrue();
    assertThat(JobLocation.parse("output_uri", "s3://data/out").isUnder(root)).isTrue();
    assertThat(JobLocation.parse("output_uri", "s3://data/outside/run1").isUnder(root)).isFalse();
    assertThat(JobLocation.parse("output_uri", "s3://other/out/run1").isUnder(root)).isFalse();
    assertThat(JobLocation.parse("output_uri", "/data/out/run1").isUnder(root)).isFalse();
  }

  @Test
  void badUris_areInvalidArgument_namingTheField() {
    for (String bad : new String[] {"", "relative/path", "http://host/x", "s3://Bad_Bucket/x", "s3://data/../x",
        "file://host/x", "/tmp/a\u0001b", "s3://data/a//b"}) {
      assertThatThrownBy(() -> JobLocation.parse("input_uri", bad)).as(bad)
          .isInstanceOfSatisfying(InferenceException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_ARGUMENT);
            assertThat(e.field()).isEqualTo("input_uri");
          });
    }
  }
}
