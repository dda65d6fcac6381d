package io.quiver.examples.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Test certificates made with the openssl CLI: a CA, a server certificate for 127.0.0.1/localhost, client certificates. */
final class Certificates {
  private final Path dir;

  Certificates(Path dir) {
    this.dir = dir;
  }

  Path pem(String name) {
    return dir.resolve(name + ".pem");
  }

  Path key(String name) {
    return dir.resolve(name + ".key");
  }

  void authority(String name) throws IOException {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", key(name).toString(), "-out", pem(name).toString(), "-subj", "/CN=" + name);
  }

  void server(String name, String authority) throws IOException {
    signed(name, authority, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  }

  void client(String name, String authority) throws IOException {
    signed(name, authority, "extendedKeyUsage=clientAuth\n");
  }

  private void signed(String name, String authority, String extensions) throws IOException {
    Path request = dir.resolve(name + ".csr");
    Path ext = dir.resolve(name + ".ext");
    Files.writeString(ext, extensions, StandardCharsets.US_ASCII);
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key(name).toString(), "-out", request.toString(), "-subj", "/CN=" + name);
    openssl("x509", "-req", "-in", request.toString(), "-CA", pem(authority).toString(), "-CAkey", key(authority).toString(),
        "-set_serial", Long.toString(System.nanoTime() & Long.MAX_VALUE), "-days", "2", "-extfile", ext.toString(),
        "-out", pem(name).toString());
  }

  private void openssl(String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    try {
      String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
        throw new IOException("openssl " + String.join(" ", args) + " failed: " + output);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }
}
