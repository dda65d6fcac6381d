package io.quiver.server;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.TextFormat;
import com.google.protobuf.util.JsonFormat;
import io.quiver.core.InferenceException;
import io.quiver.core.spi.RepositoryModel;
import io.quiver.lifecycle.ModelManager;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelRepositoryParameter;
import io.quiver.registry.LocalModelRepository;
import io.quiver.registry.ModelConfigParser;
import io.quiver.registry.ModelConfigValidator;
import io.quiver.registry.ModelNames;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedSet;
import java.util.stream.Stream;

/**
 * Triton's RepositoryModelLoad parameters: {@code config} (a model config as JSON, which replaces the
 * repository's config.pbtxt for this load and is validated as config.pbtxt is) and {@code file:<path>}
 * (a model file's contents, relative to the model directory, e.g. {@code file:1/model.onnx}; Triton
 * requires {@code config} with them). Files are staged in a fresh directory under the control plane's
 * staging directory, bounded by its upload limit ({@code --max-upload-bytes}) and by the same path rules
 * as UploadModel (relative, '/'-separated, no '.', '..' or empty segments), loaded from there, and the
 * directory is deleted once the load is over (the runtimes have read the files by then). Neither the
 * override nor the files are written to the repository: a later load without parameters (or a poll)
 * loads the repository's own model again, as in Triton.
 *
 * <p>Thread-safe (stateless apart from its limits); {@link #load} blocks and runs on the repository
 * executor.
 */
public final class RepositoryLoads {
  public static final String CONFIG = "config";
  public static final String FILE_PREFIX = "file:";

  private final long maxBytes;
  private final Path stagingDir; // null: the system temp directory

  public RepositoryLoads(long maxBytes, Path stagingDir) {
    this.maxBytes = maxBytes;
    this.stagingDir = stagingDir;
  }

  /** The control plane's default limits (2 GiB, system temp directory). */
  static RepositoryLoads defaults() {
    return new RepositoryLoads(2L << 30, null);
  }

  public long maxBytes() {
    return maxBytes;
  }

  /** One load's parameters: a config override (JSON text, or null) and files (relative path → contents). */
  public record Request(String configJson, Map<String, byte[]> files) {
    public static final Request NONE = new Request(null, Map.of());

    public boolean isEmpty() {
      return configJson == null && files.isEmpty();
    }
  }

  /**
   * The parameters of a gRPC RepositoryModelLoad: {@code config} as string_param, {@code file:*} as
   * bytes_param; anything else is refused by name.
   */
  public Request fromGrpc(Map<String, ModelRepositoryParameter> parameters) {
    String config = null;
    Map<String, byte[]> files = new LinkedHashMap<>();
    long total = 0;
    for (Map.Entry<String, ModelRepositoryParameter> e : parameters.entrySet()) {
      String key = e.getKey();
      ModelRepositoryParameter value = e.getValue();
      if (key.equals(CONFIG)) {
        if (value.getParameterChoiceCase() != ModelRepositoryParameter.ParameterChoiceCase.STRING_PARAM) {
          throw InferenceException.invalidField("parameters[config]",
              "Config parameter 'config' must have string type for its value");
        }
        config = value.getStringParam();
      } else if (key.startsWith(FILE_PREFIX)) {
        if (value.getParameterChoiceCase() != ModelRepositoryParameter.ParameterChoiceCase.BYTES_PARAM) {
          throw InferenceException.invalidField("parameters[" + key + "]",
              "File parameter '%s' must have bytes type for its value", key);
        }
        total += value.getBytesParam().size();
        checkTotal(total);
        files.put(relativePath(key), value.getBytesParam().toByteArray());
      } else {
        throw unrecognized(key, value.getParameterChoiceCase().name());
      }
    }
    return new Request(config, files);
  }

  /** The parameters of a REST load: {@code config} a string, {@code file:*} base64 strings (Triton's encoding). */
  public Request fromJson(com.fasterxml.jackson.databind.JsonNode parameters) {
    if (parameters == null || parameters.isNull()) {
      return Request.NONE;
    }
    if (!parameters.isObject()) {
      throw InferenceException.invalidField("parameters", "'parameters' must be an object");
    }
    String config = null;
    Map<String, byte[]> files = new LinkedHashMap<>();
    long total = 0;
    for (var it = parameters.fields(); it.hasNext(); ) {
      var e = it.next();
      String key = e.getKey();
      if (key.equals(CONFIG)) {
        if (!e.getValue().isTextual()) {
          throw InferenceException.invalidField("parameters[config]",
              "Config parameter 'config' must have string type for its value");
        }
        config = e.getValue().textValue();
      } else if (key.startsWith(FILE_PREFIX)) {
        if (!e.getValue().isTextual()) {
          throw InferenceException.invalidField("parameters[" + key + "]",
              "File parameter '%s' must be a base64-encoded string", key);
        }
        byte[] bytes;
        try {
          bytes = java.util.Base64.getDecoder().decode(e.getValue().textValue());
        } catch (IllegalArgumentException bad) {
          throw InferenceException.invalidField("parameters[" + key + "]", "File parameter '%s' is not valid base64: %s",
              key, bad.getMessage());
        }
        total += bytes.length;
        checkTotal(total);
        files.put(relativePath(key), bytes);
      } else {
        throw unrecognized(key, e.getValue().getNodeType().name());
      }
    }
    return new Request(config, files);
  }

  private void checkTotal(long total) {
    if (total > maxBytes) {
      throw InferenceException.resourceExhausted(0, "RepositoryModelLoad files exceed the upload limit of %d bytes"
          + " (--max-upload-bytes)", maxBytes);
    }
  }

