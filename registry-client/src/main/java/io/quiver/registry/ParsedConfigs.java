package io.quiver.registry;

import io.quiver.proto.inference.ModelConfig;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The config text a repository last parsed for each model, and what it parsed to. A repository still
 * reads {@code config.pbtxt} at every call, so an edit is seen by the next one; only the parse
 * (protobuf text, then {@link ModelConfigValidator}) is skipped while the text is unchanged. In lazy
 * mode every on-demand load asks for its model, and parsing was a tenth of such a load's CPU.
 * Bounded: texts up to {@link #MAX_KEPT_CHARS} are kept, for up to {@link #MAX_KEPT} models, past
 * which all are dropped and each model parses again on its next call. Thread-safe.
 */
public final class ParsedConfigs {
  /** Longest config text whose parse is kept; Triton's configs are a few KiB at most. */
  static final int MAX_KEPT_CHARS = 16 * 1024;
  /** Most models whose parse is kept. */
  static final int MAX_KEPT = 1024;

  private final ConcurrentHashMap<String, Parsed> parsed = new ConcurrentHashMap<>();

  private record Parsed(String text, ModelConfig config) {}

  /**
   * The model's config from {@code text}: the one parsed last time if the text is the same, else
   * {@link ModelConfigParser#parse}'s, with its errors.
   */
  public ModelConfig parse(String model, String text, String source) {
    Parsed last = parsed.get(model);
    if (last != null && last.text().equals(text)) {
      return last.config();
    }
    ModelConfig config = ModelConfigParser.parse(text, source, model);
    if (text.length() <= MAX_KEPT_CHARS) {
      if (parsed.size() >= MAX_KEPT) {
        parsed.clear();
      }
      parsed.put(model, new Parsed(text, config));
    }
    return config;
  }

  /** Drops what is kept for a model that is gone or has no config file any more. */
  public void forget(String model) {
    parsed.remove(model);
  }
}
