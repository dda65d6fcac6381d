package io.quiver.k8s;

import io.quiver.server.Main;
import io.quiver.server.ServerOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A container's server command line, parsed by the server's own picocli command ({@link Main#serveOptions}),
 * and the same command line made fit to run inside a test: every port that is on becomes 0 (a free
 * one; tests never take fixed ports), the bind address loopback, the repository and the cache temporary
 * directories. Nothing else changes, so what runs is what the manifest says.
 */
final class ServerArgs {
  private static final Pattern PORT = Pattern.compile("--(grpc|http|metrics|control)-port=(-?\\d+)");
  private static final Pattern REPOSITORY = Pattern.compile("--(model-repository|model-store)=.*");

  private ServerArgs() {}

  /** What the manifest's args mean to the server; fails like the server would, naming the flag. */
  static ServerOptions parse(List<String> args) {
    return Main.serveOptions(args.toArray(String[]::new));
  }

  /**
   * The args with free ports, loopback, {@code repository} and {@code cacheDir}; an S3 repository URL
   * is kept (the caller supplies {@code --s3-endpoint} through {@code extra}).
   */
  static List<String> forTest(List<String> args, Path repository, Path cacheDir, String... extra) {
    List<String> out = new ArrayList<>();
    java.util.Set<String> ports = new java.util.HashSet<>();
    for (String arg : args) {
      Matcher port = PORT.matcher(arg);
      if (port.matches()) {
        ports.add(port.group(1));
        out.add(Integer.parseInt(port.group(2)) < 0 ? arg : "--" + port.group(1) + "-port=0");
      } else if (REPOSITORY.matcher(arg).matches() && repository != null) {
        out.add("--model-repository=" + repository);
      } else if (arg.startsWith("--model-cache-dir=")) {
        out.add("--model-cache-dir=" + cacheDir);
      } else if (arg.startsWith("--host=")) {
        out.add("--host=127.0.0.1");
      } else {
        out.add(arg);
      }
    }
    for (String port : List.of("grpc", "http", "metrics", "control")) {
      if (!ports.contains(port)) {
        out.add("--" + port + "-port=0"); // the defaults (8000-8003) are fixed ports
      }
    }
    if (args.stream().noneMatch(a -> a.startsWith("--host="))) {
      out.add("--host=127.0.0.1");
    }
    out.addAll(List.of(extra));
    return out;
  }

  /** Every flag is written --flag=value (or is a bare switch), so that {@link #forTest} can rewrite it. */
  static void requireEqualsForm(List<String> args, String where) {
    for (int i = 1; i < args.size(); i++) {
      String arg = args.get(i);
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException(where + ": '" + arg + "' is not a --flag=value argument; write flags"
            + " as --flag=value in manifests");
      }
    }
  }
}
