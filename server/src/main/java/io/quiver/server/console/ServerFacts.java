package io.quiver.server.console;

import java.util.List;

/**
 * What the server page shows about the running server, fixed once every port is bound.
 *
 * @param controlPort the control plane's port, or -1 when it is off
 * @param metricsPort the Prometheus port, or -1 when it is off
 * @param tls "plaintext", "TLS" or "mutual TLS"
 * @param authentication "off" or a short description of the security file in force
 */
public record ServerFacts(String version, long startedAtMillis, String host, int grpcPort, int httpPort,
    int metricsPort, int controlPort, String tls, String authentication, List<String> extensions,
    String repository, String controlMode, boolean tracing) {
  public ServerFacts {
    extensions = List.copyOf(extensions);
  }
}
