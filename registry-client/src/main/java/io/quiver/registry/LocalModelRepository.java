package io.quiver.registry;

import io.quiver.core.InferenceException;
import io.quiver.core.spi.ModelRepository;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SortedSet;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model repository in a local directory, in Triton's layout:
 * <pre>
 *   root/
 *     model_a/
 *       config.pbtxt        (optional for runtimes that can complete a config from the model file)
 *       1/model.onnx        (numeric version directories)
 *       2/model.onnx
 * </pre>
 * Hidden entries (names starting with '.'), plain files at the top level and non-numeric directories
 * inside a model are ignored. Every call reads the directory and the config file afresh, so a version
 * copied in or a config edited is seen by the next call (an unchanged config is not parsed again:
 * {@link ParsedConfigs}). Each {@link RepositoryModel} returned is an immutable snapshot. Thread-safe.
 */
public final class LocalModelRepository implements WritableModelRepository {
  private static final Logger log = LoggerFactory.getLogger(LocalModelRepository.class);
  /** Longest version directory name accepted: 18 digits always fit in a long. */
  private static final int MAX_VERSION_DIGITS = 18;

  private final Path root;
  private final ParsedConfigs parsed = new ParsedConfigs();

  /**
   * @throws InferenceException NOT_FOUND when {@code root} does not exist; INVALID_ARGUMENT when it is
   *     not a directory
   */
  public LocalModelRepository(Path root) {
    Path absolute = root.toAbsolutePath().normalize();
    if (!Files.exists(absolute)) {
      throw InferenceException.notFound("model repository %s does not exist", absolute);
    }
    if (!Files.isDirectory(absolute)) {
      throw InferenceException.invalidArgument("model repository %s is not a directory", absolute);
    }
    this.root = absolute;
  }

  public Path root() {
    return root;
  }

  @Override
  public String location() {
    return root.toString();
  }

