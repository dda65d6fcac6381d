package io.quiver.core.spi;

import io.quiver.core.ModelSignature;
import io.quiver.proto.inference.ModelConfig;

/**
 * A held reference to one loaded model version, as a {@link ModelRouter} hands it out: its signature
 * and scheduler stay usable until {@link #release()}, and an unload of the version waits for every
 * holder to release it. Used by schedulers that call other models (an ensemble's steps).
 *
 * <p>Thread-safe; {@link #release()} must be called exactly once per acquisition, from any thread.
 */
public interface ModelHandle {
  String name();

  long version();

  /** The version as the protocol writes it ("3"). */
  String versionLabel();

  ModelSignature signature();

  /** The version's complete config. */
  ModelConfig config();

  InferenceScheduler scheduler();

  /** Ends this hold; exactly once per acquisition. */
  void release();
}
