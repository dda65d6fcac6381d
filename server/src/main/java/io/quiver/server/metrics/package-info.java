/** Prometheus metrics of the data plane and the models: recording on the request path, export on the metrics port. */
package io.quiver.server.metrics;