  @Override
  public List<String> modelNames() {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(root)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        if (name.startsWith(".") || !Files.isDirectory(entry)) {
          continue;
        }
        String problem = ModelNames.problem(name);
        if (problem != null) {
          log.warn("ignoring directory {} in model repository {}: {}", ModelNames.printable(name), root, problem);
          continue;
        }
        names.add(name);
      }
    } catch (IOException e) {
      throw InferenceException.internal("cannot list model repository " + root + ": " + e, e);
    }
    Collections.sort(names);
    return names;
  }

  /**
   * @throws InferenceException INVALID_ARGUMENT for a name that is not a valid model name (see
   *     {@link ModelNames}) or a config.pbtxt that does not parse or validate; NOT_FOUND when there
   *     is no such model directory
   */
  @Override
  public RepositoryModel model(String name) {
    ModelNames.requireValid(name);
    Path dir = root.resolve(name);
    if (!Files.isDirectory(dir)) {
      parsed.forget(name);
      throw InferenceException.notFound("model '%s' is not in repository %s", name, root);
    }
    Path configFile = dir.resolve(ModelConfigParser.CONFIG_FILENAME);
    boolean hasConfig = Files.isRegularFile(configFile);
    ModelConfig declared;
    if (hasConfig) {
      declared = parsed.parse(name, ModelConfigParser.read(configFile), configFile.toString());
    } else {
      parsed.forget(name);
      declared = ModelConfig.newBuilder().setName(name).build();
    }
    return new ModelSnapshot(name, declared, hasConfig, versions(name, dir), dir.toString(),
        (model, version) -> dir.resolve(Long.toString(version)));
  }

  private static SortedSet<Long> versions(String name, Path dir) {
    TreeSet<Long> versions = new TreeSet<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path entry : entries) {
        long version = parseVersion(entry.getFileName().toString());
        if (version >= 0 && Files.isDirectory(entry)) {
          versions.add(version);
        }
      }
    } catch (NoSuchFileException | NotDirectoryException e) {
      throw InferenceException.notFound("model '%s' is not in repository %s", name, dir.getParent());
    } catch (IOException e) {
      throw InferenceException.internal("cannot list model directory " + dir + ": " + e, e);
    }
    return versions;
  }

  /**
   * The version a directory name stands for, or -1 when it is not one: only canonical decimal numbers
   * ("0", "7", "12"; not "01", "+1", "1.0") so that two directories can never claim the same version.
   */
  public static long parseVersion(String name) {
    int n = name.length();
    if (n == 0 || n > MAX_VERSION_DIGITS || (n > 1 && name.charAt(0) == '0')) {
      return -1;
    }
    long value = 0;
    for (int i = 0; i < n; i++) {
      char c = name.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      value = value * 10 + (c - '0');
    }
    return value;
  }

  /**
   * Copies the staged files into a hidden directory beside the model's versions, then renames it to
   * the version number (ATOMIC_MOVE), so a reader sees no version or a complete one.
   */
  @Override
  public void putVersion(String model, long version, Path stagedDir, String configText) {
    ModelNames.requireValid(model);
    if (version < 0) {
      throw InferenceException.invalidArgument("version must be >= 0; was %d", version);
    }
    Path modelDir = root.resolve(model);
    Path target = modelDir.resolve(Long.toString(version));
    if (Files.exists(target)) {
      throw new InferenceException(io.quiver.core.ErrorCode.ALREADY_EXISTS,
          "model '" + model + "' version " + version + " already exists in " + root);
    }
    Path temp = modelDir.resolve(".upload-" + version + "-" + java.util.UUID.randomUUID());
    try {
      Files.createDirectories(modelDir);
      copyTree(stagedDir, temp);
      if (configText != null) {
        Path configTemp = modelDir.resolve(".config-" + java.util.UUID.randomUUID());
        Files.writeString(configTemp, configText);
        Files.move(configTemp, modelDir.resolve(ModelConfigParser.CONFIG_FILENAME),
            java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
      Files.move(temp, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (java.nio.file.FileAlreadyExistsException e) {
      throw new InferenceException(io.quiver.core.ErrorCode.ALREADY_EXISTS,
          "model '" + model + "' version " + version + " already exists in " + root);
    } catch (IOException e) {
      throw InferenceException.internal("cannot write model '" + model + "' version " + version + " into " + root + ": " + e, e);
    } finally {
      deleteTree(temp);
    }
  }

  /** Renames the version directory aside (one atomic step for readers), then deletes it, and the model's directory when nothing is left in it. */
  @Override
  public void removeVersion(String model, long version) {
    ModelNames.requireValid(model);
    Path target = root.resolve(model).resolve(Long.toString(version));
    if (!Files.isDirectory(target)) {
      return;
    }
    Path aside = root.resolve(model).resolve(".removed-" + version + "-" + java.util.UUID.randomUUID());
    try {
      Files.move(target, aside, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (NoSuchFileException e) {
      return;
    } catch (IOException e) {
      throw InferenceException.internal("cannot remove model '" + model + "' version " + version + " from " + root + ": " + e, e);
    }
    deleteTree(aside);
    deleteIfEmpty(root.resolve(model));
  }

  private static void deleteIfEmpty(Path dir) {
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      if (entries.iterator().hasNext()) {
        return;
      }
    } catch (IOException e) {
      return;
    }
    try {
      Files.deleteIfExists(dir);
    } catch (IOException e) {
      // not empty after all (a concurrent upload): keep it
    }
  }

  @Override
  public String readConfigText(String model) {
    ModelNames.requireValid(model);
    Path file = root.resolve(model).resolve(ModelConfigParser.CONFIG_FILENAME);
    try {
      return Files.isRegularFile(file) ? Files.readString(file) : null;
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
  }

  @Override
  public void writeConfigText(String model, String text) {
    ModelNames.requireValid(model);
    Path modelDir = root.resolve(model);
    Path file = modelDir.resolve(ModelConfigParser.CONFIG_FILENAME);
    try {
      if (text == null) {
        Files.deleteIfExists(file);
        deleteIfEmpty(modelDir);
        return;
      }
      Files.createDirectories(modelDir);
      Path temp = modelDir.resolve(".config-" + java.util.UUID.randomUUID());
      try {
        Files.writeString(temp, text);
        Files.move(temp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      } finally {
        Files.deleteIfExists(temp);
      }
    } catch (IOException e) {
      throw InferenceException.internal("cannot write " + file + ": " + e, e);
    }
  }

  @Override
  public StoredObject readDesiredState(String knownTag) {
    Path file = root.resolve(DESIRED_STATE_NAME);
    try {
      if (!Files.exists(file)) {
        return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
      }
      // mtime plus size: one stat call per poll; the file is replaced by rename, so a new write changes both or at least mtime.
      String tag = Files.getLastModifiedTime(file).toMillis() + ":" + Files.size(file);
      if (tag.equals(knownTag)) {
        return null;
      }
      return new StoredObject(Files.readAllBytes(file), tag);
    } catch (NoSuchFileException e) {
      return new StoredObject(null, "absent");
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
  }

  @Override
  public void writeDesiredState(byte[] contents) {
    Path file = root.resolve(DESIRED_STATE_NAME);
    Path temp = root.resolve(DESIRED_STATE_NAME + ".tmp-" + java.util.UUID.randomUUID());
    try {
      Files.write(temp, contents);
      Files.move(temp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw InferenceException.internal("cannot write " + file + ": " + e, e);
    } finally {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException ignored) {
        // best effort
      }
    }
  }

  @Override
  public StoredObject readVersionAttachment(String model, long version, String name, String knownTag) {
    Path file = root.resolve(model).resolve(WritableModelRepository.attachmentPath(model, version, name));
    try {
      if (!Files.exists(file)) {
        return "absent".equals(knownTag) ? null : new StoredObject(null, "absent");
      }
      long size = Files.size(file);
      String tag = Files.getLastModifiedTime(file).toMillis() + ":" + size;
      if (tag.equals(knownTag)) {
        return null;
      }
      if (size > MAX_ATTACHMENT_BYTES) {
        throw InferenceException.failedPrecondition("%s is %d bytes; at most %d are read", file, size, MAX_ATTACHMENT_BYTES);
      }
      return new StoredObject(Files.readAllBytes(file), tag);
    } catch (NoSuchFileException e) {
      return new StoredObject(null, "absent");
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
  }

  /** Written into a temporary file beside the target, then renamed over it (ATOMIC_MOVE). */
  @Override
  public void writeVersionAttachment(String model, long version, String name, byte[] contents) {
    Path file = root.resolve(model).resolve(WritableModelRepository.attachmentPath(model, version, name));
    if (contents.length > MAX_ATTACHMENT_BYTES) {
      throw InferenceException.invalidArgument("attachment '%s' is %d bytes; at most %d are stored", name,
          contents.length, MAX_ATTACHMENT_BYTES);
    }
    Path temp = file.resolveSibling("." + name + ".tmp-" + java.util.UUID.randomUUID());
    try {
      Files.createDirectories(file.getParent());
      Files.write(temp, contents);
      Files.move(temp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw InferenceException.internal("cannot write " + file + ": " + e, e);
    } finally {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException ignored) {
        // best effort
      }
    }
  }

  /** Copies a directory tree (regular files and directories only; links are refused). */
  static void copyTree(Path from, Path to) throws IOException {
    try (java.util.stream.Stream<Path> walk = Files.walk(from)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        Path dest = to.resolve(from.relativize(p).toString());
        if (Files.isSymbolicLink(p)) {
          throw new IOException("refusing to copy symbolic link " + p);
        }
        if (Files.isDirectory(p)) {
          Files.createDirectories(dest);
        } else {
          Files.copy(p, dest);
        }
      }
    }
  }

  /** A state object is a file under the root; its tag is mtime and size, as for the desired state. */
  @Override
  public StoredObject readState(String name) {
    Path file = root.resolve(WritableModelRepository.checkStateName(name));
    try {
      String tag = Files.getLastModifiedTime(file).toMillis() + ":" + Files.size(file);
      return new StoredObject(Files.readAllBytes(file), tag);
    } catch (NoSuchFileException e) {
      return new StoredObject(null, "absent");
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
  }

  /** Written to a temporary file, forced to disk, then renamed over the old one (ATOMIC_MOVE). */
  @Override
  public void writeState(String name, byte[] contents) {
    Path file = root.resolve(WritableModelRepository.checkStateName(name));
    Path temp = file.resolveSibling(file.getFileName() + ".tmp-" + java.util.UUID.randomUUID());
    try {
      Files.createDirectories(file.getParent());
      try (java.nio.channels.FileChannel out = java.nio.channels.FileChannel.open(temp,
          java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
        java.nio.ByteBuffer buffer = java.nio.ByteBuffer.wrap(contents);
        while (buffer.hasRemaining()) {
          out.write(buffer);
        }
        out.force(true);
      }
      Files.move(temp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw InferenceException.internal("cannot write " + file + ": " + e, e);
    } finally {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException ignored) {
        // best effort
      }
    }
  }

  @Override
  public List<String> listState(String prefix) {
    String dirName = prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
    Path dir = root.resolve(WritableModelRepository.checkStateName(dirName));
    List<String> names = new java.util.ArrayList<>();
    try (java.util.stream.Stream<Path> entries = Files.list(dir)) {
      entries.filter(Files::isRegularFile)
          .map(p -> p.getFileName().toString())
          .filter(n -> !n.contains(".tmp-"))
          .sorted()
          .forEach(n -> names.add(dirName + "/" + n));
    } catch (NoSuchFileException e) {
      return names;
    } catch (IOException e) {
      throw InferenceException.internal("cannot list " + dir + ": " + e, e);
    }
    return names;
  }

  /** Deletes a directory tree if present; best effort. */
  public static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (java.util.stream.Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      log.warn("cannot delete {}: {}", dir, e.toString());
    }
  }

  @Override
  public String toString() {
    return "LocalModelRepository[" + root + "]";
  }

}
