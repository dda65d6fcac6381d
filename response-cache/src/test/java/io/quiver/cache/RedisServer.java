package io.quiver.cache;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis server for tests: Debian's {@code redis-server} (.ci/install-test-deps installs it),
 * started on a free loopback port with no persistence, stopped (and started again on the same port, for
 * outages) by the test. Not thread-safe; one per test.
 */
public final class RedisServer implements AutoCloseable {
  public static final Path BINARY = Path.of(System.getProperty("quiver.redis-server", "/usr/bin/redis-server"));

  private final int port;
  private Process process;

  private RedisServer(int port) {
    this.port = port;
  }

  /** Starts a server on a free port; fails with a clear message when redis-server is not installed. */
  public static RedisServer start() throws IOException, InterruptedException {
    if (!Files.isExecutable(BINARY)) {
      throw new IllegalStateException(BINARY + " is not installed: run .ci/install-test-deps (Debian's redis-server)");
    }
    IOException last = null;
    for (int attempt = 0; attempt < 5; attempt++) {
      RedisServer server = new RedisServer(freePort());
      try {
        server.restart();
        return server;
      } catch (IOException e) { // the port was taken between the probe and the start: try another
        last = e;
        server.stop();
      }
    }
    throw last;
  }

  public int port() {
    return port;
  }

  /** Starts the process (again, on the same port) and waits until it accepts connections. */
  public void restart() throws IOException, InterruptedException {
    process = new ProcessBuilder(List.of(BINARY.toString(), "--port", Integer.toString(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--protected-mode", "no", "--enable-debug-command", "yes",
        "--loglevel", "warning"))
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .start();
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < end) {
      if (!process.isAlive()) {
        throw new IOException("redis-server exited with " + process.exitValue() + " on port " + port);
      }
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return;
      } catch (IOException e) {
        Thread.sleep(20);
      }
    }
    throw new IOException("redis-server did not accept connections on port " + port + " within 10 s");
  }

  /** Kills the process (an outage) and waits until it is gone. */
  public void stop() throws InterruptedException {
    if (process != null && process.isAlive()) {
      process.destroy();
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    }
  }

  @Override
  public void close() throws InterruptedException {
    stop();
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
