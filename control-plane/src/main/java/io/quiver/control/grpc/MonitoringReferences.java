package io.quiver.control.grpc;

import io.quiver.proto.control.v1.SetMonitoringReferenceRequest;
import io.quiver.proto.control.v1.SetMonitoringReferenceResponse;

/**
 * What the control plane asks of the server's model monitoring: replace a monitored version's
 * reference profile (docs/monitoring.md). Implemented by the server, which owns the monitors; a
 * control plane built without one answers SetMonitoringReference with UNIMPLEMENTED. Called on a
 * control handler thread, which may block (building a reference runs the model on the reference
 * requests and writes the repository). Implementations are thread-safe.
 */
public interface MonitoringReferences {
  /**
   * @throws io.quiver.core.InferenceException NOT_FOUND (model or version not loaded),
   *     FAILED_PRECONDITION (the version is not monitored), INVALID_ARGUMENT (a bad reference, naming
   *     the line and field), UNAVAILABLE or INTERNAL (the repository)
   */
  SetMonitoringReferenceResponse setReference(SetMonitoringReferenceRequest request);
}
