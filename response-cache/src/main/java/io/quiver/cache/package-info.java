/**
 * Triton's response cache: the answers of models that enable {@code response_cache}, kept in-process
 * (Caffeine, bounded in bytes) or shared by every replica through Redis (Lettuce), keyed by a SHA-256
 * of the model version and the request; a hit is answered without the batcher.
 */
package io.quiver.cache;
