package io.quiver.registry;

import com.google.protobuf.TextFormat;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.inference.ModelConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a model's config.pbtxt (protobuf text format) into our {@link ModelConfig} and validates it
 * with {@link ModelConfigValidator}. A field outside Quiver's subset of Triton's configuration is an
 * error that names the field, the file and the line: nothing is silently ignored. Stateless,
 * thread-safe.
 */
public final class ModelConfigParser {
  /** The config file's name inside a model directory. */
  public static final String CONFIG_FILENAME = "config.pbtxt";
  /** Largest config.pbtxt accepted, in bytes. Real configs are a few KiB; this bounds what a bad file can cost. */
  public static final int MAX_CONFIG_BYTES = 1 << 20;

  // TextFormat reports unknown fields in one of two shapes, depending on the protobuf-java version:
  //   'Message type "inference.ModelConfig" has no field named "x".'
  //   'Input contains unknown fields and/or extensions:\n3:1:\tinference.ModelConfig.x' (one line per field)
  private static final Pattern UNKNOWN_FIELD = Pattern.compile("Message type \"([^\"]+)\" has no field named \"([^\"]+)\"");
  private static final Pattern UNKNOWN_FIELD_LINE = Pattern.compile("(?m)^(\\d+):(\\d+):\\s*([\\w.]+)\\.(\\w+)\\s*$");
  private static final String SUBSET_HINT = "Quiver supports a subset of Triton's model configuration; remove it";
  // Unknown fields are errors (the default), and a field given twice is an error rather than "last one wins".
  private static final TextFormat.Parser PARSER = TextFormat.Parser.newBuilder()
      .setSingularOverwritePolicy(TextFormat.Parser.SingularOverwritePolicy.FORBID_SINGULAR_OVERWRITES)
      .build();

  private ModelConfigParser() {}

  /**
   * Reads, parses and validates {@code file}. The result carries the model's name even when the file
   * leaves {@code name} out.
   *
   * @param modelName the model's directory name
   * @throws InferenceException NOT_FOUND when the file does not exist; INVALID_ARGUMENT when it does
   *     not parse (naming file, line, column and field) or holds invalid values; INTERNAL on I/O errors
   */
  public static ModelConfig parseFile(Path file, String modelName) {
    return parse(read(file), file.toString(), modelName);
  }

  /**
   * Parses and validates config text (from a file, an upload or an object store).
   *
   * @param source where the text came from, used in messages (e.g. a path or an s3:// URL)
   * @param modelName the model's name, which the config's {@code name} must equal when set
   */
  public static ModelConfig parse(String text, String source, String modelName) {
    ModelConfig.Builder builder = ModelConfig.newBuilder();
    try {
      PARSER.merge(text, builder);
    } catch (TextFormat.ParseException e) {
      throw parseError(e, source);
    }
    if (builder.getName().isEmpty() && modelName != null) {
      builder.setName(modelName);
    }
    ModelConfig config = builder.build();
    ModelConfigValidator.validate(config, modelName, source);
    return config;
  }

  private static InferenceException parseError(TextFormat.ParseException e, String source) {
    String description = stripPosition(e.getMessage());
    String what = description;
    Matcher unknown = UNKNOWN_FIELD.matcher(description);
    if (unknown.find()) {
      what = "unsupported field '" + unknown.group(2) + "' in " + unknown.group(1) + " (" + SUBSET_HINT + ")";
    } else {
      Matcher lines = UNKNOWN_FIELD_LINE.matcher(description);
      StringBuilder fields = new StringBuilder();
      int count = 0;
      while (lines.find()) {
        fields.append(count++ == 0 ? "" : ", ").append('\'').append(lines.group(4)).append("' in ")
            .append(lines.group(3)).append(" at line ").append(lines.group(1)).append(", column ").append(lines.group(2));
      }
      if (count > 0) {
        what = "unsupported field" + (count > 1 ? "s " : " ") + fields + " (" + SUBSET_HINT + ")";
      }
    }
    String where = e.getLine() >= 0 ? source + ":" + e.getLine() + ":" + e.getColumn() : source;
    return new InferenceException(ErrorCode.INVALID_ARGUMENT, "cannot parse " + where + ": " + what, null, 0L, e);
  }

  // ParseException messages start with "line:column: "; the position is reported separately.
  private static String stripPosition(String message) {
    if (message == null) {
      return "syntax error";
    }
    int i = 0;
    int colons = 0;
    while (i < message.length() && colons < 2) {
      char c = message.charAt(i);
      if (c == ':') {
        colons++;
      } else if (!Character.isDigit(c) && c != '-') {
        return message;
      }
      i++;
    }
    return colons == 2 ? message.substring(i).trim() : message;
  }

  /** A config file's text, checked for size and UTF-8; its errors are {@link #parseFile}'s. */
  static String read(Path file) {
    try {
      long size = Files.size(file);
      if (size > MAX_CONFIG_BYTES) {
        throw InferenceException.invalidArgument("%s is %d bytes; at most %d are accepted", file, size, MAX_CONFIG_BYTES);
      }
      byte[] bytes = Files.readAllBytes(file);
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (NoSuchFileException e) {
      throw InferenceException.notFound("%s does not exist", file);
    } catch (CharacterCodingException e) {
      throw InferenceException.invalidArgument("%s is not valid UTF-8 text", file);
    } catch (IOException e) {
      throw InferenceException.internal("cannot read " + file + ": " + e, e);
    }
  }
}
