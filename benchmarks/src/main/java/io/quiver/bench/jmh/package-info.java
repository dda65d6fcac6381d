/**
 * JMH micro-benchmarks of Quiver's per-request paths (decode and validate, batch through the
 * DynamicBatcher, response encode); run with {@code -prof gc} for bytes per operation.
 */
package io.quiver.bench.jmh;
