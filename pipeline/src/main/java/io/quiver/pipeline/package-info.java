/**
 * What stands between the data plane and a model's batcher: ensembles (Triton's model DAGs, each step
 * run through its own model's scheduler) and the per-model admission limit.
 */
package io.quiver.pipeline;
