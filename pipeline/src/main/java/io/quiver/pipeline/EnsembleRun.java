package io.quiver.pipeline;

import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.InferenceStats;
import io.quiver.core.RequestValidator;
import io.quiver.core.Tensor;
import io.quiver.core.TensorSpec;
import io.quiver.core.spi.ModelHandle;
import io.quiver.core.spi.TransportExecutor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One ensemble request on its way through the steps: the tensors written so far, how many producers
 * each waiting step still needs, and the step requests in flight. It is the callback of its own step
 * requests and, as a {@link BooleanSupplier}, their cancellation signal: a step still queued is dropped
 * when the ensemble request is cancelled or the run has already failed.
 *
 * <p><b>Tensor hand-off.</b> A step's outputs are valid only during its answer callback (a runner may
 * reuse its output buffers from the second following run on), so what a later step reads, and an
 * ensemble output written by a step that is not the last to finish, is copied once, into a heap
 * array, inside that callback. The last step to finish hands its outputs to the ensemble's answer
 * without a copy: the answer is given inside its callback, on the same thread, while they are valid.
 * Ensemble inputs are handed to the steps as they came (they stay valid for the whole request).
 *
 * <p><b>Threads.</b> Step requests carry the ensemble request's transport, so their answers (and the
 * submission of the steps that they make ready) run on that transport thread; without a transport
 * they run on whichever thread finishes each step, possibly two at once for parallel branches. The
 * run's state is guarded by its monitor; step models are called outside it. A step scheduler may
 * answer inside {@code submit} (a cache hit): the run is reentrant for that.
 */
final class EnsembleRun implements InferCallback, BooleanSupplier {
  private static final Logger log = LoggerFactory.getLogger(EnsembleRun.class);

  private final EnsembleScheduler owner;
  private final EnsemblePlan plan;
  private final InferRequest request;
  private final long mask;
  // Written before the step that reads them is submitted (or under the monitor), read after it.
  private final Tensor[] tensors;
  // Slot s is written before step s is submitted and read by its callback (ordered by the scheduler's hand-off).
  private final InferRequest[] stepRequests;
  private final ModelHandle[] handles;
  private final long[] stepStart;
  // Guarded by this.
  private final int[] pending;
  private int remaining;
  private boolean finished;
  private long queueNanos;
  private long inputNanos;
  private long inferNanos;
  private long outputNanos;
  // Set once the run has failed: step requests still queued read it through getAsBoolean().
  private volatile boolean failed;

  EnsembleRun(EnsembleScheduler owner, InferRequest request) {
    this.owner = owner;
    this.plan = owner.plan();
    this.request = request;
    this.mask = plan.stepsFor(request.outputIndices());
    int steps = plan.steps.length;
    this.tensors = new Tensor[plan.tensorNames.length];
    System.arraycopy(request.inputs(), 0, tensors, 0, plan.inputCount);
    this.stepRequests = new InferRequest[steps];
    this.handles = new ModelHandle[steps];
    this.stepStart = new long[steps];
    this.pending = new int[steps];
    for (int s = 0; s < steps; s++) {
      pending[s] = plan.steps[s].producerCount;
    }
    this.remaining = Long.bitCount(mask);
  }

  /** Cancellation of the step requests: the ensemble request was cancelled, or the run failed. */
  @Override
  public boolean getAsBoolean() {
    return failed || request.isCancelled();
  }

  /** Submits the steps that read only ensemble inputs; throws when the first of them is refused at once. */
  void start() {
    long ready = 0;
    for (int s = 0; s < plan.steps.length; s++) {
      if ((mask & (1L << s)) != 0 && pending[s] == 0) {
        ready |= 1L << s;
      }
    }
    submitSteps(ready, true);
  }

  private void submitSteps(long ready, boolean initial) {
    boolean anySubmitted = false;
    for (long bits = ready; bits != 0; bits &= bits - 1) {
      int s = Long.numberOfTrailingZeros(bits);
      if (failed) {
        return; // the run was answered (a step failed, perhaps inside a submit just above); start nothing more
      }
      InferRequest stepRequest;
      try {
        stepRequest = prepare(s);
      } catch (InferenceException e) {
        owner.listener().stepFailed(s, e.code(), 0);
        if (initial && !anySubmitted) {
          throw stepError(s, e);
        }
        fail(s, e);
        return;
      }
      try {
        handles[s].scheduler().submit(stepRequest);
        anySubmitted = true;
      } catch (RuntimeException e) {
        InferenceException error = e instanceof InferenceException ie ? ie
            : InferenceException.internal(e.getClass().getSimpleName() + ": " + e.getMessage(), e);
        owner.listener().stepFailed(s, error.code(), 0);
        releaseStep(s);
        if (initial && !anySubmitted) {
          throw stepError(s, error);
        }
        fail(s, error);
        return;
      }
    }
  }

