package io.quiver.server.shm;

import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.runtime.DirectBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The system shared memory regions clients registered (Triton's {@code SystemSharedMemoryRegister}): a
 * region names a POSIX shared memory object ({@code shm_open} key such as {@code /input_simple}, a file
 * under {@code /dev/shm} on Linux), an offset and a size. It is mapped once, at registration
 * ({@link FileChannel#map}); inference reads inputs from it and writes outputs into it in place, through
 * {@link Lease}s that keep the mapping alive while a request uses it. Unregistering (or {@link #close()})
 * removes the region at once and unmaps it when its last lease is released, so a request in flight never
 * touches unmapped memory.
 *
 * <p>Checks: the key is a single path segment under the root (no '/', '.', '..', NUL), the object is a
 * regular file reached without following links, offset and size lie inside it, a region is at most
 * {@link #MAX_REGION_BYTES} and there are at most {@link #MAX_REGIONS}; a request's offset and byte size
 * must lie inside the region. With security on, a region belongs to the principal that registered it:
 * other principals neither see nor use it.
 *
 * <p>Thread-safe: registration, status and unregistration from any thread (they open, map and unmap a
 * tmpfs file: no disk I/O); {@link #lease} is lock-free (a reference count) and allocates the lease.
 */
public final class SharedMemoryRegistry implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(SharedMemoryRegistry.class);
  /** Where POSIX shared memory objects live on Linux. */
  public static final Path DEFAULT_ROOT = Path.of("/dev/shm");
  /** Most regions registered at once. */
  public static final int MAX_REGIONS = 1024;
  /** Largest region: one mapping of a Java buffer. */
  public static final long MAX_REGION_BYTES = Integer.MAX_VALUE - 8;
  /** Longest region name. */
  public static final int MAX_NAME_LENGTH = 256;

  private final Path root;
  private final Map<String, Region> regions = new ConcurrentHashMap<>();
  private final AtomicBoolean closed = new AtomicBoolean();

  public SharedMemoryRegistry(Path root) {
    this.root = Objects.requireNonNull(root);
  }

  /** Whether system shared memory works here: the root is a directory this process can read and write. */
  public static boolean supported(Path root) {
    return Files.isDirectory(root) && Files.isReadable(root) && Files.isWritable(root);
  }

  public Path root() {
    return root;
  }

  /** What status reports for one region. */
  public record RegionStatus(String name, String key, long offset, long byteSize) {}

  /**
   * Maps {@code byteSize} bytes of the object {@code key} from {@code offset} and registers them as
   * {@code name}.
   *
   * @param owner the registering principal, or null when security is off
   * @throws InferenceException INVALID_ARGUMENT (name, key, offset, size), ALREADY_EXISTS (name taken),
   *     NOT_FOUND (no such object), RESOURCE_EXHAUSTED (too many regions)
   */
  public void register(String name, String key, long offset, long byteSize, String owner) {
    checkName(name);
    Path file = resolve(key);
    if (offset < 0) {
      throw InferenceException.invalidField("offset", "shared memory region '%s': offset must be >= 0; was %d", name, offset);
    }
    if (byteSize <= 0 || byteSize > MAX_REGION_BYTES) {
      throw InferenceException.invalidField("byte_size", "shared memory region '%s': byte_size must be between 1 and %d;"
          + " was %s", name, MAX_REGION_BYTES, Long.toUnsignedString(byteSize));
    }
    if (closed.get()) {
      throw InferenceException.unavailable("the server is shutting down");
    }
    if (regions.size() >= MAX_REGIONS) {
      throw InferenceException.resourceExhausted(0, "at most %d shared memory regions may be registered", MAX_REGIONS);
    }
    if (regions.containsKey(name)) {
      throw new InferenceException(ErrorCode.ALREADY_EXISTS, "shared memory region '" + name + "' already in manager");
    }
    if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      throw InferenceException.notFound("Unable to open shared memory region: '%s' (no shared memory object %s)", key, file);
    }
    MappedByteBuffer buffer;
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE,
        LinkOption.NOFOLLOW_LINKS)) {
      long size = channel.size();
      if (offset > size || byteSize > size - offset) {
        throw InferenceException.invalidField("byte_size", "shared memory region '%s': offset %d + byte_size %d is past"
            + " the end of '%s' (%d bytes)", name, offset, byteSize, key, size);
      }
      // Mapped once; the channel may close, the mapping stays until unmapped below.
      buffer = channel.map(FileChannel.MapMode.READ_WRITE, offset, byteSize);
    } catch (NoSuchFileException e) {
      throw InferenceException.notFound("Unable to open shared memory region: '%s'", key);
    } catch (IOException | UnsupportedOperationException e) {
      throw InferenceException.invalidArgument("Unable to map shared memory region '%s' ('%s'): %s", name, key, e);
    }
    Region region = new Region(name, key, offset, byteSize, owner, buffer);
    if (regions.putIfAbsent(name, region) != null) {
      region.release(); // lost a race with another registration of the same name
      throw new InferenceException(ErrorCode.ALREADY_EXISTS, "shared memory region '" + name + "' already in manager");
    }
    log.info("registered system shared memory region '{}' (key '{}', offset {}, {} bytes{})", name, key, offset, byteSize,
        owner == null ? "" : ", owner " + owner);
  }

  /**
   * The status of one region ({@code name} non-empty) or of every region the caller may see.
   *
   * @throws InferenceException NOT_FOUND for an unknown name (or another principal's region)
   */
  public List<RegionStatus> status(String name, String owner) {
    List<RegionStatus> out = new ArrayList<>();
    if (name != null && !name.isEmpty()) {
      Region region = visible(name, owner);
      out.add(region.status());
      return out;
    }
    Map<String, Region> sorted = new TreeMap<>(regions);
    for (Region region : sorted.values()) {
      if (owner == null || owner.equals(region.owner) || region.owner == null) {
        out.add(region.status());
      }
    }
    return out;
  }

  /**
   * Unregisters one region, or every region the caller may see when {@code name} is empty. The region is
   * unmapped once no request uses it. A name that is not registered (or is another principal's) is not an
   * error, as in Triton: clients unregister unconditionally when they clean up.
   */
  public void unregister(String name, String owner) {
    if (name == null || name.isEmpty()) {
      for (Region region : List.copyOf(regions.values())) {
        if (owner == null || owner.equals(region.owner) || region.owner == null) {
          remove(region);
        }
      }
      return;
    }
    Region region = regions.get(name);
    if (region != null && (owner == null || region.owner == null || owner.equals(region.owner))) {
      remove(region);
    }
  }

  private void remove(Region region) {
    if (regions.remove(region.name, region)) {
      region.release(); // the registration's reference
      log.info("unregistered system shared memory region '{}'", region.name);
    }
  }

  /**
   * A lease on {@code byteSize} bytes at {@code offset} of region {@code name}, for one request.
   *
   * @throws InferenceException NOT_FOUND (unknown region), INVALID_ARGUMENT (outside the region)
   */
  public Lease lease(String name, long offset, long byteSize, String owner, String tensor) {
    Region region = visible(name, owner);
    if (offset < 0 || byteSize < 0 || offset > region.byteSize || byteSize > region.byteSize - offset) {
      throw InferenceException.invalidField(tensor + ".parameters", "tensor '%s': shared_memory_offset %d +"
          + " shared_memory_byte_size %d is outside shared memory region '%s' (%d bytes)", tensor, offset, byteSize,
          name, region.byteSize);
    }
    if (!region.retain()) {
      throw InferenceException.notFound("Unable to find shared memory region: '%s'", name);
    }
    return new Lease(region, (int) offset, (int) byteSize);
  }

  private Region visible(String name, String owner) {
    Region region = name == null ? null : regions.get(name);
    if (region == null || (owner != null && region.owner != null && !owner.equals(region.owner))) {
      throw InferenceException.notFound("Unable to find shared memory region: '%s'", name);
    }
    return region;
  }

  /** Registered regions (tests and metrics). */
  public int size() {
    return regions.size();
  }

  /** Unregisters every region (each is unmapped when its last request is done). Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      for (Region region : List.copyOf(regions.values())) {
        remove(region);
      }
    }
  }

  private Path resolve(String key) {
    if (key == null || key.length() < 2 || key.charAt(0) != '/' || key.length() > 256) {
      throw InferenceException.invalidField("key", "shared memory key must be a POSIX name: '/' then 1 to 255"
          + " characters; was '%s'", key == null ? "" : printable(key));
    }
    String name = key.substring(1);
    if (name.equals(".") || name.equals("..")) {
      throw InferenceException.invalidField("key", "shared memory key '%s' is not a valid name", printable(key));
    }
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '/' || c == '\\' || c == 0 || Character.isISOControl(c)) {
        throw InferenceException.invalidField("key", "shared memory key '%s' must hold no '/' after the first"
            + " character and no control characters", printable(key));
      }
    }
    return root.resolve(name);
  }

  private static void checkName(String name) {
    if (name == null || name.isEmpty() || name.length() > MAX_NAME_LENGTH) {
      throw InferenceException.invalidField("name", "a shared memory region needs a name of 1 to %d characters",
          MAX_NAME_LENGTH);
    }
    for (int i = 0; i < name.length(); i++) {
      if (Character.isISOControl(name.charAt(i))) {
        throw InferenceException.invalidField("name", "shared memory region name must not hold control characters");
      }
    }
  }

  private static String printable(String s) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < Math.min(s.length(), 80); i++) {
      char c = s.charAt(i);
      b.append(Character.isISOControl(c) ? '?' : c);
    }
    return b.toString();
  }

  /** One registered region: its mapping and a reference count (1 for the registration, 1 per lease). */
  static final class Region {
    final String name;
    final String key;
    final long offset;
    final long byteSize;
    final String owner;
    private final MappedByteBuffer buffer;
    private final AtomicInteger references = new AtomicInteger(1);

    Region(String name, String key, long offset, long byteSize, String owner, MappedByteBuffer buffer) {
      this.name = name;
      this.key = key;
      this.offset = offset;
      this.byteSize = byteSize;
      this.owner = owner;
      this.buffer = buffer;
    }

    RegionStatus status() {
      return new RegionStatus(name, key, offset, byteSize);
    }

    /** A new reference, unless the region is already being freed. */
    boolean retain() {
      int n;
      do {
        n = references.get();
        if (n == 0) {
          return false;
        }
      } while (!references.compareAndSet(n, n + 1));
      return true;
    }

    void release() {
      if (references.decrementAndGet() == 0) {
        DirectBuffers.free(buffer); // unmapped now, not when the buffer is collected
      }
    }

    ByteBuffer view(int from, int length) {
      return buffer.slice(from, length).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  /**
   * One request's use of part of a region: a view of its bytes, valid until {@link #release()} (called
   * once the request is answered; calling it again does nothing). Not thread-safe beyond that handover.
   */
  public static final class Lease {
    private final Region region;
    private final int offset;
    private final int length;
    private final AtomicBoolean released = new AtomicBoolean();

    Lease(Region region, int offset, int length) {
      this.region = region;
      this.offset = offset;
      this.length = length;
    }

    public String regionName() {
      return region.name;
    }

    /** The leased bytes: a little-endian view of the mapping (no copy). */
    public ByteBuffer buffer() {
      return region.view(offset, length);
    }

    public long offset() {
      return offset;
    }

    public int byteSize() {
      return length;
    }

    public void release() {
      if (released.compareAndSet(false, true)) {
        region.release();
      }
    }
  }
}
