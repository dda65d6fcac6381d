package io.quiver.server.security;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's key, certificate chain and (for mTLS) client CAs, read from PEM files and reloaded when
 * the files change. Exposed as a {@link #keyManager()} and a {@link #trustManager()} whose every
 * handshake reads the current material, so an SslContext built once over them serves rotated
 * certificates to new connections without a restart (connections already open keep theirs).
 *
 * <p>How a change is detected: a handshake that finds the last check older than {@code
 * reloadCheckMillis} stats the files (modification time, size, inode); when any differs from what
 * was loaded, the files are read again. A half-written rotation (unparsable PEM, or a key that does not
 * match the certificate) keeps the previous material, logs a warning and is retried on the next
 * check. Thread-safe: the material is one immutable snapshot behind a volatile field; one thread at a
 * time checks (a CAS on the next check time), handshakes never wait for it.
 */
public final class ReloadingPemMaterial {
  private static final Logger log = LoggerFactory.getLogger(ReloadingPemMaterial.class);

  private final TlsOptions options;
  private final AtomicLong nextCheckNanos = new AtomicLong();
  private final AtomicLong generations = new AtomicLong();
  private volatile Snapshot current;
  private volatile Snapshot previous;

  /** Reads the files now; a failure here is a startup error. */
  public ReloadingPemMaterial(TlsOptions options) throws IOException, GeneralSecurityException {
    this.options = Objects.requireNonNull(options);
    this.current = load(stamp());
    nextCheckNanos.set(System.nanoTime() + options.reloadCheckMillis() * 1_000_000L);
  }

  public TlsOptions options() {
    return options;
  }

  /** The certificate now served (the leaf). */
  public X509Certificate serverCertificate() {
    return current.chain[0];
  }

  /** Checks the files now and reloads them if they changed; returns whether new material was loaded. */
  public boolean reloadIfChanged() {
    String stamp;
    try {
      stamp = stamp();
    } catch (IOException e) {
      log.warn("TLS files unreadable ({}); keeping the certificate loaded before", e.toString());
      return false;
    }
    if (stamp.equals(current.stamp)) {
      return false;
    }
    try {
      Snapshot next = load(stamp);
      previous = current;
      current = next;
      log.info("TLS material reloaded: serving {} (serial {}), valid until {}",
          next.chain[0].getSubjectX500Principal().getName(), next.chain[0].getSerialNumber().toString(16),
          next.chain[0].getNotAfter().toInstant());
      return true;
    } catch (IOException | GeneralSecurityException | RuntimeException e) {
      log.warn("TLS files changed but could not be loaded ({}); keeping the certificate loaded before", e.toString());
      return false;
    }
  }

  private void maybeReload() {
    long now = System.nanoTime();
    long next = nextCheckNanos.get();
    if (now - next >= 0 && nextCheckNanos.compareAndSet(next, now + options.reloadCheckMillis() * 1_000_000L)) {
      reloadIfChanged();
    }
  }

  private String stamp() throws IOException {
    StringBuilder s = new StringBuilder();
    for (Path p : options.clientCa() == null
        ? List.of(options.certChain(), options.privateKey())
        : List.of(options.certChain(), options.privateKey(), options.clientCa())) {
      BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class); // follows symlinks (k8s ..data swaps)
      s.append(a.lastModifiedTime().toMillis()).append('/').append(a.lastModifiedTime().toInstant().getNano())
          .append('/').append(a.size()).append('/').append(a.fileKey()).append(';');
    }
    return s.toString();
  }

  private Snapshot load(String stamp) throws IOException, GeneralSecurityException {
    List<X509Certificate> chain = PemFiles.certificates(options.certChain());
    PrivateKey key = PemFiles.privateKey(options.privateKey());
    checkPair(key, chain.get(0));
    X509ExtendedTrustManager trust = null;
    if (options.clientCa() != null) {
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(null, null);
      int i = 0;
      for (X509Certificate ca : PemFiles.certificates(options.clientCa())) {
        store.setCertificateEntry("ca-" + i++, ca);
      }
      TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      factory.init(store);
      for (TrustManager tm : factory.getTrustManagers()) {
        if (tm instanceof X509ExtendedTrustManager x) {
          trust = x;
        }
      }
      if (trust == null) {
        throw new GeneralSecurityException("the JDK offered no X509ExtendedTrustManager");
      }
    }
    return new Snapshot(generations.incrementAndGet(), stamp, key, chain.toArray(new X509Certificate[0]), trust);
  }

  /** A rotation that replaced the certificate but not yet the key must not be served. */
  private static void checkPair(PrivateKey key, X509Certificate cert) throws GeneralSecurityException {
    String algorithm = switch (key.getAlgorithm()) {
      case "RSA" -> "SHA256withRSA";
      case "EC" -> "SHA256withECDSA";
      default -> key.getAlgorithm(); // Ed25519
    };
    byte[] probe = "quiver-key-check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    Signature signer = Signature.getInstance(algorithm);
    signer.initSign(key);
    signer.update(probe);
    byte[] signature = signer.sign();
    Signature verifier = Signature.getInstance(algorithm);
    verifier.initVerify(cert.getPublicKey());
    verifier.update(probe);
    if (!verifier.verify(signature)) {
      throw new GeneralSecurityException("the private key does not match the certificate "
          + cert.getSubjectX500Principal().getName());
    }
  }

  /** Immutable: one consistent key + chain + trust. */
  private record Snapshot(long generation, String stamp, PrivateKey key, X509Certificate[] chain,
      X509ExtendedTrustManager trust) {
    String alias() {
      return "quiver-" + generation;
    }

    boolean serves(String keyType) {
      String alg = key.getAlgorithm();
      return keyType == null
          || keyType.equalsIgnoreCase(alg)
          || (alg.equals("RSA") && keyType.startsWith("RSA"))
          || (alg.equals("EC") && (keyType.startsWith("EC")))
          || (alg.startsWith("Ed") && (keyType.equals("EdDSA") || keyType.startsWith("Ed")));
    }
  }

  private Snapshot byAlias(String alias) {
    Snapshot c = current;
    if (c.alias().equals(alias)) {
      return c;
    }
    Snapshot p = previous; // a handshake that chose its alias just before a swap
    return p != null && p.alias().equals(alias) ? p : null;
  }

  /** A key manager that serves the current key and chain; checks for changed files at most once per interval. */
  public X509ExtendedKeyManager keyManager() {
    return new X509ExtendedKeyManager() {
      @Override
      public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return chooseServerAlias(keyType, issuers, null);
      }

      @Override
      public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        maybeReload();
        Snapshot c = current;
        return c.serves(keyType) ? c.alias() : null;
      }

      @Override
      public String[] getServerAliases(String keyType, Principal[] issuers) {
        Snapshot c = current;
        return c.serves(keyType) ? new String[] {c.alias()} : null;
      }

      @Override
      public X509Certificate[] getCertificateChain(String alias) {
        Snapshot s = byAlias(alias);
        return s == null ? null : s.chain.clone();
      }

      @Override
      public PrivateKey getPrivateKey(String alias) {
        Snapshot s = byAlias(alias);
        return s == null ? null : s.key;
      }

      @Override
      public String[] getClientAliases(String keyType, Principal[] issuers) {
        return null;
      }

      @Override
      public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
        return null;
      }
    };
  }

  /** The trust manager for client certificates (mTLS), or null when no client CA is configured. */
  public X509ExtendedTrustManager trustManager() {
    if (options.clientCa() == null) {
      return null;
    }
    return new X509ExtendedTrustManager() {
      private X509ExtendedTrustManager trust() {
        maybeReload();
        return current.trust;
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        trust().checkClientTrusted(chain, authType, socket);
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        trust().checkClientTrusted(chain, authType, engine);
      }

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        trust().checkClientTrusted(chain, authType);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        throw new CertificateException("this trust manager checks clients only");
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        throw new CertificateException("this trust manager checks clients only");
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("this trust manager checks clients only");
      }

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        List<X509Certificate> issuers = new ArrayList<>(List.of(current.trust.getAcceptedIssuers()));
        return issuers.toArray(new X509Certificate[0]);
      }
    };
  }
}