  /** Holds step {@code s}'s model, lays its inputs out for it and builds its request. */
  private InferRequest prepare(int s) {
    EnsemblePlan.Step step = plan.steps[s];
    if (request.isCancelled()) {
      throw InferenceException.cancelled("the request was cancelled before %s could start", step.label);
    }
    long deadline = request.deadlineNanos();
    if (deadline != InferRequest.NO_DEADLINE && System.nanoTime() - deadline >= 0) {
      throw InferenceException.deadlineExceeded("the deadline passed before %s could start", step.label);
    }
    ModelHandle handle = owner.router().acquire(step.model, step.version, request.id());
    try {
      EnsemblePlan.Binding binding = plan.binding(step, handle.signature());
      var signature = binding.signature;
      Tensor[] inputs = new Tensor[binding.inputTensorBySlot.length];
      long rows = -1;
      for (int slot = 0; slot < inputs.length; slot++) {
        int t = binding.inputTensorBySlot[slot];
        if (t < 0) {
          continue; // an optional input of the step model that input_map leaves out
        }
        Tensor value = tensors[t];
        String inputName = binding.inputNameBySlot[slot];
        if (value == null) {
          TensorSpec spec = signature.inputs().get(slot);
          if (!spec.optional()) {
            throw InferenceException.invalidField("inputs[" + plan.tensorNames[t] + "]",
                "%s: input '%s' reads the ensemble's optional input '%s', which the request did not give",
                step.label, inputName, plan.tensorNames[t]);
          }
          continue;
        }
        Tensor input = value.name().equals(inputName) ? value : value.withName(inputName);
        RequestValidator.checkInput(handle.name(), signature, slot, input);
        if (rows < 0 && signature.batches()) {
          rows = input.shape()[0];
        }
        inputs[slot] = input;
      }
      InferRequest stepRequest = new InferRequest(handle.name(), handle.version(), request.id(), inputs,
          binding.outputIndices, signature.batches() ? (int) Math.max(1, rows) : 1, request.priority(),
          request.timeoutMicros(), request.deadlineNanos(), this, request.transport())
          .cancelledWith(this);
      handles[s] = handle;
      stepRequests[s] = stepRequest;
      stepStart[s] = System.nanoTime();
      return stepRequest;
    } catch (RuntimeException e) {
      handle.release();
      throw e;
    }
  }

  @Override
  public void onSuccess(InferRequest stepRequest, Tensor[] outputs) {
    int s = stepOf(stepRequest);
    long now = System.nanoTime();
    owner.listener().stepSucceeded(s, now - stepStart[s]);
    EnsemblePlan.Step step = plan.steps[s];
    long ready = 0;
    boolean last = false;
    boolean ended;
    synchronized (this) {
      ended = finished;
      if (!ended) {
        queueNanos += stepRequest.queueNanos();
        inputNanos += stepRequest.computeInputNanos();
        inferNanos += stepRequest.computeInferNanos();
        outputNanos += stepRequest.computeOutputNanos();
        last = --remaining == 0;
        for (int k = 0; k < step.outputTensors.length; k++) {
          int t = step.outputTensors[k];
          if (needed(t)) {
            // Valid during this call only: the last step answers right here, every other one keeps a copy.
            tensors[t] = last ? outputs[k] : copy(outputs[k]);
          }
        }
        if (last) {
          finished = true;
        } else {
          for (int d : step.dependents) {
            if ((mask & (1L << d)) != 0 && --pending[d] == 0) {
              ready |= 1L << d;
            }
          }
        }
      }
    }
    try {
      if (last) {
        answer(now);
      }
    } finally {
      releaseStep(s); // after its outputs were used: the step version may unload once released
    }
    if (!ended && !last && ready != 0) {
      submitSteps(ready, false);
    }
  }

  @Override
  public void onFailure(InferRequest stepRequest, InferenceException error) {
    int s = stepOf(stepRequest);
    owner.listener().stepFailed(s, error.code(), System.nanoTime() - stepStart[s]);
    releaseStep(s);
    fail(s, error);
  }

