package io.quiver.server.console;

import com.fasterxml.jackson.core.JsonGenerator;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.VersionState;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.server.metrics.VersionSample;
import java.io.IOException;
import java.util.Map;

/** JSON shapes the console's API shares between its answers. Stateless. */
final class ConsoleJson {
  private ConsoleJson() {}

  /** A control-plane ModelStatus as the CLI shows it: versions with state, reason, weight and labels. */
  static void modelStatus(JsonGenerator gen, ModelStatus model) throws IOException {
    gen.writeStartObject();
    gen.writeStringField("name", model.getName());
    gen.writeStringField("reason", model.getReason());
    gen.writeArrayFieldStart("versions");
    for (VersionStatus v : model.getVersionsList()) {
      gen.writeStartObject();
      versionFields(gen, v);
      gen.writeEndObject();
    }
    gen.writeEndArray();
    gen.writeEndObject();
  }

  static void versionFields(JsonGenerator gen, VersionStatus v) throws IOException {
    gen.writeNumberField("version", v.getVersion());
    gen.writeStringField("state", state(v.getState()));
    gen.writeStringField("reason", v.getReason());
    gen.writeNumberField("weight", v.getWeight());
    gen.writeArrayFieldStart("labels");
    for (String label : v.getLabelsList()) {
      gen.writeString(label);
    }
    gen.writeEndArray();
  }

  static String state(VersionState state) {
    return state == VersionState.UNRECOGNIZED || state == VersionState.VERSION_STATE_UNSPECIFIED ? "UNKNOWN" : state.name();
  }

  /** The cumulative figures of one version (see {@link VersionSample}); the reader diffs consecutive samples. */
  static void sample(JsonGenerator gen, VersionSample s) throws IOException {
    gen.writeNumberField("success", s.success());
    gen.writeNumberField("successNs", s.successNanos());
    gen.writeNumberField("fail", s.fail());
    gen.writeObjectFieldStart("failures");
    for (Map.Entry<String, Long> e : s.failures().entrySet()) {
      gen.writeNumberField(e.getKey(), e.getValue());
    }
    gen.writeEndObject();
    gen.writeNumberField("queueNs", s.queueNanos());
    gen.writeNumberField("computeNs", s.computeNanos());
    gen.writeNumberField("inferenceCount", s.inferenceCount());
    gen.writeNumberField("executionCount", s.executionCount());
    gen.writeObjectFieldStart("batches");
    for (Map.Entry<Integer, Long> e : s.batches().entrySet()) {
      gen.writeNumberField(Integer.toString(e.getKey()), e.getValue());
    }
    gen.writeEndObject();
    gen.writeNumberField("queued", s.queued());
    gen.writeNumberField("inFlight", s.inFlight());
    buckets(gen, "latency", s.latency());
    buckets(gen, "queueWait", s.queueWait());
  }

  /** {"le": finite upper bounds in seconds, "n": per-bucket counts, one more than "le" (the +Inf bucket)}. */
  private static void buckets(JsonGenerator gen, String name, VersionSample.Buckets b) throws IOException {
    gen.writeObjectFieldStart(name);
    gen.writeArrayFieldStart("le");
    for (double bound : b.upperBounds()) {
      if (Double.isFinite(bound)) {
        gen.writeNumber(bound);
      }
    }
    gen.writeEndArray();
    gen.writeArrayFieldStart("n");
    for (long n : b.counts()) {
      gen.writeNumber(n);
    }
    gen.writeEndArray();
    gen.writeEndObject();
  }
}
