package io.quiver.client;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * Call credentials that put one header on every call: {@code x-api-key: KEY} or
 * {@code authorization: Bearer TOKEN} (the token read from a supplier at each call, so a refreshed token
 * is picked up). Unless allowed, they refuse to travel over a connection without privacy (plaintext): the
 * call fails with UNAUTHENTICATED and the secret is never written. Thread-safe.
 */
final class HeaderCredentials extends CallCredentials {
  static final Metadata.Key<String> API_KEY = Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Metadata.Key<String> key;
  private final String prefix;
  private final Supplier<String> value;
  private final boolean allowPlaintext;

  HeaderCredentials(Metadata.Key<String> key, String prefix, Supplier<String> value, boolean allowPlaintext) {
    this.key = key;
    this.prefix = prefix;
    this.value = value;
    this.allowPlaintext = allowPlaintext;
  }

  @Override
  public void applyRequestMetadata(RequestInfo info, Executor appExecutor, MetadataApplier applier) {
    if (!allowPlaintext && info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
      applier.fail(Status.UNAUTHENTICATED.withDescription("the client refuses to send " + key.name()
          + " over a connection without TLS; use TLS, or allow it with credentialsOverPlaintext(true)"
          + " (e.g. behind a sidecar that encrypts)"));
      return;
    }
    String secret;
    try {
      secret = value.get();
    } catch (RuntimeException e) {
      applier.fail(Status.UNAUTHENTICATED.withDescription("the credential supplier failed: " + e).withCause(e));
      return;
    }
    if (secret == null || secret.isEmpty()) {
      applier.fail(Status.UNAUTHENTICATED.withDescription("the credential supplier returned no " + key.name()));
      return;
    }
    Metadata headers = new Metadata();
    headers.put(key, prefix + secret);
    applier.apply(headers);
  }
}