  private static InferenceException unrecognized(String key, String type) {
    return InferenceException.invalidField("parameters[" + key + "]", "Unrecognized load parameter '%s' with type '%s'"
        + " (RepositoryModelLoad takes 'config' and 'file:<path>')", ModelNames.printable(key), type);
  }

  /** The path after "file:", checked: relative, '/'-separated, no '.', '..', empty or control-character segments. */
  static String relativePath(String key) {
    String path = key.substring(FILE_PREFIX.length());
    if (path.isEmpty() || path.length() > 1024 || path.startsWith("/")) {
      throw InferenceException.invalidField("parameters[" + ModelNames.printable(key) + "]",
          "Invalid file parameter '%s': the path must be relative to the model directory (e.g. file:1/model.onnx)",
          ModelNames.printable(key));
    }
    for (String segment : path.split("/", -1)) {
      boolean bad = segment.isEmpty() || segment.equals(".") || segment.equals("..") || segment.contains("\\");
      for (int i = 0; i < segment.length() && !bad; i++) {
        bad = Character.isISOControl(segment.charAt(i));
      }
      if (bad) {
        throw InferenceException.invalidField("parameters[" + ModelNames.printable(key) + "]",
            "Invalid file parameter '%s': the path must stay within the model directory ('/'-separated, without '.',"
                + " '..' or empty segments)", ModelNames.printable(key));
      }
    }
    return path;
  }

  /**
   * The config override as a validated ModelConfig (named after the model when it has no name).
   *
   * @throws InferenceException INVALID_ARGUMENT naming the problem ("Invalid config override: ...")
   */
  static ModelConfig parseConfig(String json, String model) {
    if (json.length() > ModelConfigParser.MAX_CONFIG_BYTES) {
      throw InferenceException.invalidField("parameters[config]", "Invalid config override: %d characters; at most %d",
          json.length(), ModelConfigParser.MAX_CONFIG_BYTES);
    }
    ModelConfig.Builder builder = ModelConfig.newBuilder();
    try {
      JsonFormat.parser().merge(json, builder); // unknown fields are errors, as in config.pbtxt
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      throw InferenceException.invalidField("parameters[config]", "Invalid config override: %s", e.getMessage());
    }
    if (builder.getName().isEmpty()) {
      builder.setName(model);
    }
    ModelConfig config = builder.build();
    try {
      ModelConfigValidator.validate(config, model, "(config override)");
    } catch (InferenceException e) {
      throw InferenceException.invalidField("parameters[config]", "Invalid config override: %s", e.getMessage());
    }
    return config;
  }

  /** Loads {@code model} per the request, blocking (on the repository executor). */
  void load(ModelManager models, String model, Request request) {
    if (request.configJson() == null) {
      throw InferenceException.invalidField("parameters[config]",
          "Load parameter 'config' must be specified for model file override");
    }
    ModelConfig config = parseConfig(request.configJson(), model);
    if (request.files().isEmpty()) {
      // The repository's files with another config.
      models.load(model, new Overridden(models.repository().model(model), config));
      return;
    }
    Path staging = null;
    try {
      Path parent = stagingDir == null ? Path.of(System.getProperty("java.io.tmpdir")) : stagingDir;
      staging = Files.createTempDirectory(Files.createDirectories(parent), "quiver-load-");
      Path modelDir = staging.resolve(model);
      Files.createDirectories(modelDir);
      for (Map.Entry<String, byte[]> file : request.files().entrySet()) {
        Path target = modelDir.resolve(file.getKey()).normalize();
        if (!target.startsWith(modelDir)) { // cannot happen after relativePath(); kept as the last word
          throw InferenceException.invalidArgument("Invalid file parameter 'file:%s': outside the model directory",
              file.getKey());
        }
        if (Files.isDirectory(target)) {
          throw InferenceException.invalidArgument("Invalid file parameter 'file:%s', a directory has that name",
              file.getKey());
        }
        Files.createDirectories(target.getParent());
        Files.write(target, file.getValue());
      }
      // The override becomes the staged model's config.pbtxt, read back as the repository reads any.
      Files.writeString(modelDir.resolve(ModelConfigParser.CONFIG_FILENAME), TextFormat.printer().printToString(config),
          StandardCharsets.UTF_8);
      RepositoryModel staged = new LocalModelRepository(staging).model(model);
      if (staged.versions().isEmpty()) {
        throw InferenceException.invalidField("parameters", "the files of model '%s' hold no version directory (e.g."
            + " file:1/model.onnx)", model);
      }
      models.load(model, staged);
    } catch (IOException e) {
      throw InferenceException.internal("could not stage the files of model '" + model + "': " + e, e);
    } finally {
      deleteQuietly(staging);
    }
  }

  private static void deleteQuietly(Path dir) {
    if (dir == null) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder()).forEach(p -> {
        try {
          Files.deleteIfExists(p);
        } catch (IOException e) {
          // best effort: a temp directory left behind is cleaned by the OS
        }
      });
    } catch (IOException e) {
      // best effort
    }
  }

  /** The repository's model with another declared config. */
  private record Overridden(RepositoryModel base, ModelConfig config) implements RepositoryModel {
    @Override
    public String name() {
      return base.name();
    }

    @Override
    public ModelConfig declaredConfig() {
      return config;
    }

    @Override
    public boolean hasConfigFile() {
      return true;
    }

    @Override
    public SortedSet<Long> versions() {
      return base.versions();
    }

    @Override
    public Path versionDirectory(long version) {
      return base.versionDirectory(version);
    }
  }
}
