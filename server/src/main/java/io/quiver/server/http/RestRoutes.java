package io.quiver.server.http;

import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;

/**
 * A group of REST paths that lives outside {@link RestHandler} (batch jobs under {@code /v2/jobs}):
 * the handler authenticates and authorizes the call, then runs {@link #handle} on {@link #executor()}
 * (never on the event loop) and answers 200 with the returned JSON, or maps the exception like every
 * other path ({@link HttpErrors}; UNAUTHENTICATED is 401, PERMISSION_DENIED 403). Implementations are thread-safe.
 */
public interface RestRoutes {
  /** Where {@link #handle} runs; it may block. A rejected task is answered 503. */
  Executor executor();

  /**
   * @param method the HTTP method ("GET", "POST", ...)
   * @param segments the decoded path segments after {@code /v2/<group>}
   * @param query the decoded query parameters
   * @param body the request body (empty when none)
   * @param principal who is calling ("anonymous" when security is off)
   * @param peer the caller's address
   * @return the JSON body of a 200 answer
   * @throws io.quiver.core.InferenceException the error to answer with
   */
  byte[] handle(String method, List<String> segments, Map<String, List<String>> query, byte[] body, String principal,
      String peer);
}
