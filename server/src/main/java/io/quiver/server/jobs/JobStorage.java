package io.quiver.server.jobs;

import io.quiver.core.InferenceException;
import io.quiver.registry.s3.S3Objects;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Reads job inputs and writes job outputs, on local disk or in S3, with the same atomicity on both: an
 * output object appears whole or not at all (a local file is written beside its final name, forced to
 * disk and renamed with ATOMIC_MOVE; an S3 object is one PUT). Every failure is an
 * {@link InferenceException} (NOT_FOUND, FAILED_PRECONDITION for denied access, UNAVAILABLE, INTERNAL).
 * Thread-safe; every call blocks for its I/O (job threads only, never an event loop).
 */
final class JobStorage {
  /** Objects listed at most in an output location. */
  static final int MAX_LISTED = 100_000;

  private final S3Objects s3; // null = S3 locations are refused

  JobStorage(S3Objects s3) {
    this.s3 = s3;
  }

  private S3Objects s3(JobLocation location) {
    if (s3 == null) {
      throw InferenceException.failedPrecondition(
          "%s is in S3, but the server has no S3 settings for jobs (start it with --s3-endpoint/--s3-region and"
              + " credentials)", location);
    }
    return s3;
  }

  /** The size of an input file, or -1 when it does not exist; a local directory is INVALID_ARGUMENT. */
  long size(String field, JobLocation file) {
    if (file.isS3()) {
      return s3(file).size(file.bucket(), file.key());
    }
    if (Files.isDirectory(file.path())) {
      throw InferenceException.invalidField(field, "%s '%s' is a directory; it must be a file", field, file);
    }
    try {
      return Files.size(file.path());
    } catch (NoSuchFileException e) {
      return -1;
    } catch (IOException e) {
      throw io("read", file.toString(), e);
    }
  }

  /** Opens an input at byte {@code offset}; the caller closes the stream. */
  InputStream open(JobLocation file, long offset) {
    if (file.isS3()) {
      return s3(file).open(file.bucket(), file.key(), offset);
    }
    try {
      SeekableByteChannel channel = Files.newByteChannel(file.path(), StandardOpenOption.READ);
      channel.position(offset);
      return Channels.newInputStream(channel);
    } catch (IOException e) {
      throw io("read", file.toString(), e);
    }
  }

  /** Writes {@code dir/name} atomically, replacing what was there. */
  void write(JobLocation dir, String name, byte[] contents) {
    write(dir, name, contents, contents.length);
  }

  /** Writes the first {@code length} bytes of {@code contents} as {@code dir/name}, atomically. */
  void write(JobLocation dir, String name, byte[] contents, int length) {
    if (dir.isS3()) {
      s3(dir).put(dir.bucket(), dir.asPrefix().key() + name,
          length == contents.length ? contents : Arrays.copyOf(contents, length));
      return;
    }
    Path file = dir.path().resolve(name);
    Path temp = dir.path().resolve("." + name + ".tmp-" + UUID.randomUUID());
    try {
      Files.createDirectories(dir.path());
      try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        ByteBuffer buffer = ByteBuffer.wrap(contents, 0, length);
        while (buffer.hasRemaining()) {
          out.write(buffer);
        }
        out.force(true); // the rename below must never publish a file whose bytes are not on disk yet
      }
      Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw io("write", file.toString(), e);
    } finally {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException ignored) {
        // best effort: a leftover hidden temporary file is harmless
      }
    }
  }

  /** The contents of {@code dir/name}, or null when it does not exist. */
  byte[] read(JobLocation dir, String name) {
    if (dir.isS3()) {
      return s3(dir).readIfExists(dir.bucket(), dir.asPrefix().key() + name);
    }
    try {
      return Files.readAllBytes(dir.path().resolve(name));
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      throw io("read", dir.path().resolve(name).toString(), e);
    }
  }

  /** Names of the files (objects) directly in {@code dir}, hidden temporary files left out. */
  List<String> list(JobLocation dir) {
    List<String> names = new ArrayList<>();
    if (dir.isS3()) {
      String prefix = dir.asPrefix().key();
      for (S3Object o : s3(dir).list(dir.bucket(), prefix, "/", MAX_LISTED)) {
        names.add(o.key().substring(prefix.length()));
      }
      return names;
    }
    if (!Files.isDirectory(dir.path())) {
      return names;
    }
    try (Stream<Path> entries = Files.list(dir.path())) {
      entries.limit(MAX_LISTED).map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).forEach(names::add);
    } catch (IOException e) {
      throw io("list", dir.toString(), e);
    }
    return names;
  }

  /** Deletes {@code dir/name}; deleting what does not exist succeeds. */
  void delete(JobLocation dir, String name) {
    if (dir.isS3()) {
      s3(dir).delete(dir.bucket(), dir.asPrefix().key() + name);
      return;
    }
    try {
      Files.deleteIfExists(dir.path().resolve(name));
    } catch (IOException e) {
      throw io("delete", dir.path().resolve(name).toString(), e);
    }
  }

  private static InferenceException io(String what, String where, IOException e) {
    if (e instanceof NoSuchFileException) {
      return InferenceException.notFound("cannot %s %s: no such file", what, where);
    }
    if (e instanceof AccessDeniedException) {
      return InferenceException.failedPrecondition("cannot %s %s: access denied", what, where);
    }
    return InferenceException.internal("cannot " + what + " " + where + ": " + e, e);
  }
}
