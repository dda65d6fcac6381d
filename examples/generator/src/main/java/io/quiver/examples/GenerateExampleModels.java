package io.quiver.examples;

import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

/**
 * Command-line entry that writes the example repository (or, with {@code --benchmark}, the benchmark
 * models) into a directory.
 *
 * <pre>
 *   GenerateExampleModels &lt;output-dir&gt; [--benchmark]
 * </pre>
 *
 * <p>A relative output directory is resolved against the system property {@value #ROOT_PROPERTY}
 * when it is set (the generator's pom sets it to the repository root, so the documented Maven
 * command works from any directory), otherwise against the working directory.
 */
public final class GenerateExampleModels {
  /** System property naming the directory that relative output paths are resolved against. */
  public static final String ROOT_PROPERTY = "quiver.root";

  private GenerateExampleModels() {}

  public static void main(String[] args) throws IOException {
    Path output = null;
    boolean benchmark = false;
    for (String arg : args) {
      if (arg.equals("--benchmark")) {
        benchmark = true;
      } else if (arg.startsWith("-")) {
        usage("unknown option: " + arg);
      } else if (output == null) {
        output = Paths.get(arg);
      } else {
        usage("more than one output directory: " + output + ", " + arg);
      }
    }
    if (output == null) {
      usage("missing output directory");
    }
    String root = System.getProperty(ROOT_PROPERTY);
    if (!output.isAbsolute() && root != null && !root.isBlank()) {
      output = Paths.get(root).resolve(output);
    }
    output = output.toAbsolutePath().normalize();
    List<String> written = benchmark
        ? ExampleModels.writeBenchmarkModels(output)
        : ExampleModels.writeExampleRepository(output);
    System.out.println("wrote " + written + " to " + output);
  }

  private static void usage(String problem) {
    System.err.println(problem);
    System.err.println("usage: GenerateExampleModels <output-dir> [--benchmark]");
    System.exit(2);
  }
}
