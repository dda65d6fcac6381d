package io.quiver.server;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Triton's trace settings (the {@code TraceSetting} RPC and {@code /v2/trace/setting}), mapped onto
 * Quiver's OpenTelemetry tracing ({@code --tracing}): {@code trace_level} OFF or TIMESTAMPS turns request
 * spans off or on, {@code trace_rate} N traces one request in N, {@code trace_count} stops after that
 * many traces (-1: no limit), and {@code trace_mode} is {@code opentelemetry}. Settings are global, or
 * per model (a model's own value wins; an empty value list clears it back to the global one), as in
 * Triton. {@code trace_file} and {@code log_frequency} belong to Triton's own trace files and cannot be
 * set over the network (Triton refuses {@code trace_file} too). {@code trace_level} TENSORS is refused
 * (UNIMPLEMENTED): Triton records tensor contents only in its own trace files ({@code trace_mode}
 * triton); in {@code opentelemetry} mode, the one Quiver has, Triton records none either and logs an
 * error per tensor activity (its src/tracer.cc), so refusing up front is the clearer answer.
 *
 * <p>Thread-safe: settings are immutable records swapped in a concurrent map; {@link #sample} (every
 * request while tracing is on) reads one and updates two atomics.
 */
public final class TraceSettings {
  public static final String LEVEL = "trace_level";
  public static final String RATE = "trace_rate";
  public static final String COUNT = "trace_count";
  public static final String MODE = "trace_mode";
  public static final String FILE = "trace_file";
  public static final String LOG_FREQUENCY = "log_frequency";

  /** One scope's settings; null fields inherit the global ones. */
  private record Scope(Boolean on, Integer rate, Integer count, AtomicLong seen, AtomicInteger left) {
    static Scope empty() {
      return new Scope(null, null, null, new AtomicLong(), new AtomicInteger(-1));
    }
  }

  private final boolean available;
  private volatile Scope global;
  private final Map<String, Scope> models = new ConcurrentHashMap<>();

  /** @param available whether the server has a span exporter (--tracing logging|otlp) */
  public TraceSettings(boolean available) {
    this.available = available;
    this.global = new Scope(available, 1, -1, new AtomicLong(), new AtomicInteger(-1));
  }

  /** Whether a request to {@code model} is traced (decided per request while tracing is on). */
  public boolean sample(String model) {
    Scope own = model == null ? null : models.get(model);
    Scope g = global;
    Scope counting = own != null && (own.rate != null || own.count != null) ? own : g;
    boolean on = own != null && own.on != null ? own.on : g.on;
    if (!on || !available) {
      return false;
    }
    int rate = own != null && own.rate != null ? own.rate : g.rate;
    if (rate > 1 && Math.floorMod(counting.seen.getAndIncrement(), rate) != 0) {
      return false;
    }
    AtomicInteger left = counting.left;
    for (;;) {
      int n = left.get();
      if (n < 0) {
        return true; // no limit
      }
      if (n == 0) {
        return false;
      }
      if (left.compareAndSet(n, n - 1)) {
        return true;
      }
    }
  }

  /** The settings in force for {@code model} (empty or null: the global ones), in Triton's names and order. */
  public Map<String, List<String>> get(String model) {
    Scope own = model == null || model.isEmpty() ? null : models.get(model);
    Scope g = global;
    boolean on = available && (own != null && own.on != null ? own.on : g.on);
    Scope counting = own != null && (own.rate != null || own.count != null) ? own : g;
    int rate = own != null && own.rate != null ? own.rate : g.rate;
    Map<String, List<String>> out = new LinkedHashMap<>();
    out.put(LEVEL, List.of(on ? "TIMESTAMPS" : "OFF"));
    out.put(RATE, List.of(Integer.toString(rate)));
    out.put(COUNT, List.of(Integer.toString(counting.left.get())));
    out.put(MODE, List.of("opentelemetry"));
    return out;
  }

  /**
   * Applies Triton's update semantics: a setting with one value sets it, with none clears it (a model's
   * back to the global one); settings not named keep their values. Returns the settings now in force.
   *
   * @throws InferenceException INVALID_ARGUMENT for a value Triton would refuse (naming the setting),
   *     UNIMPLEMENTED for trace_file, log_frequency and TENSORS, FAILED_PRECONDITION for turning traces
   *     on in a server without an exporter
   */
  public synchronized Map<String, List<String>> update(String model, Map<String, List<String>> changes) {
    boolean perModel = model != null && !model.isEmpty();
    Scope current = perModel ? models.getOrDefault(model, Scope.empty()) : global;
    Boolean on = current.on;
    Integer rate = current.rate;
    Integer count = current.count;
    boolean countChanged = false;
    for (Map.Entry<String, List<String>> e : changes.entrySet()) {
      String key = e.getKey();
      List<String> values = e.getValue();
      switch (key) {
        case FILE -> throw new InferenceException(ErrorCode.UNIMPLEMENTED,
            "trace file location can not be updated through network protocol");
        case LOG_FREQUENCY -> throw new InferenceException(ErrorCode.UNIMPLEMENTED, "log_frequency belongs to Triton's"
            + " trace files; Quiver exports spans through OpenTelemetry (--tracing logging|otlp)");
        case MODE -> {
          if (!values.isEmpty() && !(values.size() == 1 && values.get(0).equals("opentelemetry"))) {
            throw InferenceException.invalidField(MODE, "trace_mode can only be 'opentelemetry' here; was %s", values);
          }
        }
        case LEVEL -> {
          if (values.isEmpty()) {
            on = perModel ? null : available;
          } else if (values.size() == 1 && values.get(0).equals("OFF")) {
            on = false;
          } else {
            for (String level : values) {
              switch (level) {
                case "TIMESTAMPS" -> on = true;
                case "OFF" -> throw InferenceException.invalidField(LEVEL, "Expect only one trace level 'OFF' is specified");
                case "TENSORS" -> throw new InferenceException(ErrorCode.UNIMPLEMENTED, "trace_level TENSORS (tensor"
                    + " contents in traces) is not supported in trace_mode opentelemetry, as in Triton; TIMESTAMPS"
                    + " gives each request's spans");
                default -> throw InferenceException.invalidField(LEVEL, "trace_level must be OFF, TIMESTAMPS or TENSORS;"
                    + " was '%s'", level);
              }
            }
          }
        }
        case RATE -> rate = values.isEmpty() ? null : number(RATE, values, 1, Integer.MAX_VALUE);
        case COUNT -> {
          count = values.isEmpty() ? null : number(COUNT, values, -1, Integer.MAX_VALUE);
          countChanged = true;
        }
        default -> throw InferenceException.invalidField(key, "unknown trace setting '%s'; the settings are %s", key,
            List.of(LEVEL, RATE, COUNT, MODE));
      }
    }
    if (Boolean.TRUE.equals(on) && !available) {
      throw InferenceException.failedPrecondition("tracing is off in this server: start it with --tracing logging or"
          + " --tracing otlp (and --tracing-endpoint) to record traces");
    }
    if (!perModel) {
      on = on == null ? available : on;
      rate = rate == null ? 1 : rate;
      count = count == null ? -1 : count;
    }
    // A new count starts counting down again; otherwise what is left of the old one carries on.
    AtomicInteger left = countChanged ? new AtomicInteger(count == null ? -1 : count) : current.left;
    Scope next = new Scope(on, rate, count, current.seen, left);
    if (perModel) {
      if (on == null && rate == null && count == null) {
        models.remove(model);
      } else {
        models.put(model, next);
      }
    } else {
      global = next;
    }
    return get(model);
  }

  private static int number(String key, List<String> values, long min, long max) {
    if (values.size() != 1) {
      throw InferenceException.invalidField(key, "expect only 1 value for '%s'", key);
    }
    try {
      long v = Long.parseLong(values.get(0).trim());
      if (v < min || v > max) {
        throw InferenceException.invalidField(key, "Unable to parse '%s', value is out of range [ %d, %d ], got: %s", key,
            min, max, values.get(0));
      }
      return (int) v;
    } catch (NumberFormatException e) {
      throw InferenceException.invalidField(key, "Unable to parse '%s', got: %s", key, values.get(0));
    }
  }
}
