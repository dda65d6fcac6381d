/**
 * Benchmarks of the model lifecycle under a memory budget, in-process over the real ONNX Runtime and
 * dynamic batcher: load/evict soak (resident memory and file descriptors), cold-start latency by
 * model size, and a hot set's latency while a cold tail churns ({@code LifecycleBench}).
 */
package io.quiver.bench.lifecycle;
