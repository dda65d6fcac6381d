package io.quiver.core.spi;

/**
 * Where one model instance runs: {@code deviceId} is the GPU ordinal for GPU instances and -1 for
 * CPU. {@code index} numbers the instances of a model version from 0.
 */
public record InstanceSpec(String groupName, int index, Kind kind, int deviceId) {
  public enum Kind { CPU, GPU }

  public static InstanceSpec cpu(int index) {
    return new InstanceSpec("cpu", index, Kind.CPU, -1);
  }
}
