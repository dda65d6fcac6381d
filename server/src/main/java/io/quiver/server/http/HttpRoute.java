package io.quiver.server.http;

import io.netty.handler.codec.http.FullHttpRequest;

/**
 * Extra paths served on the REST port beside the REST v2 ones (the web console). Asked before REST v2
 * authorization and routing, so a route applies its own security. Implementations are shared by every
 * connection and must be thread-safe.
 */
public interface HttpRoute {
  /** Whether this route serves {@code path}. Called on the event loop for every request: keep it a prefix test. */
  boolean matches(String path);

  /**
   * Answers one request, on the event loop: must not block (hand blocking work to another thread and
   * write from there). Writes exactly one response, through {@code exchange} (an HTTP/1.1 connection or
   * an HTTP/2 stream). {@code request} is released when this returns:
   * retain what outlives the call.
   *
   * @param path the decoded path of the request URI, without the query
   */
  void handle(RestExchange exchange, FullHttpRequest request, String path, boolean keepAlive);
}
