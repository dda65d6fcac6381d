package io.quiver.bench.tools;

import io.quiver.examples.ExampleModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Writes the model repositories the side-by-side benchmarks serve, with the example generator's
 * code (nothing downloaded): {@code DIR/batching/} holds identity_fp32, mlp_784 and cnn_small as
 * generated (dynamic batching on), {@code DIR/no-batching/} holds mlp_784 with the same
 * max_batch_size (so [1,784] requests stay valid) and no {@code dynamic_batching} block: Quiver then
 * runs every request as its own batch, through the same queue.
 */
public final class BenchModels {
  private static final Pattern DYNAMIC_BATCHING = Pattern.compile("dynamic_batching\\s*\\{[^}]*\\}\\s*");

  private BenchModels() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: BenchModels DIR");
      System.exit(64);
    }
    Path dir = Path.of(args[0]);
    Path batching = dir.resolve("batching");
    ExampleModels.writeIdentityFp32(batching);
    ExampleModels.writeBenchmarkModels(batching);
    Path noBatching = dir.resolve("no-batching");
    Path mlp = ExampleModels.writeMlp784(noBatching);
    Path config = mlp.resolve(ExampleModels.CONFIG_FILE);
    Files.writeString(config, withoutDynamicBatching(Files.readString(config)));
    System.out.println("wrote " + batching + " (identity_fp32, mlp_784, cnn_small) and " + noBatching + " (mlp_784, no dynamic batching)");
  }

  /** The config text with its dynamic_batching block removed. */
  static String withoutDynamicBatching(String config) {
    return DYNAMIC_BATCHING.matcher(config).replaceAll("");
  }
}
