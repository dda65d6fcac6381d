package io.quiver.server.console;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What an uploaded archive may hold, and the bounds on unpacking it. */
class ArchiveReaderTest {
  @TempDir Path dir;

  @Test
  void kindOf_knowsZipTarAndTarGz_only() {
    assertThat(ArchiveReader.kindOf("v2.ZIP")).isEqualTo(ArchiveReader.Kind.ZIP);
    assertThat(ArchiveReader.kindOf("v2.tar.gz")).isEqualTo(ArchiveReader.Kind.TAR_GZ);
    assertThat(ArchiveReader.kindOf("v2.tgz")).isEqualTo(ArchiveReader.Kind.TAR_GZ);
    assertThat(ArchiveReader.kindOf("v2.tar")).isEqualTo(ArchiveReader.Kind.TAR);
    assertThat(ArchiveReader.kindOf("v2.rar")).isNull();
  }

  @Test
  void commonFolder_isDroppedOnlyWhenEveryFileIsInside() {
    assertThat(ArchiveReader.commonFolder(List.of("v2/model.onnx", "v2/vocab/a.txt"))).isEqualTo("v2/");
    assertThat(ArchiveReader.commonFolder(List.of("v2/model.onnx", "other.txt"))).isEmpty();
    assertThat(ArchiveReader.commonFolder(List.of("model.onnx"))).isEmpty();
  }

  @Test
  void zip_passesRegularFiles_skipsDirectoriesAndMacMetadata() throws Exception {
    Path zip = dir.resolve("a.zip");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(zip))) {
      z.putNextEntry(new ZipEntry("./model/"));
      z.closeEntry();
      z.putNextEntry(new ZipEntry("./model/model.onnx"));
      z.write(new byte[] {1, 2, 3});
      z.closeEntry();
      z.putNextEntry(new ZipEntry("model/.DS_Store"));
      z.closeEntry();
      z.putNextEntry(new ZipEntry("__MACOSX/model/._model.onnx"));
      z.closeEntry();
    }
    List<String> seen = new ArrayList<>();
    int n = ArchiveReader.read(zip, ArchiveReader.Kind.ZIP, 1000, (path, in) -> seen.add(path + ":" + in.readAllBytes().length));
    assertThat(n).isEqualTo(1);
    assertThat(seen).containsExactly("model.onnx:3");
  }

  @Test
  void tar_withALink_isRefused() throws Exception {
    Path tar = dir.resolve("a.tar");
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      TarArchiveEntry link = new TarArchiveEntry("model.onnx", TarArchiveEntry.LF_SYMLINK);
      link.setLinkName("/etc/passwd");
      out.putArchiveEntry(link);
      out.closeArchiveEntry();
    }
    assertThatThrownBy(() -> ArchiveReader.read(tar, ArchiveReader.Kind.TAR, 1000, (path, in) -> { }))
        .isInstanceOf(InferenceException.class).hasMessageContaining("link or a special file");
  }

  @Test
  void unpacking_stopsAtTheByteLimit_soACompressionBombCannotFillTheDisk() throws Exception {
    Path zip = dir.resolve("bomb.zip");
    try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(zip))) {
      z.putNextEntry(new ZipEntry("zeros.bin"));
      byte[] zeros = new byte[1 << 20];
      for (int i = 0; i < 16; i++) {
        z.write(zeros); // 16 MiB that compress to a few KiB
      }
      z.closeEntry();
    }
    assertThat(Files.size(zip)).isLessThan(1 << 20);
    assertThatThrownBy(() -> ArchiveReader.read(zip, ArchiveReader.Kind.ZIP, 1 << 20,
        (path, in) -> in.transferTo(OutputStream.nullOutputStream())))
        .isInstanceOfSatisfying(InferenceException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.RESOURCE_EXHAUSTED));
  }

  @Test
  void garbage_isAClearError() throws Exception {
    Path junk = dir.resolve("junk.zip");
    Files.write(junk, new byte[] {1, 2, 3, 4, 5});
    assertThatThrownBy(() -> ArchiveReader.read(junk, ArchiveReader.Kind.ZIP, 1000, (path, in) -> { }))
        .isInstanceOf(InferenceException.class).hasMessageContaining("not a readable zip");
    Path empty = dir.resolve("empty.tar");
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(empty))) {
      out.finish();
    }
    assertThatThrownBy(() -> ArchiveReader.read(empty, ArchiveReader.Kind.TAR, 1000, (path, in) -> { }))
        .isInstanceOf(InferenceException.class).hasMessageContaining("holds no files");
  }
}
