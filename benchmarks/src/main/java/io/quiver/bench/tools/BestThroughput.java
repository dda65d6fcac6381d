package io.quiver.bench.tools;

import com.google.protobuf.Value;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/** Prints the best throughput_rps of a {@code quiver perf --json} file (run.sh sizes open-loop rates with it). */
public final class BestThroughput {
  private BestThroughput() {}

  public static void main(String[] args) throws IOException {
    double best = 0;
    for (Value row : Json.list(Json.read(Path.of(args[0])), "results")) {
      best = Math.max(best, Json.number(row, "throughput_rps"));
    }
    System.out.println(String.format(Locale.ROOT, "%.0f", best));
  }
}
