/**
 * What every {@link io.quiver.core.spi.ModelRuntime} implementation shares, runtime-neutral: Triton-style config
 * completion, typed reads of config {@code parameters}, and the checks a runner makes on one batch's inputs.
 */
package io.quiver.core.runtime;
