package io.quiver.bench.tools;

import io.quiver.examples.ExampleModels;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Writes the model repositories the side-by-side benchmarks serve, with the example generator's
 * code (nothing downloaded):
 *
 * <ul>
 *   <li>{@code DIR/batching/}: identity_fp32, mlp_784 and cnn_small as generated (dynamic batching on);
 *   <li>{@code DIR/no-batching/}: mlp_784 with {@code max_batch_size: 0}, full dims {@code [-1,784]} /
 *       {@code [-1,10]} and no {@code dynamic_batching}. A batching model (max_batch_size &gt; 1) with
 *       no scheduler gets an empty {@code dynamic_batching} from auto-complete (as in Triton), so a
 *       config that merely drops the block still batches; max_batch_size 0 really runs every request
 *       ({@code [1,784]}) as its own batch, through the same queue;
 *   <li>{@code DIR/adaptive/}: two copies of mlp_784 for the latency-target case (e), identical but for
 *       the target: {@code mlp_784_fixed} and {@code mlp_784_target}, both with a throughput-tuned
 *       {@value #RAMP_DELAY_US} µs queue delay, the second with {@code quiver.latency_target_us};
 *   <li>{@code DIR/overload/}: {@code mlp_784_bounded}, mlp_784 with {@code max_queue_size}
 *       {@value #OVERLOAD_QUEUE} for the overload case (f);
 *   <li>{@code DIR/overload-cnn/}: {@code cnn_16px} as generated, the model benchmarks/overload.sh bounds
 *       and overloads (slow per byte sent).
 * </ul>
 */
public final class BenchModels {
  /** Queue delay of both case (e) models, µs: long enough that waiting for a full batch costs latency. */
  static final int RAMP_DELAY_US = 4000;
  /** Latency target of {@code mlp_784_target}, µs. */
  static final int LATENCY_TARGET_US = 5000;
  /** Queue bound of the overload case's model (requests). */
  static final int OVERLOAD_QUEUE = 32;

  private static final Pattern DYNAMIC_BATCHING = Pattern.compile("dynamic_batching\\s*\\{[^}]*\\}\\s*");
  private static final Pattern MAX_BATCH = Pattern.compile("max_batch_size:\\s*\\d+");

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
    rewrite(mlp, BenchModels::withoutBatching);

    Path adaptive = dir.resolve("adaptive");
    String rampBatching = "dynamic_batching {\n  max_queue_delay_microseconds: " + RAMP_DELAY_US + "\n}\n";
    copyAs(ExampleModels.writeMlp784(adaptive), "mlp_784_fixed", c -> withDynamicBatching(c, rampBatching));
    copyAs(ExampleModels.writeMlp784(adaptive), "mlp_784_target", c -> withDynamicBatching(c, rampBatching)
        + "parameters {\n  key: \"quiver.latency_target_us\"\n  value { string_value: \"" + LATENCY_TARGET_US + "\" }\n}\n");

    Path overload = dir.resolve("overload");
    copyAs(ExampleModels.writeMlp784(overload), "mlp_784_bounded", c -> withDynamicBatching(c,
        "dynamic_batching {\n  max_queue_delay_microseconds: 100\n  default_queue_policy { max_queue_size: "
            + OVERLOAD_QUEUE + " }\n}\n"));
    Path overloadCnn = dir.resolve("overload-cnn");
    ExampleModels.writeCnn16px(overloadCnn);
    System.out.println("wrote " + batching + " (identity_fp32, mlp_784, cnn_small), " + noBatching
        + " (mlp_784, max_batch_size 0), " + adaptive + " (mlp_784_fixed, mlp_784_target), " + overload
        + " (mlp_784_bounded) and " + overloadCnn + " (cnn_16px)");
  }

  private interface Edit {
    String apply(String config);
  }

  private static void rewrite(Path model, Edit edit) throws IOException {
    Path config = model.resolve(ExampleModels.CONFIG_FILE);
    Files.writeString(config, edit.apply(Files.readString(config)));
  }

  /** Renames a generated model directory (and the config's name) to {@code name}, then edits its config. */
  private static void copyAs(Path model, String name, Edit edit) throws IOException {
    Path target = model.resolveSibling(name);
    Files.move(model, target);
    String original = model.getFileName().toString();
    rewrite(target, c -> edit.apply(c.replaceFirst("name:\\s*\"" + Pattern.quote(original) + "\"", "name: \"" + name + "\"")));
  }

  /**
   * The config without batching: max_batch_size 0, the batch dimension written into every input's and
   * output's dims as -1, and no dynamic_batching block.
   */
  static String withoutBatching(String config) {
    String out = DYNAMIC_BATCHING.matcher(config).replaceAll("");
    out = MAX_BATCH.matcher(out).replaceFirst("max_batch_size: 0");
    return out.replaceAll("dims:\\s*\\[\\s*", "dims: [ -1, ");
  }

  /** The config with its dynamic_batching block replaced by {@code block}. */
  static String withDynamicBatching(String config, String block) {
    return DYNAMIC_BATCHING.matcher(config).replaceAll("") + block;
  }
}
