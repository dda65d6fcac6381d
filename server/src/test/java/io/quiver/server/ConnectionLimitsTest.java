package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.server.security.TlsOptions;
import io.quiver.transport.ConnectionOptions;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Idle, slowloris and handshake-dawdling connections are closed within the configured timeouts on every
 * port, and connections past the per-address limit are refused at once, over real sockets. The timeouts
 * here are short (a second or less); the assertions give the machine generous slack above them (this
 * machine is shared and loaded) but would fail if the timeout did not apply at all (the defaults are two
 * minutes).
 */
class ConnectionLimitsTest {
  /** Slack over a timeout before the test calls it missed. */
  static final long SLACK_MILLIS = 8_000;
  static final long HANDSHAKE_MS = 500;
  static final long HEADER_MS = 700;
  static final long REQUEST_MS = 1_500;
  static final long IDLE_MS = 1_000;

  @TempDir static Path repository;
  @TempDir static Path pkiDir;

  @BeforeAll
  static void models() throws IOException {
    ExampleModels.writeIdentityFp32(repository);
  }

  static ConnectionOptions shortTimeouts() {
    return ConnectionOptions.defaults().withTimeouts(HANDSHAKE_MS, HEADER_MS, REQUEST_MS, IDLE_MS)
        .withKeepAlive(1_000, 1_000, 0);
  }

