package io.quiver.server.jobs;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.StreamObserver;
import io.quiver.core.InferenceException;
import io.quiver.proto.jobs.v1.BatchJobsGrpc;
import io.quiver.proto.jobs.v1.CancelJobRequest;
import io.quiver.proto.jobs.v1.GetJobRequest;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.ListJobsRequest;
import io.quiver.proto.jobs.v1.ListJobsResponse;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.transport.GrpcErrors;
import java.net.SocketAddress;
import java.util.EnumSet;
import java.util.Set;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code quiver.jobs.v1.BatchJobs} over a {@link JobManager}, bound on the control-plane port, whose
 * handler pool runs it (the methods block on storage). With security on, the port's interceptor has
 * already required the admin permission. Errors map through {@link GrpcErrors}. Thread-safe.
 */
public final class BatchJobsService extends BatchJobsGrpc.BatchJobsImplBase {
  private static final Logger log = LoggerFactory.getLogger(BatchJobsService.class);
  private static final Context.Key<String> PEER = Context.key("quiver-jobs-peer");

  private final JobManager manager;
  private final Supplier<String> principal;

  /** @param principal the calling principal's name in the current gRPC context ("anonymous" when security is off) */
  public BatchJobsService(JobManager manager, Supplier<String> principal) {
    this.manager = manager;
    this.principal = principal;
  }

  /** The service with the caller's address recorded for the audit log. */
  public ServerServiceDefinition bind() {
    return ServerInterceptors.intercept(this, new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        SocketAddress remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        return Contexts.interceptCall(Context.current().withValue(PEER, remote == null ? "unknown" : remote.toString()),
            call, headers, next);
      }
    });
  }

  private static String peer() {
    String p = PEER.get();
    return p == null ? "in-process" : p;
  }

  @Override
  public void submitJob(SubmitJobRequest request, StreamObserver<Job> out) {
    answer(out, () -> manager.submit(request, principal.get(), peer()));
  }

  @Override
  public void getJob(GetJobRequest request, StreamObserver<Job> out) {
    answer(out, () -> manager.get(request.getId()));
  }

  @Override
  public void listJobs(ListJobsRequest request, StreamObserver<ListJobsResponse> out) {
    answer(out, () -> {
      Set<JobState> states = EnumSet.noneOf(JobState.class);
      for (JobState s : request.getStatesList()) {
        if (s == JobState.UNRECOGNIZED) {
          throw InferenceException.invalidField("states", "states holds an unknown job state");
        }
        states.add(s);
      }
      return ListJobsResponse.newBuilder().addAllJobs(manager.list(states)).build();
    });
  }

  @Override
  public void cancelJob(CancelJobRequest request, StreamObserver<Job> out) {
    answer(out, () -> manager.cancel(request.getId(), principal.get(), peer()));
  }

  private static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
    T result;
    try {
      result = call.get();
    } catch (InferenceException e) {
      out.onError(GrpcErrors.toStatus(e));
      return;
    } catch (RuntimeException e) {
      log.error("batch jobs call failed", e);
      out.onError(GrpcErrors.toStatus(e));
      return;
    }
    out.onNext(result);
    out.onCompleted();
  }
}
