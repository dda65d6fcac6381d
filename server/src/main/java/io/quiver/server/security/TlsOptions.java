package io.quiver.server.security;

import java.nio.file.Path;

/**
 * Where a TLS endpoint finds its PEM files.
 *
 * @param certChain the server certificate chain, leaf first (PEM)
 * @param privateKey the server's unencrypted PKCS#8 private key (PEM)
 * @param clientCa CA certificates that client certificates must chain to; null = no client certificates
 *     (plain TLS); set = mutual TLS, a client without a valid certificate is refused in the handshake
 * @param reloadCheckMillis how often, at most, a handshake looks at the files' modification time, size
 *     and inode; a change reloads them (0 = on every handshake)
 */
public record TlsOptions(Path certChain, Path privateKey, Path clientCa, long reloadCheckMillis) {
  /** One check a second: rotation is seen within a second, and busy servers stat the files rarely. */
  public static final long DEFAULT_RELOAD_CHECK_MILLIS = 1_000;

  public TlsOptions {
    if (certChain == null || privateKey == null) {
      throw new IllegalArgumentException("TLS needs both a certificate chain and a private key");
    }
    if (reloadCheckMillis < 0) {
      throw new IllegalArgumentException("reloadCheckMillis must be ≥ 0; was " + reloadCheckMillis);
    }
  }

  public static TlsOptions of(Path certChain, Path privateKey, Path clientCa) {
    return new TlsOptions(certChain, privateKey, clientCa, DEFAULT_RELOAD_CHECK_MILLIS);
  }

  public boolean mutual() {
    return clientCa != null;
  }
}