  /** Whether tensor {@code t} is read by a step this request runs, or is an output it asked for. */
  private boolean needed(int t) {
    if ((plan.consumers[t] & mask) != 0) {
      return true;
    }
    for (int o : request.outputIndices()) {
      if (plan.outputTensor[o] == t) {
        return true;
      }
    }
    return false;
  }

  /** Answers the request with the outputs it asked for; called once, by the last step's callback. */
  private void answer(long now) {
    int[] indices = request.outputIndices();
    Tensor[] outputs = new Tensor[indices.length];
    for (int i = 0; i < indices.length; i++) {
      String name = plan.signature.outputs().get(indices[i]).name();
      Tensor t = tensors[plan.outputTensor[indices[i]]];
      outputs[i] = t.name().equals(name) ? t : t.withName(name);
    }
    long queue;
    long input;
    long infer;
    long output;
    synchronized (this) {
      queue = queueNanos;
      input = inputNanos;
      infer = inferNanos;
      output = outputNanos;
    }
    int rows = request.batchSize();
    InferenceStats stats = owner.stats();
    stats.recordSuccess(now - request.enqueueNanos(), queue, input, infer, output);
    stats.recordExecution(rows, input, infer, output, System.currentTimeMillis());
    request.recordTimings(queue, input, infer, output, rows);
    TransportExecutor transport = request.transport();
    if (transport == null || transport.inTransportThread()) {
      try {
        request.callback().onSuccess(request, outputs);
      } catch (RuntimeException e) {
        log.warn("{}: the answer callback of request '{}' failed", plan.label, request.id(), e);
      } finally {
        owner.answered();
      }
      return;
    }
    // Only when a step model answered off the request's transport thread: the outputs must outlive this call.
    Tensor[] kept = new Tensor[outputs.length];
    for (int i = 0; i < outputs.length; i++) {
      kept[i] = copy(outputs[i]);
    }
    deliver(transport, () -> request.callback().onSuccess(request, kept));
  }

  /** Fails the request once, naming the step; later step answers are dropped. */
  private void fail(int s, InferenceException cause) {
    synchronized (this) {
      if (finished) {
        return;
      }
      finished = true;
    }
    failed = true; // step requests still queued see it through getAsBoolean() and are dropped
    InferenceException error = stepError(s, cause);
    owner.stats().recordFailure(System.nanoTime() - request.enqueueNanos());
    TransportExecutor transport = request.transport();
    if (transport == null || transport.inTransportThread()) {
      try {
        request.callback().onFailure(request, error);
      } catch (RuntimeException e) {
        log.warn("{}: the failure callback of request '{}' failed", plan.label, request.id(), e);
      } finally {
        owner.answered();
      }
      return;
    }
    deliver(transport, () -> request.callback().onFailure(request, error));
  }

  private void deliver(TransportExecutor transport, Runnable callback) {
    try {
      transport.execute(() -> {
        try {
          callback.run();
        } finally {
          owner.answered();
        }
      });
    } catch (RejectedExecutionException e) {
      owner.answered();
      log.debug("{}: request '{}' not answered, its transport has shut down", plan.label, request.id());
    }
  }

  /** The error a step's failure becomes: its code and retry hint, with the ensemble and the step named. */
  private InferenceException stepError(int s, InferenceException cause) {
    return new InferenceException(cause.code(), plan.label + ": " + plan.steps[s].label + " failed: "
        + cause.getMessage(), null, cause.retryAfterNanos(), null);
  }

  private int stepOf(InferRequest stepRequest) {
    for (int s = 0; s < stepRequests.length; s++) {
      if (stepRequests[s] == stepRequest) {
        return s;
      }
    }
    throw new IllegalStateException(plan.label + ": an answer for a request this run did not send: " + stepRequest);
  }

  private void releaseStep(int s) {
    ModelHandle handle = handles[s];
    handles[s] = null;
    if (handle != null) {
      handle.release();
    }
  }

  /** The tensor's bytes in a heap array of their own (one copy), with its name, datatype and shape. */
  static Tensor copy(Tensor t) {
    ByteBuffer source = t.data();
    byte[] bytes = new byte[source.remaining()];
    source.get(bytes);
    return new Tensor(t.name(), t.dataType(), t.shape().clone(), ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
  }
}
