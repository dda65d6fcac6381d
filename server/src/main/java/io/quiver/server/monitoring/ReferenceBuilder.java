package io.quiver.server.monitoring;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferCallback;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.RequestValidator;
import io.quiver.core.Tensor;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.proto.monitoring.v1.ReferenceProfile;
import io.quiver.server.http.RestInferRequests;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Builds a reference profile from reference requests: JSON Lines, one REST v2 inference request per
 * line (the REST data plane's JSON, {@code data} arrays, no binary section). Each line is decoded and
 * validated as the data plane would; its inputs are summarised, and when outputs are monitored the
 * request runs through the version's scheduler (at most {@value #IN_FLIGHT} at a time) so that the
 * profile holds the model's own outputs on the reference data. These runs count in the version's
 * statistics like any inference. Bounded: {@value #MAX_LINES} lines, {@value #MAX_LINE_BYTES} bytes per
 * line. Blocking; runs on the calling thread (a control handler, or the monitoring I/O thread).
 */
final class ReferenceBuilder {
  static final int MAX_LINES = 100_000;
  static final int MAX_LINE_BYTES = 16 << 20;
  static final int IN_FLIGHT = 8;
  private static final long RUN_TIMEOUT_SECONDS = 60;

  private ReferenceBuilder() {}

  /**
   * @param source what the profile records as its origin ("control-plane", "file:monitoring/ref.jsonl")
   * @throws InferenceException INVALID_ARGUMENT naming the line and the field for a bad request;
   *     UNAVAILABLE when the version cannot run them (unloading, queue full for long)
   */
  static Reference build(VersionMonitor monitor, ModelSignature signature, InferenceScheduler scheduler,
      InputStream jsonl, String source) {
    List<TensorLayout> layouts = monitor.layouts();
    TensorSummary[] summaries = new TensorSummary[layouts.size()];
    for (int i = 0; i < summaries.length; i++) {
      summaries[i] = new TensorSummary(layouts.get(i));
    }
    boolean outputs = layouts.stream().anyMatch(TensorLayout::output);
    int[] allOutputs = new int[signature.outputs().size()];
    for (int i = 0; i < allOutputs.length; i++) {
      allOutputs[i] = i;
    }
    long rows = 0;
    int lineNumber = 0;
    ArrayDeque<CompletableFuture<Sample>> pending = new ArrayDeque<>();
    try {
      byte[] line;
      while ((line = readLine(jsonl, lineNumber + 1)) != null) {
        lineNumber++;
        if (isBlank(line)) {
          continue;
        }
        if (lineNumber > MAX_LINES) {
          throw InferenceException.invalidArgument("reference requests: more than %d lines", MAX_LINES);
        }
        Tensor[] inputs = new Tensor[signature.inputs().size()];
        int batch;
        try {
          List<Tensor> decoded = RestInferRequests.inputs(line, 0, line.length);
          batch = RequestValidator.validateInputs(monitor.model, signature, decoded, inputs);
        } catch (InferenceException e) {
          throw InferenceException.invalidArgument("reference requests, line %d: %s", lineNumber, e.getMessage());
        }
        Sample in = sampleOf(false, layouts, inputs, batch);
        add(summaries, layouts, in);
        rows += batch;
        if (outputs) {
          pending.add(run(monitor, scheduler, inputs, allOutputs, batch, layouts, lineNumber));
          if (pending.size() >= IN_FLIGHT) {
            add(summaries, layouts, await(pending.poll(), monitor));
          }
        }
      }
      while (!pending.isEmpty()) {
        add(summaries, layouts, await(pending.poll(), monitor));
      }
    } catch (IOException e) {
      throw InferenceException.invalidArgument("reference requests unreadable: %s", e.getMessage());
    }
    if (rows == 0) {
      throw InferenceException.invalidArgument("reference requests: no request found (JSON Lines, one REST v2 inference"
          + " request per line)");
    }
    ReferenceProfile profile = VersionMonitor.profile(summaries, rows, source, monitor.model, monitor.version);
    return Reference.of(profile, profile.toByteArray(), layouts, monitor.config.psiBins());
  }

  private static Sample sampleOf(boolean output, List<TensorLayout> layouts, Tensor[] bySignature, int rows) {
    int n = (int) layouts.stream().filter(l -> l.output() == output).count();
    Tensor[] tensors = new Tensor[n];
    int[] sizes = new int[n];
    int total = 0;
    for (TensorLayout l : layouts) {
      if (l.output() == output && l.signatureIndex() < bySignature.length && bySignature[l.signatureIndex()] != null) {
        tensors[l.position()] = bySignature[l.signatureIndex()];
        sizes[l.position()] = tensors[l.position()].byteSize();
        total += sizes[l.position()];
      }
    }
    return Sample.copy(output, tensors, sizes, total, rows);
  }

  private static void add(TensorSummary[] summaries, List<TensorLayout> layouts, Sample sample) {
    for (int i = 0; i < layouts.size(); i++) {
      TensorLayout l = layouts.get(i);
      if (l.output() == sample.output && sample.data[l.position()] != null) {
        summaries[i].add(sample.data[l.position()], sample.elements[l.position()], null);
      }
    }
  }

  /** Submits one reference request; its future holds a copy of the outputs (taken inside the callback). */
  private static CompletableFuture<Sample> run(VersionMonitor monitor, InferenceScheduler scheduler, Tensor[] inputs,
      int[] outputIndices, int batch, List<TensorLayout> layouts, int lineNumber) {
    CompletableFuture<Sample> result = new CompletableFuture<>();
    InferCallback callback = new InferCallback() {
      @Override
      public void onSuccess(InferRequest request, Tensor[] outputs) {
        // outputIndices lists every output in signature order, so outputs[i] is signature output i.
        result.complete(sampleOf(true, layouts, outputs, batch));
      }

      @Override
      public void onFailure(InferRequest request, InferenceException error) {
        result.completeExceptionally(new InferenceException(error.code(),
            "reference requests, line " + lineNumber + ": the model failed: " + error.getMessage()));
      }
    };
    InferRequest request = new InferRequest(monitor.model, monitor.version, "monitoring-reference-" + lineNumber,
        inputs, outputIndices, batch, 0, 0, InferRequest.NO_DEADLINE, callback);
    for (int attempt = 0; ; attempt++) {
      monitor.requireOpen();
      try {
        scheduler.submit(request);
        return result;
      } catch (InferenceException e) {
        boolean full = e.code() == ErrorCode.RESOURCE_EXHAUSTED || e.code() == ErrorCode.UNAVAILABLE;
        if (!full || attempt >= 200) {
          throw e;
        }
        sleep(10); // the live traffic filled the queue: wait for room rather than fail the build
      }
    }
  }

  private static Sample await(CompletableFuture<Sample> future, VersionMonitor monitor) {
    try {
      return future.get(RUN_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof InferenceException ie ? ie
          : InferenceException.internal("reference request failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw InferenceException.unavailable("model '%s' version %d did not answer a reference request within %d s",
          monitor.model, monitor.version, RUN_TIMEOUT_SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw InferenceException.unavailable("interrupted while building the monitoring reference");
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw InferenceException.unavailable("interrupted while building the monitoring reference");
    }
  }

  /** The next line without its end ('\n' or "\r\n"), or null at the end; bounded by MAX_LINE_BYTES. */
  static byte[] readLine(InputStream in, int lineNumber) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b;
    boolean any = false;
    while ((b = in.read()) != -1) {
      any = true;
      if (b == '\n') {
        break;
      }
      if (line.size() >= MAX_LINE_BYTES) {
        throw InferenceException.invalidArgument("reference requests, line %d: longer than %d bytes", lineNumber,
            MAX_LINE_BYTES);
      }
      line.write(b);
    }
    if (!any) {
      return null;
    }
    byte[] bytes = line.toByteArray();
    if (bytes.length > 0 && bytes[bytes.length - 1] == '\r') {
      return java.util.Arrays.copyOf(bytes, bytes.length - 1);
    }
    return bytes;
  }

  private static boolean isBlank(byte[] line) {
    for (byte b : line) {
      if (b != ' ' && b != '\t' && b != '\r') {
        return false;
      }
    }
    return true;
  }
}
