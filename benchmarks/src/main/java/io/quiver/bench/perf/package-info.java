/**
 * The KServe v2 load generator behind {@code quiver perf}: closed- and open-loop load, measurement
 * windows, latency histograms (coordinated omission corrected) and CPU accounting.
 */
package io.quiver.bench.perf;
