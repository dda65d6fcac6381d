package io.quiver.client;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelConfig;
import io.quiver.proto.inference.ModelConfigRequest;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelStatisticsRequest;
import io.quiver.proto.inference.ModelStatisticsResponse;
import io.quiver.proto.inference.RepositoryIndexRequest;
import io.quiver.proto.inference.RepositoryIndexResponse;
import io.quiver.proto.inference.RepositoryModelLoadRequest;
import io.quiver.proto.inference.RepositoryModelUnloadRequest;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerMetadataRequest;
import io.quiver.proto.inference.ServerMetadataResponse;
import io.quiver.proto.inference.ServerReadyRequest;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The data-plane client of Quiver, or of any KServe v2 / Triton gRPC server
 * ({@code inference.GRPCInferenceService}): typed inference (blocking, asynchronous, streaming), health,
 * metadata, config, statistics and the repository.
 *
 * <pre>{@code
 * try (QuiverClient client = QuiverClient.builder().target("localhost:8001").build()) {
 *   InferResult result = client.infer(InferRequest.builder("identity_fp32")
 *       .input("INPUT0", Tensors.fp32(values, 1, 16)).build());
 *   float[] out = result.output("OUTPUT0").toFloatArray();
 * }
 * }</pre>
 *
 * <p>Thread-safe: one client (one channel, its connections multiplexed) serves a whole application;
 * make one and share it. Blocking calls run on the caller's thread; asynchronous results and stream
 * answers complete on the executor given to the builder (gRPC's shared pool by default). Every failure
 * is a {@link QuiverException}. {@link #close()} shuts the channel down (unless it was given with
 * {@link ClientBuilder#channel}).
 */
public final class QuiverClient implements AutoCloseable {
  /** Default deadline of unary calls. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(60);
  /** Default bound on a stream's requests sent and not yet answered. */
  public static final int DEFAULT_STREAM_WINDOW = 64;

  private static final MethodDescriptor<ModelInferRequest, ModelInferResponse> INFER =
      GRPCInferenceServiceGrpc.getModelInferMethod();

  private final ClientBuilder.Connection connection;
  private final ManagedChannel channel;

  private QuiverClient(ClientBuilder.Connection connection) {
    this.connection = connection;
    this.channel = connection.channel();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builds a {@link QuiverClient}; see {@link ClientBuilder} for every setting. */
  public static final class Builder extends ClientBuilder<Builder> {
    Builder() {
      super(DEFAULT_DEADLINE);
    }

    public QuiverClient build() {
      return new QuiverClient(connect());
    }
  }

  /** The channel underneath, for calls this client does not wrap (e.g. generated stubs of other services). */
  public ManagedChannel channel() {
    return channel;
  }

  // ------------------------------------------------------------------------------------------------
  // Inference

  /**
   * Runs one inference and waits for it. Interrupting the waiting thread cancels the call (CANCELLED).
   *
   * @throws QuiverException for any failure, with the server's code, message and details
   */
  public InferResult infer(InferRequest request) {
    try {
      return new InferResult(ClientCalls.blockingUnaryCall(channel, INFER, connection.options(request.deadline()),
          request.toProto()));
    } catch (StatusRuntimeException e) {
      throw QuiverException.from(e);
    }
  }

  /**
   * Starts one inference. The future completes with the result, or exceptionally with a
   * {@link QuiverException}; cancelling this future cancels the call, and the server drops the request if
   * it has not run yet (a future derived from it with {@code thenApply}... does not pass cancellation
   * back: cancel the one returned here). Completes on the client's executor.
   */
  public CompletableFuture<InferResult> inferAsync(InferRequest request) {
    ClientCall<ModelInferRequest, ModelInferResponse> call = channel.newCall(INFER, connection.options(request.deadline()));
    CallFuture future = new CallFuture(call);
    try {
      call.start(future.listener(), new Metadata());
      call.request(2); // two: a second message would break the unary contract and fail the call, as grpc's stubs do
      call.sendMessage(request.toProto());
      call.halfClose();
    } catch (RuntimeException | Error e) {
      call.cancel("the call could not be started", e);
      future.completeExceptionally(QuiverException.from(e));
    }
    return future;
  }

  /** An open ModelStreamInfer stream with {@value #DEFAULT_STREAM_WINDOW} requests in flight at most and no deadline. */
  public InferStream openStream() {
    return openStream(DEFAULT_STREAM_WINDOW, Duration.ZERO);
  }

  /**
   * Opens a ModelStreamInfer stream.
   *
   * @param maxInFlight the most requests sent and not yet answered; {@link InferStream#send} waits beyond it
   * @param deadline the whole stream's deadline, {@link Duration#ZERO} for none
   */
  public InferStream openStream(int maxInFlight, Duration deadline) {
    if (maxInFlight < 1) {
      throw new IllegalArgumentException("maxInFlight must be >= 1; was " + maxInFlight);
    }
    CallOptions options = deadline.isZero() ? connection.callOptions() : connection.options(deadline);
    return new InferStream(channel.newCall(GRPCInferenceServiceGrpc.getModelStreamInferMethod(), options), maxInFlight);
  }

  // ------------------------------------------------------------------------------------------------
  // Health, metadata, config, statistics

  public boolean isServerLive() {
    return unary(GRPCInferenceServiceGrpc.getServerLiveMethod(), ServerLiveRequest.getDefaultInstance()).getLive();
  }

  public boolean isServerReady() {
    return unary(GRPCInferenceServiceGrpc.getServerReadyMethod(), ServerReadyRequest.getDefaultInstance()).getReady();
  }

  /** Whether the model (its routed version) is ready; false for a model the server does not know. */
  public boolean isModelReady(String model) {
    return isModelReady(model, "");
  }

  /** Whether this version (number as text, or "" for the routed one) of the model is ready. */
  public boolean isModelReady(String model, String version) {
    return unary(GRPCInferenceServiceGrpc.getModelReadyMethod(),
        ModelReadyRequest.newBuilder().setName(model).setVersion(version).build()).getReady();
  }

  /** The server's name, version and the protocol extensions it implements. */
  public ServerMetadataResponse serverMetadata() {
    return unary(GRPCInferenceServiceGrpc.getServerMetadataMethod(), ServerMetadataRequest.getDefaultInstance());
  }

  public ModelMetadata modelMetadata(String model) {
    return modelMetadata(model, "");
  }

  public ModelMetadata modelMetadata(String model, String version) {
    return new ModelMetadata(unary(GRPCInferenceServiceGrpc.getModelMetadataMethod(),
        ModelMetadataRequest.newBuilder().setName(model).setVersion(version).build()));
  }

  /** The model's (completed) configuration, Triton's ModelConfig message. */
  public ModelConfig modelConfig(String model) {
    return modelConfig(model, "");
  }

  public ModelConfig modelConfig(String model, String version) {
    return unary(GRPCInferenceServiceGrpc.getModelConfigMethod(),
        ModelConfigRequest.newBuilder().setName(model).setVersion(version).build()).getConfig();
  }

  /** Statistics of one model ("" for every ready model), Triton's message. */
  public ModelStatisticsResponse modelStatistics(String model) {
    return modelStatistics(model, "");
  }

  public ModelStatisticsResponse modelStatistics(String model, String version) {
    return unary(GRPCInferenceServiceGrpc.getModelStatisticsMethod(),
        ModelStatisticsRequest.newBuilder().setName(model).setVersion(version).build());
  }

  // ------------------------------------------------------------------------------------------------
  // Repository (admin)

  /** Every model version the repository holds, with its state ("READY", "UNAVAILABLE"...) and reason. */
  public List<RepositoryIndexResponse.ModelIndex> repositoryIndex(boolean readyOnly) {
    return unary(GRPCInferenceServiceGrpc.getRepositoryIndexMethod(),
        RepositoryIndexRequest.newBuilder().setReady(readyOnly).build()).getModelsList();
  }

  /** Loads (or reloads) a model and waits until it is loaded. */
  public void loadModel(String model) {
    unary(GRPCInferenceServiceGrpc.getRepositoryModelLoadMethod(),
        RepositoryModelLoadRequest.newBuilder().setModelName(model).build());
  }

  /** Unloads a model (its in-flight requests drain first) and waits until it is unloaded. */
  public void unloadModel(String model) {
    unary(GRPCInferenceServiceGrpc.getRepositoryModelUnloadMethod(),
        RepositoryModelUnloadRequest.newBuilder().setModelName(model).build());
  }

  private <Q, R> R unary(MethodDescriptor<Q, R> method, Q request) {
    try {
      return ClientCalls.blockingUnaryCall(channel, method, connection.options(null), request);
    } catch (StatusRuntimeException e) {
      throw QuiverException.from(e);
    }
  }

  /** Shuts the channel down (waiting up to 5 s for calls to finish) unless it was given to the builder. Idempotent. */
  @Override
  public void close() {
    connection.close();
  }

  /** A unary call's future: cancelling it cancels the call. */
  static final class CallFuture extends CompletableFuture<InferResult> {
    private final ClientCall<ModelInferRequest, ModelInferResponse> call;

    CallFuture(ClientCall<ModelInferRequest, ModelInferResponse> call) {
      this.call = call;
    }

    ClientCall.Listener<ModelInferResponse> listener() {
      return new ClientCall.Listener<>() {
        private ModelInferResponse response;

        @Override
        public void onMessage(ModelInferResponse message) {
          response = message;
        }

        @Override
        public void onClose(Status status, Metadata trailers) {
          if (status.isOk() && response != null) {
            complete(new InferResult(response));
          } else if (status.isOk()) {
            completeExceptionally(QuiverException.of(Status.Code.INTERNAL, "the server closed the call without a response"));
          } else {
            completeExceptionally(QuiverException.from(status, trailers, null));
          }
        }
      };
    }

    @Override
    public boolean cancel(boolean mayInterruptIfRunning) {
      boolean cancelled = super.cancel(mayInterruptIfRunning);
      if (cancelled) {
        call.cancel("cancelled by the caller", null); // RST_STREAM: the server drops the request if it has not run
      }
      return cancelled;
    }
  }
}
