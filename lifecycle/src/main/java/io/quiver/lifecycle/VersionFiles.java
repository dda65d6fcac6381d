package io.quiver.lifecycle;

import io.quiver.core.InferenceException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a version directory holds, read from file metadata only (no file contents): the total size of
 * its files (the memory floor) and a fingerprint over every file's path, size, modification time and
 * file key (inode), which changes when any file is written, replaced or renamed in. A load of a model
 * that is already loaded compares fingerprints to decide whether its files changed (Triton compares
 * modification times the same way). Stateless.
 */
record VersionFiles(long bytes, String fingerprint) {
  /** Deepest directory level walked; a version directory deeper than this is unusual but still fingerprinted to here. */
  private static final int MAX_DEPTH = 16;

  /** @throws InferenceException INTERNAL when the directory cannot be read */
  static VersionFiles of(Path dir) {
    MessageDigest digest = sha256();
    long total = 0;
    List<Path> files;
    try (Stream<Path> walk = Files.walk(dir, MAX_DEPTH)) {
      files = walk.filter(p -> !p.equals(dir)).sorted().toList();
    } catch (IOException | java.io.UncheckedIOException e) {
      throw InferenceException.internal("cannot list " + dir + ": " + e, e);
    }
    for (Path p : files) {
      BasicFileAttributes a;
      try {
        a = Files.readAttributes(p, BasicFileAttributes.class);
      } catch (IOException e) {
        continue; // removed while walking: the next load sees the new listing
      }
      if (!a.isRegularFile()) {
        continue;
      }
      total += a.size();
      String line = dir.relativize(p) + "\t" + a.size() + "\t" + a.lastModifiedTime().toInstant() + "\t" + a.fileKey() + "\n";
      digest.update(line.getBytes(StandardCharsets.UTF_8));
    }
    return new VersionFiles(total, HexFormat.of().formatHex(digest.digest(), 0, 16));
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
