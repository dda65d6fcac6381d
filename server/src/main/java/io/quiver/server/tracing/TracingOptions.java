package io.quiver.server.tracing;

/**
 * Where request spans go, as data (the command line fills it in).
 *
 * @param exporter {@link Exporter#NONE} (the default: no OpenTelemetry SDK object is created and the
 *     request path pays one null check), {@link Exporter#LOGGING} (one log line per span, for
 *     development) or {@link Exporter#OTLP} (OTLP over HTTP/protobuf to a collector)
 * @param endpoint the OTLP traces endpoint, e.g. {@code http://localhost:4318/v1/traces}; null =
 *     the exporter's default (that URL)
 * @param serviceName the {@code service.name} resource attribute of every span
 */
public record TracingOptions(Exporter exporter, String endpoint, String serviceName) {
  /** The OTLP/HTTP exporter's default endpoint (a collector on this host). */
  public static final String DEFAULT_OTLP_ENDPOINT = "http://localhost:4318/v1/traces";
  public static final String DEFAULT_SERVICE_NAME = "quiver";

  public enum Exporter { NONE, LOGGING, OTLP }

  public TracingOptions {
    if (exporter == null) {
      throw new IllegalArgumentException("tracing exporter must be one of none, logging, otlp; was null");
    }
    serviceName = serviceName == null || serviceName.isEmpty() ? DEFAULT_SERVICE_NAME : serviceName;
  }

  public static TracingOptions off() {
    return new TracingOptions(Exporter.NONE, null, null);
  }

  public boolean enabled() {
    return exporter != Exporter.NONE;
  }
}
