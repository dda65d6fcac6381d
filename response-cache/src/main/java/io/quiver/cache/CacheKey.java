package io.quiver.cache;

import java.util.Arrays;

/**
 * The key of one entry of the in-process cache: the request's SHA-256 (see {@link RequestDigest}) and
 * the loaded version it belongs to ({@code owner}, compared by identity), so that a version's entries
 * are found, and dropped, by their owner when it unloads, and two loads of one version number never
 * share entries. Immutable.
 */
final class CacheKey {
  final Object owner;
  final byte[] digest;
  private final int hash;

  CacheKey(Object owner, byte[] digest) {
    this.owner = owner;
    this.digest = digest;
    // The digest is uniformly distributed: its first four bytes are as good a hash as any.
    this.hash = (digest[0] & 0xff) | (digest[1] & 0xff) << 8 | (digest[2] & 0xff) << 16 | digest[3] << 24;
  }

  @Override
  public int hashCode() {
    return hash;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof CacheKey other && other.owner == owner && Arrays.equals(other.digest, digest);
  }
}
