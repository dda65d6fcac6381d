package io.quiver.server.console;

import io.quiver.core.InferenceException;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Reads the regular files of an uploaded archive (.zip, .tar, .tar.gz / .tgz) in order, for the console's
 * upload. Directories are skipped, as are macOS metadata ({@code __MACOSX/}, {@code .DS_Store}); links and
 * device entries are refused; when every file sits under one top-level folder, that folder is dropped
 * ({@code v2/model.onnx} becomes {@code model.onnx}). Paths are passed on as the archive names them: the
 * control plane checks each (relative, no {@code ..}) before it writes anything. Bounded: at most
 * {@link #MAX_ENTRIES} entries and {@code maxBytes} uncompressed bytes in all, so a compression bomb stops
 * at the limit. Stateless; called on a console worker thread (blocking I/O).
 */
final class ArchiveReader {
  static final int MAX_ENTRIES = 10_000;

  enum Kind { ZIP, TAR, TAR_GZ }

  /** Receives one file: its path inside the version directory and its bytes (read them before returning). */
  interface FileSink {
    void accept(String path, InputStream content) throws IOException;
  }

  private ArchiveReader() {}

  /** The archive kind a file name says, or null when it names none. */
  static Kind kindOf(String fileName) {
    String n = fileName.toLowerCase(Locale.ROOT);
    if (n.endsWith(".zip")) {
      return Kind.ZIP;
    }
    if (n.endsWith(".tar.gz") || n.endsWith(".tgz")) {
      return Kind.TAR_GZ;
    }
    if (n.endsWith(".tar")) {
      return Kind.TAR;
    }
    return null;
  }

  /**
   * Calls {@code sink} once per regular file, in archive order.
   *
   * @return how many files were passed on
   * @throws InferenceException INVALID_ARGUMENT for an unreadable archive, a link entry or no file at all;
   *     RESOURCE_EXHAUSTED past the entry or byte limit
   */
  static int read(Path archive, Kind kind, long maxBytes, FileSink sink) throws IOException {
    List<String> names = new ArrayList<>();
    forEach(archive, kind, maxBytes, (name, in) -> names.add(name), false);
    if (names.isEmpty()) {
      throw InferenceException.invalidArgument("the archive holds no files");
    }
    String prefix = commonFolder(names);
    forEach(archive, kind, maxBytes, (name, in) -> sink.accept(name.substring(prefix.length()), in), true);
    return names.size();
  }

  private static void forEach(Path archive, Kind kind, long maxBytes, FileSink sink, boolean readContent)
      throws IOException {
    long[] total = {0};
    int entries = 0;
    try {
      if (kind == Kind.ZIP) {
        try (ZipFile zip = new ZipFile(archive.toFile())) {
          Enumeration<? extends ZipEntry> all = zip.entries();
          while (all.hasMoreElements()) {
            ZipEntry entry = all.nextElement();
            if (++entries > MAX_ENTRIES) {
              throw InferenceException.resourceExhausted(0, "the archive has more than %d entries", MAX_ENTRIES);
            }
            String name = normalize(entry.getName());
            if (entry.isDirectory() || skipped(name)) {
              continue;
            }
            try (InputStream in = readContent ? zip.getInputStream(entry) : InputStream.nullInputStream()) {
              sink.accept(name, new Bounded(in, total, maxBytes));
            }
          }
        }
        return;
      }
      InputStream raw = new BufferedInputStream(Files.newInputStream(archive), 64 * 1024);
      try (TarArchiveInputStream tar = new TarArchiveInputStream(kind == Kind.TAR_GZ ? new GZIPInputStream(raw) : raw)) {
        TarArchiveEntry entry;
        while ((entry = tar.getNextEntry()) != null) {
          if (++entries > MAX_ENTRIES) {
            throw InferenceException.resourceExhausted(0, "the archive has more than %d entries", MAX_ENTRIES);
          }
          String name = normalize(entry.getName());
          if (entry.isDirectory() || skipped(name)) {
            continue;
          }
          if (entry.isSymbolicLink() || entry.isLink() || entry.isCharacterDevice() || entry.isBlockDevice()
              || entry.isFIFO() || !entry.isFile()) {
            throw InferenceException.invalidArgument("archive entry '%s' is a link or a special file; only regular "
                + "files can be uploaded", printable(entry.getName()));
          }
          sink.accept(name, new Bounded(readContent ? tar : InputStream.nullInputStream(), total, maxBytes));
        }
      }
    } catch (java.util.zip.ZipException | java.io.EOFException e) {
      throw InferenceException.invalidArgument("the archive is not a readable %s file: %s",
          kind.name().toLowerCase(Locale.ROOT).replace('_', '.'), e.getMessage());
    } catch (IllegalArgumentException e) {
      throw InferenceException.invalidArgument("the archive is not a readable %s file: %s",
          kind.name().toLowerCase(Locale.ROOT).replace('_', '.'), e.getMessage());
    }
  }

  private static String normalize(String name) {
    String n = name.replace('\\', '/');
    while (n.startsWith("./")) {
      n = n.substring(2);
    }
    return n;
  }

  private static boolean skipped(String name) {
    return name.isEmpty() || name.startsWith("__MACOSX/") || name.equals(".DS_Store") || name.endsWith("/.DS_Store");
  }

  /** "v2/" when every name starts with "v2/" and none is directly at the top; "" otherwise. */
  static String commonFolder(List<String> names) {
    String first = names.get(0);
    int slash = first.indexOf('/');
    if (slash <= 0) {
      return "";
    }
    String prefix = first.substring(0, slash + 1);
    for (String name : names) {
      if (!name.startsWith(prefix) || name.length() == prefix.length()) {
        return "";
      }
    }
    return prefix;
  }

  private static String printable(String s) {
    return s.length() > 200 ? s.substring(0, 200) + "..." : s.replaceAll("\\p{Cntrl}", "?");
  }

  /** Counts bytes read across every entry and stops at the limit; closing it leaves the archive open. */
  private static final class Bounded extends FilterInputStream {
    private final long[] total;
    private final long max;

    Bounded(InputStream in, long[] total, long max) {
      super(in);
      this.total = total;
      this.max = max;
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) {
        count(1);
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, len);
      if (n > 0) {
        count(n);
      }
      return n;
    }

    private void count(long n) {
      total[0] += n;
      if (total[0] > max) {
        throw InferenceException.resourceExhausted(0, "the archive unpacks to more than the upload limit of %d bytes", max);
      }
    }

    @Override
    public void close() {
      // the archive stream is closed by its owner
    }
  }
}
