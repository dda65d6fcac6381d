/**
 * The Java client's costs: {@link io.quiver.bench.client.ClientCodecBenchmark} (JMH: encode and decode, bytes per
 * operation) and {@link io.quiver.bench.client.ClientOverhead} (client CPU per call against plain generated stubs,
 * interleaved in one run against a server in another process).
 */
package io.quiver.bench.client;
