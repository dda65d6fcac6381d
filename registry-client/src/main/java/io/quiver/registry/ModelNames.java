package io.quiver.registry;

import io.quiver.core.InferenceException;

/**
 * The rule for model names, checked wherever a name arrives from outside (a request, the control
 * plane, a directory listing) before it is used to build a path. Stateless, thread-safe.
 */
public final class ModelNames {
  /** Longest accepted model name, in chars (a directory name on common filesystems is at most 255 bytes). */
  public static final int MAX_NAME_LENGTH = 255;

  private ModelNames() {}

  /**
   * Returns the reason the name is unacceptable, or null when it is a valid model name: non-empty, at
   * most {@link #MAX_NAME_LENGTH} chars, no '/', '\', "..", leading '.', or control characters. The
   * rule exists so that {@code root.resolve(name)} can never leave the repository root.
   */
  public static String problem(String name) {
    if (name == null || name.isEmpty()) {
      return "model name must not be empty";
    }
    if (name.length() > MAX_NAME_LENGTH) {
      return "model name must be at most " + MAX_NAME_LENGTH + " characters; was " + name.length();
    }
    if (name.charAt(0) == '.') {
      return "model name must not start with '.'; was '" + printable(name) + "'";
    }
    if (name.contains("..")) {
      return "model name must not contain '..'; was '" + printable(name) + "'";
    }
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '/' || c == '\\') {
        return "model name must not contain '" + c + "'; was '" + printable(name) + "'";
      }
      if (Character.isISOControl(c)) {
        return "model name must not contain control characters; was '" + printable(name) + "'";
      }
    }
    return null;
  }

  /** Whether {@link #problem} finds nothing wrong. */
  public static boolean isValid(String name) {
    return problem(name) == null;
  }

  /** @throws InferenceException INVALID_ARGUMENT naming what is wrong with the name */
  public static String requireValid(String name) {
    String problem = problem(name);
    if (problem != null) {
      throw InferenceException.invalidArgument("%s", problem);
    }
    return name;
  }

  /** The name with control characters escaped as \\uXXXX, safe to put in a log line or error message. */
  public static String printable(String s) {
    StringBuilder out = null;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isISOControl(c)) {
        if (out == null) {
          out = new StringBuilder(s.length() + 8).append(s, 0, i);
        }
        out.append(String.format("\\u%04x", (int) c));
      } else if (out != null) {
        out.append(c);
      }
    }
    return out == null ? s : out.toString();
  }
}
