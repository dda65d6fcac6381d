package io.quiver.server;

import io.grpc.stub.StreamObserver;
import io.quiver.core.InferenceException;
import io.quiver.proto.monitoring.v1.GetModelMonitoringRequest;
import io.quiver.proto.monitoring.v1.ModelMonitoringReport;
import io.quiver.proto.monitoring.v1.ModelMonitoringGrpc;
import io.quiver.server.security.Operations;
import io.quiver.transport.GrpcErrors;

/**
 * {@code quiver.monitoring.v1.ModelMonitoring} on the data-plane port: the gRPC twin of REST's
 * {@code GET /v2/models/{m}[/versions/{v}]/monitoring}. Runs on the event loop and does not block there:
 * the report is built on the monitoring thread, which answers the call. Needs the {@code metadata}
 * permission on the model when security is on. Thread-safe, stateless.
 */
final class MonitoringServiceImpl extends ModelMonitoringGrpc.ModelMonitoringImplBase {
  private final DataPlane plane;

  MonitoringServiceImpl(DataPlane plane) {
    this.plane = plane;
  }

  @Override
  public void getModelMonitoring(GetModelMonitoringRequest request, StreamObserver<ModelMonitoringReport> out) {
    try {
      GrpcSecurityInterceptor.check(plane.security(), Operations.MONITORING_REPORT, request.getName());
      DataPlane.checkModelReference(request.getName(), request.getVersion());
      plane.monitoring().report(request.getName(), request.getVersion()).whenComplete((report, failure) -> {
        try {
          if (failure != null) {
            out.onError(GrpcErrors.toStatus(failure));
          } else {
            out.onNext(report);
            out.onCompleted();
          }
        } catch (RuntimeException e) {
          // the call was cancelled meanwhile: nothing to answer
        }
      });
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }
}
