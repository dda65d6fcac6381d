/**
 * Model monitoring: per-feature statistics of sampled input and output tensors, summarised off the
 * request path into DataSketches sketches, drift and data-quality scores per window against a
 * reference profile stored beside the version, exposed as JSON (REST, gRPC) and Prometheus gauges
 * (docs/monitoring.md).
 */
package io.quiver.server.monitoring;
