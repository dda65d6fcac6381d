/**
 * The dynamic batcher: per-model-version bounded lock-free queues and Triton's dynamic_batching rules,
 * with no thread per model: batches are formed by whichever thread has a reason (the transport thread
 * that read the requests, the compute thread that just finished a batch, a timer), run inline when
 * cheap or on the shared {@link io.quiver.batching.ComputePool}, and answered with one task per
 * transport thread per batch.
 */
package io.quiver.batching;
