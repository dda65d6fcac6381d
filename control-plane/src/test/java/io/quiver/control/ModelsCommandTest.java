package io.quiver.control;

import io.quiver.lifecycle.*;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.batching.DynamicBatcherFactory;
import io.quiver.control.cli.ModelsCommand;
import io.quiver.control.grpc.ControlPlaneOptions;
import io.quiver.control.grpc.ControlPlaneServer;
import io.quiver.examples.ExampleModels;
import io.quiver.registry.LocalModelRepository;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code quiver models ...} against a running control plane. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ModelsCommandTest {
  @TempDir Path repo;
  @TempDir Path work;
  private ModelManager manager;
  private ModelLifecycle lifecycle;
  private ControlPlaneServer control;
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  @BeforeEach
  void start() throws Exception {
    ExampleModels.writeSimple(repo);
    manager = new ModelManager(new LocalModelRepository(repo), ModelManager.discoverRuntimes(), new DynamicBatcherFactory(),
        ModelManagerOptions.defaults());
    lifecycle = new ModelLifecycle(manager, new LifecycleOptions(0, work.resolve("staging")));
    lifecycle.start();
    control = new ControlPlaneServer(lifecycle, ControlPlaneOptions.defaults().withPort(0).withBindAddress("127.0.0.1"))
        .start();
  }

  @AfterEach
  void stop() {
    control.close();
    lifecycle.close();
  }

  private int run(String... args) {
    out.getBuffer().setLength(0);
    err.getBuffer().setLength(0);
    CommandLine cli = new CommandLine(new ModelsCommand());
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    String[] all = new String[args.length + 1];
    all[0] = "--control=127.0.0.1:" + control.port();
    System.arraycopy(args, 0, all, 1, args.length);
    return cli.execute(all);
  }

  @Test
  void listUploadTrafficUnloadLoadWatch() throws Exception {
    assertThat(run("list")).isZero();
    assertThat(out.toString()).contains("MODEL").containsPattern("simple\\s+1\\s+READY");

    Path gen = work.resolve("gen");
    ExampleModels.writeSimple(gen);
    assertThat(run("upload", "simple", gen.resolve("simple/1").toString(), "--version", "2")).isZero();
    assertThat(out.toString()).contains("uploaded simple version 2: 1 file(s)");

    assertThat(run("load", "simple", "--all")).isZero();
    assertThat(manager.readyVersions("simple")).containsExactly(1L, 2L);

    assertThat(run("traffic", "simple", "1=90", "2=10", "--label", "canary=2")).isZero();
    assertThat(out.toString()).contains("weight=90").contains("weight=10 labels=canary");
    assertThat(manager.traffic("simple").weights()).containsEntry(1L, 90).containsEntry(2L, 10);

    assertThat(run("watch", "simple", "--count", "1")).isZero();
    assertThat(out.toString()).startsWith("#1 ").contains("READY");

    assertThat(run("unload", "simple")).isZero();
    assertThat(manager.isLoaded("simple")).isFalse();

    assertThat(run("load", "nope")).isEqualTo(1);
    assertThat(err.toString()).startsWith("error: NOT_FOUND: ");

    assertThat(run("load", "simple", "--version", "1")).isZero();
    assertThat(manager.readyVersions("simple")).containsExactly(1L);
    assertThat(OnnxTestSupport.inferSimpleAndCheck(manager, "simple")).isEqualTo(1L);
  }
}
