package io.quiver.bench.echo;

import io.grpc.stub.StreamObserver;
import io.quiver.proto.inference.GRPCInferenceServiceGrpc;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelMetadataRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelReadyResponse;
import io.quiver.proto.inference.ModelStreamInferResponse;
import io.quiver.proto.inference.ServerLiveRequest;
import io.quiver.proto.inference.ServerLiveResponse;
import io.quiver.proto.inference.ServerReadyRequest;
import io.quiver.proto.inference.ServerReadyResponse;

/**
 * The KServe v2 service reduced to a copy: ModelInfer answers each input as an output of the same
 * datatype and shape, carrying the very same bytes ({@code raw_input_contents} becomes
 * {@code raw_output_contents}; the ByteString is shared, as Quiver shares its output buffers), with
 * the name's "INPUT" prefix turned into "OUTPUT" (INPUT0 → OUTPUT0, as the identity models do).
 * ModelMetadata describes one model of any name with one input, so {@code quiver perf} can drive it
 * unchanged. No validation, no queue, no model: what is left is gRPC, protobuf and Netty.
 *
 * <p>Runs on the event loop (the server uses a direct executor) and never blocks. Stateless and
 * thread-safe. RPCs not listed here answer UNIMPLEMENTED (perf then skips ModelStatistics).
 */
public final class EchoService extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
  private final ModelMetadataResponse.TensorMetadata input;

  /**
   * @param input the input the metadata advertises, e.g. INPUT0 FP32 [-1, 16]
   */
  public EchoService(ModelMetadataResponse.TensorMetadata input) {
    this.input = input;
  }

  @Override
  public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> out) {
    out.onNext(ServerLiveResponse.newBuilder().setLive(true).build());
    out.onCompleted();
  }

  @Override
  public void serverReady(ServerReadyRequest request, StreamObserver<ServerReadyResponse> out) {
    out.onNext(ServerReadyResponse.newBuilder().setReady(true).build());
    out.onCompleted();
  }

  @Override
  public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> out) {
    out.onNext(ModelReadyResponse.newBuilder().setReady(true).build());
    out.onCompleted();
  }

  @Override
  public void modelMetadata(ModelMetadataRequest request, StreamObserver<ModelMetadataResponse> out) {
    out.onNext(metadata(request.getName()));
    out.onCompleted();
  }

  /** What the echo says about a model of any name: version 1, one input and its mirrored output. */
  ModelMetadataResponse metadata(String model) {
    return ModelMetadataResponse.newBuilder()
        .setName(model)
        .addVersions("1")
        .setPlatform("echo")
        .addInputs(input)
        .addOutputs(input.toBuilder().setName(outputName(input.getName())))
        .build();
  }

  @Override
  public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> out) {
    out.onNext(echo(request));
    out.onCompleted();
  }

  @Override
  public StreamObserver<ModelInferRequest> modelStreamInfer(StreamObserver<ModelStreamInferResponse> out) {
    // gRPC calls these one at a time for a stream, so writing to `out` from them needs no lock.
    return new StreamObserver<>() {
      @Override
      public void onNext(ModelInferRequest request) {
        out.onNext(ModelStreamInferResponse.newBuilder().setInferResponse(echo(request)).build());
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        out.onCompleted();
      }
    };
  }

  /** The echo response: outputs mirror inputs, bytes shared with the request. Allocates the response only. */
  static ModelInferResponse echo(ModelInferRequest request) {
    ModelInferResponse.Builder response = ModelInferResponse.newBuilder()
        .setModelName(request.getModelName())
        .setModelVersion(request.getModelVersion().isEmpty() ? "1" : request.getModelVersion())
        .setId(request.getId());
    for (int i = 0; i < request.getInputsCount(); i++) {
      ModelInferRequest.InferInputTensor in = request.getInputs(i);
      response.addOutputsBuilder()
          .setName(outputName(in.getName()))
          .setDatatype(in.getDatatype())
          .addAllShape(in.getShapeList());
      if (i < request.getRawInputContentsCount()) {
        response.addRawOutputContents(request.getRawInputContents(i));
      }
    }
    return response.build();
  }

  static String outputName(String inputName) {
    return inputName.startsWith("INPUT") ? "OUTPUT" + inputName.substring("INPUT".length()) : inputName;
  }
}
