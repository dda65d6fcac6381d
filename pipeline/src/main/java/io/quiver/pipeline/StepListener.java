package io.quiver.pipeline;

import io.quiver.core.ErrorCode;
import java.util.List;

/**
 * Told how each step of an ensemble went (the server turns this into per-step metrics). Called on
 * the thread that receives the step's answer; implementations must be quick, must not block and
 * should not allocate.
 */
public interface StepListener {
  /** A listener that records nothing. */
  StepListener NONE = new StepListener() {
    @Override
    public void stepSucceeded(int step, long nanos) {}

    @Override
    public void stepFailed(int step, ErrorCode code, long nanos) {}
  };

  /** Step {@code step} (its position in ensemble_scheduling.step) answered after {@code nanos} from its submission. */
  void stepSucceeded(int step, long nanos);

  /** Step {@code step} failed with {@code code} after {@code nanos} (a refusal at submission counts with 0). */
  void stepFailed(int step, ErrorCode code, long nanos);

  /** Makes the listener of one loaded ensemble version. */
  @FunctionalInterface
  interface Factory {
    /** @param stepModels the model of each step, by step */
    StepListener create(String ensemble, long version, List<String> stepModels);
  }
}
