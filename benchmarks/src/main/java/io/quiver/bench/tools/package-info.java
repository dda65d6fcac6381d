/** Helpers for benchmarks/run.sh: benchmark model repositories and the results report. */
package io.quiver.bench.tools;