  static ServerOptions options(ConnectionOptions connections) {
    return new ServerOptions("127.0.0.1", 0, repository, ControlMode.NONE, List.of(),
        ServerOptions.DEFAULT_MAX_MESSAGE_BYTES, 1, 2_000, 0, -1, 1024 * 1024, false)
        .withControlPlane(ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .withLifecycle(ServerOptions.Lifecycle.defaults().withPollIntervalMillis(0))
        .withConnections(connections);
  }

  /** Milliseconds until the server closes the socket (read returns -1 or the connection resets). */
  static long millisUntilClosed(Socket socket, long startNanos) throws IOException {
    socket.setSoTimeout((int) (SLACK_MILLIS * 4));
    InputStream in = socket.getInputStream();
    byte[] buf = new byte[4096];
    try {
      while (in.read(buf) >= 0) {
        // the server's answer (408) or HTTP/2 frames: keep reading until it closes
      }
    } catch (SocketException e) {
      // reset by the server: closed too
    } catch (SocketTimeoutException e) {
      return Long.MAX_VALUE;
    }
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
  }

  /** Writes {@code bytes} one at a time, {@code gapMillis} apart, until the server closes the socket. */
  static Thread trickle(Socket socket, byte[] bytes, long gapMillis) {
    Thread t = new Thread(() -> {
      try {
        OutputStream out = socket.getOutputStream();
        for (int i = 0; ; i++) {
          out.write(bytes[i % bytes.length]);
          out.flush();
          Thread.sleep(gapMillis);
        }
      } catch (IOException | InterruptedException e) {
        // closed by the server: done
      }
    }, "slowloris");
    t.setDaemon(true);
    t.start();
    return t;
  }

  @Test
  void flags_setEveryLimit_tritonSpellingsIncluded_andBadValuesAreRefused() {
    assertThat(Main.serveOptions("serve").connections()).isEqualTo(ConnectionOptions.defaults());
    ConnectionOptions set = Main.serveOptions("tritonserver", "--max-connections=50", "--max-connections-per-address=5",
        "--handshake-timeout-ms=1000", "--http-header-timeout-ms=2000", "--http-request-timeout-ms=3000",
        "--idle-timeout-ms=4000", "--grpc-keepalive-time=7200000", "--grpc-keepalive-timeout=21000",
        "--grpc-permit-keepalive-time-ms=0", "--grpc-max-connection-age=600000", "--grpc-max-connection-age-grace-ms=5000",
        "--grpc-max-pending-answer-bytes-per-connection=1048576", "--grpc-max-pending-answer-bytes=8388608",
        "--grpc-max-unanswered-per-stream=8").connections();
    assertThat(set).isEqualTo(new ConnectionOptions(50, 5, 1000, 2000, 3000, 4000, 7_200_000, 21_000, 0, 600_000, 5000,
        1 << 20, 8 << 20, 8));
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Main.serveOptions("serve", "--max-connections-per-address=0"))
        .isInstanceOf(picocli.CommandLine.ParameterException.class).hasMessageContaining("per address 0");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Main.serveOptions("serve", "--idle-timeout-ms=0"))
        .isInstanceOf(picocli.CommandLine.ParameterException.class).hasMessageContaining("timeouts must be positive");
  }

  @Test
  void idleAndSlowConnections_areClosedWithinTheTimeouts_onEveryPort() throws Exception {
    try (QuiverServer server = new QuiverServer(options(shortTimeouts())).start()) {
      int rest = server.httpPort();
      // REST, nothing sent: the idle timeout.
      try (Socket idle = new Socket("127.0.0.1", rest)) {
        long t = millisUntilClosed(idle, System.nanoTime());
        assertThat(t).as("idle REST connection closed after (ms)").isBetween(IDLE_MS / 2, IDLE_MS + SLACK_MILLIS);
      }
      // REST slowloris: a header byte every 100 ms never ends the headers: 408 after the header timeout.
      try (Socket slow = new Socket("127.0.0.1", rest)) {
        long t0 = System.nanoTime();
        slow.getOutputStream().write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
        trickle(slow, "X-Slow: aaaa".getBytes(StandardCharsets.US_ASCII), 100);
        long t = millisUntilClosed(slow, t0);
        assertThat(t).as("slowloris REST headers closed after (ms)").isBetween(HEADER_MS / 2, HEADER_MS + SLACK_MILLIS);
      }
      // REST slow body: headers complete, the body trickles: 408 after the request timeout.
      try (Socket slow = new Socket("127.0.0.1", rest)) {
        long t0 = System.nanoTime();
        slow.getOutputStream().write(("POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        trickle(slow, "{".getBytes(StandardCharsets.US_ASCII), 100);
        long t = millisUntilClosed(slow, t0);
        assertThat(t).as("slow REST body closed after (ms)").isBetween(REQUEST_MS / 2, REQUEST_MS + SLACK_MILLIS);
      }
      // REST keep-alive after an answer: the idle timeout again.
      try (Socket kept = new Socket("127.0.0.1", rest)) {
        kept.getOutputStream().write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        long t = millisUntilClosed(kept, System.nanoTime());
        assertThat(t).as("kept-alive REST connection closed after (ms)").isBetween(IDLE_MS / 2, IDLE_MS + SLACK_MILLIS);
      }
      // gRPC and the control plane: no HTTP/2 preface (silence, then a trickle) within the handshake timeout.
      for (int port : new int[] {server.port(), server.controlPort()}) {
        try (Socket silent = new Socket("127.0.0.1", port)) {
          long t = millisUntilClosed(silent, System.nanoTime());
          assertThat(t).as("silent connection to %d closed after (ms)", port)
              .isBetween(HANDSHAKE_MS / 2, HANDSHAKE_MS + SLACK_MILLIS);
        }
        try (Socket slow = new Socket("127.0.0.1", port)) {
          long t0 = System.nanoTime();
          trickle(slow, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII), 100);
          long t = millisUntilClosed(slow, t0);
          assertThat(t).as("slow preface to %d closed after (ms)", port).isBetween(HANDSHAKE_MS / 2, HANDSHAKE_MS + SLACK_MILLIS);
        }
      }
      // gRPC after a call: max-connection-idle sends GOAWAY; the client's channel goes IDLE.
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      try {
        GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
            .serverLive(ServerLiveRequest.getDefaultInstance());
        long t0 = System.nanoTime();
        while (channel.getState(false) == ConnectivityState.READY
            && System.nanoTime() - t0 < TimeUnit.MILLISECONDS.toNanos(IDLE_MS + SLACK_MILLIS)) {
          Thread.sleep(20);
        }
        assertThat(channel.getState(false)).as("after %d ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0))
            .isNotEqualTo(ConnectivityState.READY);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void tlsHandshakeThatNeverStarts_isClosedWithinTheHandshakeTimeout() throws Exception {
    TestPki pki = new TestPki(pkiDir);
    pki.ca("ca");
    pki.server("server", "ca");
    ConnectionOptions connections = ConnectionOptions.defaults().withTimeouts(HANDSHAKE_MS, 60_000, 60_000, 60_000);
    try (QuiverServer server = new QuiverServer(options(connections)
        .withTls(new TlsOptions(pki.cert("server"), pki.key("server"), null, 0))).start()) {
      for (int port : new int[] {server.port(), server.httpPort(), server.controlPort()}) {
        try (Socket silent = new Socket("127.0.0.1", port)) {
          long t = millisUntilClosed(silent, System.nanoTime());
          assertThat(t).as("no ClientHello on port %d: closed after (ms)", port)
              .isBetween(HANDSHAKE_MS / 2, HANDSHAKE_MS + SLACK_MILLIS);
        }
      }
    }
  }

  @Test
  void connectionsPastThePerAddressLimit_areRefusedAtOnce_onEveryPort() throws Exception {
    ConnectionOptions connections = ConnectionOptions.defaults().withConnectionLimits(100, 3);
    try (QuiverServer server = new QuiverServer(options(connections)).start()) {
      List<Socket> held = new ArrayList<>();
      try {
        for (int i = 0; i < 3; i++) {
          held.add(new Socket("127.0.0.1", server.httpPort()));
        }
        // Counted when accepted: let the server see all three before the fourth.
        Thread.sleep(300);
        for (int port : new int[] {server.httpPort(), server.port(), server.controlPort()}) {
          try (Socket extra = new Socket("127.0.0.1", port)) {
            long t = millisUntilClosed(extra, System.nanoTime());
            assertThat(t).as("the fourth connection, to port %d, closed after (ms)", port).isLessThan(SLACK_MILLIS);
          }
        }
        ManagedChannel control = NettyChannelBuilder.forAddress("127.0.0.1", server.controlPort()).usePlaintext().build();
        try {
          org.assertj.core.api.Assertions.assertThatThrownBy(() -> ModelControlGrpc.newBlockingStub(control)
              .withDeadlineAfter(5, TimeUnit.SECONDS).listModels(ListModelsRequest.getDefaultInstance()))
              .isInstanceOf(io.grpc.StatusRuntimeException.class);
        } finally {
          control.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      } finally {
        for (Socket s : held) {
          s.close();
        }
      }
      // Below the limit again: served.
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
      try {
        boolean live = false;
        while (!live && System.nanoTime() < until) {
          try {
            live = GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
                .serverLive(ServerLiveRequest.getDefaultInstance()).getLive();
          } catch (io.grpc.StatusRuntimeException e) {
            Thread.sleep(100); // the held sockets' closes may still be on their way
          }
        }
        assertThat(live).isTrue();
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }
}
