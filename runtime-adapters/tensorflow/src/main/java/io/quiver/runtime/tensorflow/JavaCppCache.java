package io.quiver.runtime.tensorflow;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses where JavaCPP extracts TensorFlow's native libraries (≈650 MB, ≈2.4 s the first time;
 * later starts reuse the files) before any TensorFlow class initializes. In order:
 * <ol>
 *   <li>the system property {@value #PROPERTY} (JavaCPP's own), when set;
 *   <li>the environment variable {@value #ENV} (for containers: point it at a volume);
 *   <li>JavaCPP's default, {@code ~/.javacpp/cache}, when the home directory is writable;
 *   <li>otherwise {@code <java.io.tmpdir>/quiver-javacpp-cache} (read-only or missing home, as in
 *       some containers).
 * </ol>
 * The choice is made once per JVM and written into {@value #PROPERTY}, which JavaCPP reads.
 */
final class JavaCppCache {
  static final String PROPERTY = "org.bytedeco.javacpp.cachedir";
  static final String ENV = "QUIVER_JAVACPP_CACHEDIR";

  private static final Logger LOG = LoggerFactory.getLogger(JavaCppCache.class);
  private static volatile String chosen;

  private JavaCppCache() {}

  /** Sets {@value #PROPERTY} if nobody did; returns the directory JavaCPP will use. Idempotent. */
  static synchronized String configure() {
    if (chosen != null) {
      return chosen;
    }
    String dir = System.getProperty(PROPERTY);
    String source = "-D" + PROPERTY;
    if (dir == null || dir.isBlank()) {
      dir = System.getenv(ENV);
      source = "$" + ENV;
    }
    if (dir == null || dir.isBlank()) {
      dir = defaultDirectory(System.getProperty("user.home"), System.getProperty("java.io.tmpdir"));
      source = "default";
    }
    System.setProperty(PROPERTY, dir);
    LOG.info("TensorFlow native libraries are extracted to {} ({})", dir, source);
    chosen = dir;
    return dir;
  }

  /** {@code <home>/.javacpp/cache} when home exists and is writable, else {@code <tmp>/quiver-javacpp-cache}. */
  static String defaultDirectory(String home, String tmp) {
    if (home != null && !home.isBlank() && !"?".equals(home)) {
      Path homeDir = Paths.get(home);
      Path cache = homeDir.resolve(".javacpp").resolve("cache");
      if (Files.isWritable(cache) || (Files.notExists(cache) && Files.isDirectory(homeDir) && Files.isWritable(homeDir))
          || (Files.notExists(cache) && Files.isWritable(homeDir.resolve(".javacpp")))) {
        return cache.toString();
      }
    }
    return Paths.get(tmp == null ? "/tmp" : tmp, "quiver-javacpp-cache").toString();
  }
}
