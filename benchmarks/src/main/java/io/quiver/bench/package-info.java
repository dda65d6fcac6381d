/** Quiver's measuring tools: the {@code quiver perf} entry point and the benchmark helpers around it. */
package io.quiver.bench;
