package io.quiver.server.security;

import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.security.GeneralSecurityException;
import javax.net.ssl.SSLException;

/**
 * Server SslContexts over {@link ReloadingPemMaterial}: one for gRPC (HTTP/2 ALPN, BoringSSL from
 * netty-tcnative-boringssl-static, else the JDK) and one for HTTP/1.1 (REST). Each is built once; rotated PEM files
 * reach new connections through the reloading key and trust managers. Any Netty-based server of the
 * project (the data plane, the control plane) uses it the same way:
 *
 * <pre>{@code
 * ReloadingPemMaterial tls = new ReloadingPemMaterial(TlsOptions.of(cert, key, clientCaOrNull));
 * NettyServerBuilder.forAddress(address).sslContext(TlsContexts.forGrpcServer(tls))...
 * }</pre>
 *
 * <p>With a client CA, client certificates are required (ClientAuth.REQUIRE): a client without a
 * certificate that chains to that CA fails the handshake. Stateless.
 */
public final class TlsContexts {
  private TlsContexts() {}

  /** Reads the PEM files now (failures are startup errors) and returns the reloading material. */
  public static ReloadingPemMaterial material(TlsOptions options) throws IOException {
    try {
      return new ReloadingPemMaterial(options);
    } catch (GeneralSecurityException e) {
      throw new IOException("TLS: " + e.getMessage(), e);
    }
  }

  /** For NettyServerBuilder.sslContext: TLS 1.2/1.3 with ALPN h2. */
  public static SslContext forGrpcServer(ReloadingPemMaterial material) throws SSLException {
    return GrpcSslContexts.configure(builder(material)).build();
  }

  /**
   * For the REST endpoint's SslHandler: ALPN offers h2 and http/1.1, so a client that speaks HTTP/2
   * negotiates it and the REST port's protocol sniffer sees its preface; clients without ALPN, or that
   * choose http/1.1, get HTTP/1.1.
   */
  public static SslContext forHttpServer(ReloadingPemMaterial material) throws SSLException {
    return builder(material)
        .applicationProtocolConfig(new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN,
            ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
            ApplicationProtocolNames.HTTP_2, ApplicationProtocolNames.HTTP_1_1))
        .build();
  }

  private static SslContextBuilder builder(ReloadingPemMaterial material) {
    SslContextBuilder builder = SslContextBuilder.forServer(material.keyManager());
    if (material.trustManager() != null) {
      builder.trustManager(material.trustManager()).clientAuth(ClientAuth.REQUIRE);
    }
    return builder;
  }
}
