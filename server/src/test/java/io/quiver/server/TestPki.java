package io.quiver.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Certificates made at test time with the openssl CLI: CAs, server certificates for localhost and
 * 127.0.0.1, client certificates; P-256 keys written as PKCS#8 PEM. Nothing is checked in.
 */
final class TestPki {
  private final Path dir;

  TestPki(Path dir) {
    this.dir = dir;
  }

  /** A self-signed CA: NAME.pem and NAME.key. */
  Path ca(String name) throws IOException {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", dir.resolve(name + ".key").toString(), "-out", dir.resolve(name + ".pem").toString(),
        "-days", "2", "-subj", "/CN=" + name);
    return dir.resolve(name + ".pem");
  }

  /** A server certificate for localhost/127.0.0.1 signed by the CA: NAME.pem and NAME.key. */
  Path server(String name, String ca) throws IOException {
    return leaf(name, ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  }

  /** A client certificate signed by the CA: NAME.pem and NAME.key. */
  Path client(String name, String ca) throws IOException {
    return leaf(name, ca, "extendedKeyUsage=clientAuth\n");
  }

  Path key(String name) {
    return dir.resolve(name + ".key");
  }

  Path cert(String name) {
    return dir.resolve(name + ".pem");
  }

  /** Replaces target with source the way a secret rotation does: a new file moved into place. */
  static void replace(Path source, Path target) throws IOException {
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    Files.copy(source, tmp, StandardCopyOption.REPLACE_EXISTING);
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private Path leaf(String name, String ca, String extensions) throws IOException {
    Path csr = dir.resolve(name + ".csr");
    Path ext = dir.resolve(name + ".ext");
    Files.writeString(ext, extensions, StandardCharsets.US_ASCII);
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key(name).toString(), "-out", csr.toString(), "-subj", "/CN=" + name);
    openssl("x509", "-req", "-in", csr.toString(), "-CA", cert(ca).toString(), "-CAkey", key(ca).toString(),
        "-set_serial", Long.toString(System.nanoTime() & Long.MAX_VALUE), "-days", "2", "-extfile", ext.toString(),
        "-out", cert(name).toString());
    return cert(name);
  }

  private void openssl(String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add("openssl");
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    try {
      String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IOException("openssl " + String.join(" ", args) + " failed: " + output);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }
}
