/**
 * The dynamic batcher: per-model-version bounded lock-free queues, one batching agent thread that
 * forms batches under Triton's dynamic_batching policy (plus an optional latency target), and one
 * worker thread per runner instance that gathers, runs and scatters each batch.
 */
package io.quiver.batching;
