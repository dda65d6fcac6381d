package io.quiver.client;

import com.google.protobuf.ByteString;
import io.grpc.ClientCall;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.WatchModelsRequest;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.stream.Stream;

/**
 * The client of Quiver's control plane ({@code quiver.control.v1.ModelControl}, port 8003 by default):
 * list, load, unload, upload a version directory, split traffic, watch. {@code quiver models} is built on
 * it. Thread-safe; the same builder settings as {@link QuiverClient} (TLS, mTLS, API key...). Every
 * failure is a {@link QuiverException}.
 */
public final class ModelControlClient implements AutoCloseable {
  /** Default deadline: loads warm models up and uploads move files, so it is long. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofMinutes(10);
  /** Bytes per upload chunk message. */
  public static final int UPLOAD_CHUNK_BYTES = 1 << 20;

  private final ClientBuilder.Connection connection;
  private final ManagedChannel channel;

  private ModelControlClient(ClientBuilder.Connection connection) {
    this.connection = connection;
    this.channel = connection.channel();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builds a {@link ModelControlClient}; see {@link ClientBuilder} for every setting. */
  public static final class Builder extends ClientBuilder<Builder> {
    Builder() {
      super(DEFAULT_DEADLINE);
    }

    public ModelControlClient build() {
      return new ModelControlClient(connect());
    }
  }

  /** Every model the server knows, with its versions, states, weights and labels. */
  public List<ModelStatus> listModels() {
    return listModels("");
  }

  /** One model's status (a list of one), or every model for "". */
  public List<ModelStatus> listModels(String model) {
    return unary(ModelControlGrpc.getListModelsMethod(), ListModelsRequest.newBuilder().setName(model).build())
        .getModelsList();
  }

  /** Loads a model per its config's version policy; waits until loaded and warmed up. */
  public ModelStatus load(String model) {
    return load(LoadModelRequest.newBuilder().setName(model).build());
  }

  /** Loads exactly these versions (others are drained and unloaded). */
  public ModelStatus loadVersions(String model, long... versions) {
    LoadModelRequest.Builder request = LoadModelRequest.newBuilder().setName(model);
    for (long v : versions) {
      request.addVersions(v);
    }
    return load(request.build());
  }

  /** Loads the {@code n} highest versions. */
  public ModelStatus loadLatest(String model, int n) {
    return load(LoadModelRequest.newBuilder().setName(model).setLatest(n).build());
  }

  /** Loads every version present. */
  public ModelStatus loadAll(String model) {
    return load(LoadModelRequest.newBuilder().setName(model).setAll(true).build());
  }

  /** Any LoadModel request. */
  public ModelStatus load(LoadModelRequest request) {
    return loadModel(request).getModel();
  }

  /** Any LoadModel request; the whole answer, with what the load did to each version ({@code changes}). */
  public io.quiver.proto.control.v1.LoadModelResponse loadModel(LoadModelRequest request) {
    return unary(ModelControlGrpc.getLoadModelMethod(), request);
  }

  /** Drains and unloads every version of a model. */
  public void unload(String model) {
    unary(ModelControlGrpc.getUnloadModelMethod(), UnloadModelRequest.newBuilder().setName(model).build());
  }

  /**
   * Splits version-less traffic by weight and names versions by label; empty maps clear the split.
   *
   * @param weights version → weight
   * @param labels label (e.g. {@code canary}) → version
   */
  public ModelStatus setTraffic(String model, Map<Long, Integer> weights, Map<String, Long> labels) {
    SetTrafficRequest.Builder request = SetTrafficRequest.newBuilder().setName(model).putAllLabels(labels);
    weights.forEach((version, weight) -> request.addWeights(TrafficWeight.newBuilder().setVersion(version).setWeight(weight)));
    return unary(ModelControlGrpc.getSetTrafficMethod(), request.build()).getModel();
  }

  /** What to upload besides the files. */
  public record UploadOptions(Long version, String configPbtxt, boolean load) {
    /** The next version number, no config, not loaded. */
    public static UploadOptions defaults() {
      return new UploadOptions(null, null, false);
    }

    public UploadOptions withVersion(long v) {
      return new UploadOptions(v, configPbtxt, load);
    }

    public UploadOptions withConfig(String pbtxt) {
      return new UploadOptions(version, pbtxt, load);
    }

    public UploadOptions withLoad(boolean l) {
      return new UploadOptions(version, configPbtxt, l);
    }
  }

  /**
   * Uploads the regular files under {@code dir} (relative paths kept, '/'-separated, in sorted order) as a
   * new version of {@code model}, in chunks of {@value #UPLOAD_CHUNK_BYTES} bytes with each file's
   * SHA-256 on its last chunk. Respects flow control: a chunk is sent only when the transport is ready,
   * so memory stays at about one chunk however large the files are. Blocks until the server answers.
   *
   * @throws UncheckedIOException when a local file cannot be read (the call is cancelled)
   */
  public UploadModelResponse upload(String model, Path dir, UploadOptions options) {
    UploadHeader.Builder header = UploadHeader.newBuilder().setName(model).setLoad(options.load());
    if (options.version() != null) {
      header.setVersion(options.version());
    }
    if (options.configPbtxt() != null) {
      header.setConfigPbtxt(options.configPbtxt());
    }
    List<Path> files;
    try (Stream<Path> walk = Files.walk(dir)) {
      files = walk.filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
    }
    ClientCall<UploadModelRequest, UploadModelResponse> call =
        channel.newCall(ModelControlGrpc.getUploadModelMethod(), connection.options(null));
    FlowControlledCall<UploadModelRequest, UploadModelResponse> upload = new FlowControlledCall<>(call);
    try {
      upload.send(UploadModelRequest.newBuilder().setHeader(header).build());
      byte[] buffer = new byte[UPLOAD_CHUNK_BYTES];
      for (Path file : files) {
        String relative = dir.relativize(file).toString().replace('\\', '/');
        MessageDigest sha = sha256();
        try (InputStream in = Files.newInputStream(file)) {
          int n = in.readNBytes(buffer, 0, buffer.length);
          while (true) {
            sha.update(buffer, 0, n);
            // The chunk's bytes are copied here (the buffer is reused for the next read).
            FileChunk.Builder chunk = FileChunk.newBuilder().setPath(relative).setData(ByteString.copyFrom(buffer, 0, n));
            int next = n < buffer.length ? 0 : in.readNBytes(buffer, 0, buffer.length);
            if (next <= 0) {
              chunk.setSha256(HexFormat.of().formatHex(sha.digest()));
            }
            upload.send(UploadModelRequest.newBuilder().setChunk(chunk).build());
            if (next <= 0) {
              break;
            }
            n = next;
          }
        } catch (IOException e) {
          upload.cancel("could not read " + file, e);
          throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
      }
      return upload.finish();
    } catch (InterruptedException e) {
      upload.cancel("interrupted", e);
      Thread.currentThread().interrupt();
      throw QuiverException.of(Status.Code.CANCELLED, "interrupted while uploading");
    }
  }

  /**
   * Watches model state changes: first the current state of every model (or of {@code model}), then one
   * event per change, until closed. {@link ModelWatch#next()} blocks; events are read one at a time, so a
   * slow reader holds back the server rather than filling memory. Uses the client's default deadline only
   * when {@code deadline} is given (a watch is usually open-ended).
   *
   * @param deadline how long the watch may last, {@link Duration#ZERO} for no limit
   */
  public ModelWatch watch(String model, Duration deadline) {
    Context.CancellableContext context = Context.current().withCancellation();
    Context previous = context.attach();
    try {
      Iterator<ModelEvent> events = ClientCalls.blockingServerStreamingCall(channel, ModelControlGrpc.getWatchModelsMethod(),
          deadline.isZero() ? connection.callOptions() : connection.options(deadline),
          WatchModelsRequest.newBuilder().setName(model == null ? "" : model).build());
      return new ModelWatch(context, events);
    } finally {
      context.detach(previous);
    }
  }

  /** A running watch: a blocking iterator of events; {@link #close()} cancels it. Not thread-safe. */
  public static final class ModelWatch implements Iterator<ModelEvent>, AutoCloseable {
    private final Context.CancellableContext context;
    private final Iterator<ModelEvent> events;

    ModelWatch(Context.CancellableContext context, Iterator<ModelEvent> events) {
      this.context = context;
      this.events = events;
    }

    /** Waits for the next event; false when the watch ended normally. */
    @Override
    public boolean hasNext() {
      try {
        return events.hasNext();
      } catch (StatusRuntimeException e) {
        throw QuiverException.from(e);
      }
    }

    @Override
    public ModelEvent next() {
      if (!hasNext()) {
        throw new NoSuchElementException("the watch has ended");
      }
      try {
        return events.next();
      } catch (StatusRuntimeException e) {
        throw QuiverException.from(e);
      }
    }

    @Override
    public void close() {
      context.cancel(null);
    }
  }

  private <Q, R> R unary(MethodDescriptor<Q, R> method, Q request) {
    try {
      return ClientCalls.blockingUnaryCall(channel, method, connection.options(null), request);
    } catch (StatusRuntimeException e) {
      throw QuiverException.from(e);
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  /** Shuts the channel down unless it was given to the builder. Idempotent. */
  @Override
  public void close() {
    connection.close();
  }
}
