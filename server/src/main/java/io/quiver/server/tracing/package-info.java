/** Request tracing with OpenTelemetry: W3C trace context in and out, one server span per inference request. */
package io.quiver.server.tracing;
