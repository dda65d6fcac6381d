package io.quiver.examples.client;

import io.quiver.client.InferRequest;
import io.quiver.client.QuiverClient;
import io.quiver.client.Tensors;
import java.io.PrintStream;
import java.nio.file.Path;

/**
 * TLS, mutual TLS and an API key: {@code java ... TlsExample HOST:PORT CA.pem [CLIENT.pem CLIENT.key] [API_KEY]}
 * against a server started with {@code --tls-cert/--tls-key} (and {@code --tls-client-ca},
 * {@code --security-config}).
 */
public final class TlsExample {
  private TlsExample() {}

  public static void main(String[] args) {
    if (args.length < 2) {
      System.err.println("usage: TlsExample HOST:PORT CA.pem [CLIENT.pem CLIENT.key] [API_KEY]");
      System.exit(2);
    }
    Path cert = args.length >= 4 ? Path.of(args[2]) : null;
    Path key = args.length >= 4 ? Path.of(args[3]) : null;
    String apiKey = args.length == 3 ? args[2] : args.length >= 5 ? args[4] : null;
    run(args[0], Path.of(args[1]), cert, key, apiKey, System.out);
  }

  /** One inference over TLS (mTLS when a client certificate is given, with an API key when one is given). */
  public static float[] run(String target, Path ca, Path clientCert, Path clientKey, String apiKey, PrintStream out) {
    QuiverClient.Builder builder = QuiverClient.builder().target(target).tlsTrust(ca);
    if (clientCert != null) {
      builder.tlsClientCertificate(clientCert, clientKey);
    }
    if (apiKey != null) {
      builder.apiKey(apiKey);
    }
    try (QuiverClient client = builder.build()) {
      float[] out0 = client.infer(InferRequest.builder("identity_fp32")
          .input("INPUT0", Tensors.fp32(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 1, 16))
          .build()).output("OUTPUT0").toFloatArray();
      out.println("over TLS" + (clientCert != null ? " (mutual)" : "") + (apiKey != null ? " with an API key" : "")
          + ": " + java.util.Arrays.toString(out0));
      return out0;
    }
  }
}
