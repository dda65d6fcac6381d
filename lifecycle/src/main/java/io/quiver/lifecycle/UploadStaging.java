package io.quiver.lifecycle;

import io.quiver.registry.LocalModelRepository;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where uploaded versions are written before they go into the repository: one directory per upload,
 * {@code <root>/<pid>-<random>}, under the model cache directory (not the system temp dir, which a
 * server killed mid-upload would leave full). {@link #sweep()} at start deletes the directories of
 * processes that no longer run, and those carrying this process's own id (left by an earlier process
 * that had the same id, as in containers, where the server is often pid 1): an upload interrupted by
 * kill -9 costs disk only until the next start. Thread-safe.
 */
public final class UploadStaging {
  private static final Logger log = LoggerFactory.getLogger(UploadStaging.class);
  /** Staging directories of uploads under way in this process (any instance): a sweep never touches them. */
  private static final java.util.Set<Path> IN_USE = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private final Path root;
  private final long pid = ProcessHandle.current().pid();

  public UploadStaging(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  public Path root() {
    return root;
  }

  /** A new, empty directory for one upload; give it back with {@link #release} when the upload ends. */
  public Path newDirectory() throws IOException {
    Files.createDirectories(root);
    Path dir = Files.createDirectory(root.resolve(pid + "-" + UUID.randomUUID()));
    IN_USE.add(dir);
    return dir;
  }

  /** Deletes an upload's staging directory (its files have been put into the repository, or the upload failed). */
  public void release(Path dir) {
    if (dir == null) {
      return;
    }
    LocalModelRepository.deleteTree(dir);
    IN_USE.remove(dir);
  }

  /**
   * Deletes what interrupted uploads left: directories whose process is gone, or carrying this
   * process's id but not staged by it (an earlier process with the same id). Entries that do not look
   * like ours are left alone.
   *
   * @return the number of directories deleted
   */
  public int sweep() {
    if (!Files.isDirectory(root)) {
      return 0;
    }
    int deleted = 0;
    long bytes = 0;
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        int dash = name.indexOf('-');
        long owner;
        try {
          owner = dash > 0 ? Long.parseLong(name.substring(0, dash)) : -1;
        } catch (NumberFormatException e) {
          owner = -1;
        }
        if (owner < 0 || !Files.isDirectory(entry) || IN_USE.contains(entry)) {
          continue;
        }
        if (owner != pid && ProcessHandle.of(owner).map(ProcessHandle::isAlive).orElse(false)) {
          continue; // another live server shares this cache directory and is uploading
        }
        bytes += sizeOf(entry);
        LocalModelRepository.deleteTree(entry);
        deleted++;
      }
    } catch (IOException e) {
      log.warn("cannot sweep upload staging directory {}: {}", root, e.toString());
    }
    if (deleted > 0) {
      log.info("deleted {} interrupted upload(s) ({}) from {}", deleted, VersionMemory.human(bytes), root);
    }
    return deleted;
  }

  private static long sizeOf(Path dir) {
    try (var walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException | java.io.UncheckedIOException e) {
      return 0;
    }
  }
}
