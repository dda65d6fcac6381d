package io.quiver.server.security;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Reads PEM files with the JDK alone: X.509 certificates, PKCS#8 private keys ({@code BEGIN PRIVATE
 * KEY}; convert others with {@code openssl pkcs8 -topk8 -nocrypt}) and X.509 public keys ({@code BEGIN
 * PUBLIC KEY}). RSA, EC and Ed25519 keys. Stateless.
 */
public final class PemFiles {
  private static final String[] KEY_ALGORITHMS = {"RSA", "EC", "Ed25519"};

  private PemFiles() {}

  /** Every certificate in the file, in order (leaf first for a chain). */
  public static List<X509Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
    byte[] pem = Files.readAllBytes(file);
    List<X509Certificate> out = new ArrayList<>();
    for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem))) {
      out.add((X509Certificate) c);
    }
    if (out.isEmpty()) {
      throw new GeneralSecurityException(file + " holds no PEM certificate");
    }
    return out;
  }

  /** The PKCS#8 private key in the file. */
  public static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    if (text.contains("BEGIN RSA PRIVATE KEY") || text.contains("BEGIN EC PRIVATE KEY")
        || text.contains("BEGIN ENCRYPTED PRIVATE KEY")) {
      throw new GeneralSecurityException(file + ": only unencrypted PKCS#8 keys ('BEGIN PRIVATE KEY') are supported;"
          + " convert with: openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8");
    }
    byte[] der = block(text, "PRIVATE KEY", file);
    for (String algorithm : KEY_ALGORITHMS) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(der));
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new GeneralSecurityException(file + ": not an RSA, EC or Ed25519 PKCS#8 private key");
  }

  /** The X.509 SubjectPublicKeyInfo public key in the file ('BEGIN PUBLIC KEY'). */
  public static PublicKey publicKey(Path file) throws IOException, GeneralSecurityException {
    String text = Files.readString(file, StandardCharsets.US_ASCII);
    byte[] der = block(text, "PUBLIC KEY", file);
    for (String algorithm : KEY_ALGORITHMS) {
      try {
        return KeyFactory.getInstance(algorithm).generatePublic(new X509EncodedKeySpec(der));
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new GeneralSecurityException(file + ": not an RSA, EC or Ed25519 public key");
  }

  private static byte[] block(String text, String label, Path file) throws GeneralSecurityException {
    String begin = "-----BEGIN " + label + "-----";
    String end = "-----END " + label + "-----";
    int from = text.indexOf(begin);
    int to = from < 0 ? -1 : text.indexOf(end, from);
    if (from < 0 || to < 0) {
      throw new GeneralSecurityException(file + " holds no '" + begin + "' block");
    }
    try {
      return Base64.getMimeDecoder().decode(text.substring(from + begin.length(), to));
    } catch (IllegalArgumentException e) {
      throw new GeneralSecurityException(file + ": bad base64 in the PEM block", e);
    }
  }
}
