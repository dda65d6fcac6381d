package io.quiver.core.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DirectBuffersTest {
  @TempDir Path dir;

  private Path randomFile(String name, int size) throws IOException {
    byte[] bytes = new byte[size];
    new SplittableRandom(size).nextBytes(bytes);
    return Files.write(dir.resolve(name), bytes);
  }

  @Test
  void readFile_manyPiecesAndAPartialLastOne_givesTheWholeFile() throws IOException {
    int size = 5 * DirectBuffers.READ_CHUNK_BYTES + 1234;
    Path file = randomFile("model.onnx", size);

    ByteBuffer read = DirectBuffers.readFile(file, size);
    try {
      assertThat(read.isDirect()).isTrue();
      assertThat(read.position()).isZero();
      assertThat(read.remaining()).isEqualTo(size);
      byte[] bytes = new byte[size];
      read.duplicate().get(bytes);
      assertThat(bytes).isEqualTo(Files.readAllBytes(file));
    } finally {
      DirectBuffers.free(read);
    }
  }

  @Test
  void readFile_emptyFile_givesAnEmptyBuffer() throws IOException {
    ByteBuffer read = DirectBuffers.readFile(Files.write(dir.resolve("empty"), new byte[0]), 10);
    assertThat(read.remaining()).isZero();
    DirectBuffers.free(read);
  }

  @Test
  void readFile_largerThanTheBound_isRefusedNamingFileAndSizes() throws IOException {
    Path file = randomFile("big.onnx", 1000);

    assertThatThrownBy(() -> DirectBuffers.readFile(file, 999))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("big.onnx")
        .hasMessageContaining("1000 bytes")
        .hasMessageContaining("999");
  }

  @Test
  void readFile_missingFile_isAnIOException() {
    assertThatThrownBy(() -> DirectBuffers.readFile(dir.resolve("absent"), 10)).isInstanceOf(IOException.class);
  }

  @Test
  void free_heapBuffersAndNull_areIgnored() {
    DirectBuffers.free(null);
    ByteBuffer heap = ByteBuffer.allocate(4).putInt(0, 42);
    DirectBuffers.free(heap);
    assertThat(heap.getInt(0)).isEqualTo(42);
  }
}
