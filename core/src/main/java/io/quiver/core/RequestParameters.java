package io.quiver.core;

import java.util.Set;

/**
 * The rule for inference request parameter keys, the same over gRPC and REST: keys starting with
 * {@code triton_} are Triton's reserved ones and an unknown one is refused (as Triton refuses it); any
 * other key Quiver does not know is a custom parameter, which Triton hands to the model's backend and
 * Quiver's runtimes do not read, so it is accepted and has no effect. Stateless.
 */
public final class RequestParameters {
  /** Triton's reserved prefix. */
  public static final String RESERVED_PREFIX = "triton_";
  /** Reserved keys a client may send: the decoupled final-response flag, meaningless (and ignored) here. */
  public static final Set<String> KNOWN_RESERVED = Set.of("triton_enable_empty_final_response");

  private RequestParameters() {}

  /**
   * @param field where the parameters are, for the message ("parameters")
   * @throws InferenceException INVALID_ARGUMENT naming the first unknown reserved key
   */
  public static void checkKeys(Iterable<String> keys, String field) {
    for (String key : keys) {
      if (key.startsWith(RESERVED_PREFIX) && !KNOWN_RESERVED.contains(key)) {
        throw InferenceException.invalidField(field + "[" + key + "]",
            "parameter keys starting with '%s' are reserved; '%s' is not one this server knows", RESERVED_PREFIX,
            key.length() > 64 ? key.substring(0, 64) + "..." : key);
      }
    }
  }
}
