package io.quiver.control.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.quiver.lifecycle.DesiredStateStore;
import io.quiver.lifecycle.LoadResult;
import io.quiver.lifecycle.ModelLifecycle;
import io.quiver.lifecycle.ModelManager;
import io.quiver.lifecycle.TrafficSplit;
import io.quiver.core.InferenceException;
import io.quiver.proto.control.v1.DesiredModel;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ListModelsResponse;
import io.quiver.proto.control.v1.LoadModelRequest;
import io.quiver.proto.control.v1.LoadModelResponse;
import io.quiver.proto.control.v1.ModelControlGrpc;
import io.quiver.proto.control.v1.ModelEvent;
import io.quiver.proto.control.v1.SetMonitoringReferenceRequest;
import io.quiver.proto.control.v1.SetMonitoringReferenceResponse;
import io.quiver.proto.control.v1.SetTrafficRequest;
import io.quiver.proto.control.v1.SetTrafficResponse;
import io.quiver.proto.control.v1.TrafficWeight;
import io.quiver.proto.control.v1.UnloadModelRequest;
import io.quiver.proto.control.v1.UnloadModelResponse;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.proto.control.v1.VersionChange;
import io.quiver.proto.control.v1.WatchModelsRequest;
import io.quiver.proto.inference.ModelVersionPolicy;
import io.quiver.registry.ModelConfigParser;
import io.quiver.registry.ModelNames;
import io.quiver.transport.GrpcErrors;
import io.quiver.registry.WritableModelRepository;
import java.io.IOException;
import java.io.OutputStream;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code quiver.control.v1.ModelControl} service, a client of the {@link ModelLifecycle}: every
 * load, unload, traffic change and upload goes through it, which records the desired state first and
 * then converges. Handlers run on the server's executor (not the event loop): loads and unloads block
 * until done. Each operation writes one audit line (logger {@code io.quiver.control.audit}: who,
 * what, when, result). Thread-safe.
 */
public final class ControlPlaneService extends ModelControlGrpc.ModelControlImplBase {
  private static final Logger log = LoggerFactory.getLogger(ControlPlaneService.class);
  private static final Logger audit = LoggerFactory.getLogger("io.quiver.control.audit");
  static final Context.Key<String> PEER = Context.key("quiver-control-peer");

  private final ModelLifecycle lifecycle;
  private final ModelManager manager;
  private final ControlPlaneOptions options;
  private final MonitoringReferences monitoring; // null: SetMonitoringReference is UNIMPLEMENTED
  // Watch events are sent from one thread, in the order the manager published the changes.
  private final ExecutorService watchSender = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "quiver-control-watch");
    t.setDaemon(true);
    return t;
  });

  public ControlPlaneService(ModelLifecycle lifecycle, ControlPlaneOptions options) {
    this(lifecycle, options, null);
  }

  /** @param monitoring the server's model monitoring, or null when there is none */
  public ControlPlaneService(ModelLifecycle lifecycle, ControlPlaneOptions options, MonitoringReferences monitoring) {
    this.lifecycle = lifecycle;
    this.manager = lifecycle.manager();
    this.options = options;
    this.monitoring = monitoring;
  }

  /** Puts the caller's address into the call's Context for the audit log. */
  public static ServerInterceptor peerInterceptor() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        SocketAddress remote = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        return Contexts.interceptCall(Context.current().withValue(PEER, remote == null ? "unknown" : remote.toString()),
            call, headers, next);
      }
    };
  }

  void shutdown() {
    watchSender.shutdownNow();
  }

  // ---------------------------------------------------------------------------------------------

  @Override
  public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> out) {
    try {
      ListModelsResponse.Builder b = ListModelsResponse.newBuilder();
      if (request.getName().isEmpty()) {
        b.addAllModels(ControlStatuses.all(manager));
      } else {
        b.addModels(ControlStatuses.of(manager, ModelNames.requireValid(request.getName())));
      }
      out.onNext(b.build());
      out.onCompleted();
    } catch (RuntimeException e) {
      out.onError(GrpcErrors.toStatus(e));
    }
  }

  @Override
  public void loadModel(LoadModelRequest request, StreamObserver<LoadModelResponse> out) {
    long t0 = System.nanoTime();
    String what = "versions=" + request.getVersionsList() + " latest=" + request.getLatest() + " all=" + request.getAll()
        + (request.hasPin() ? " pin=" + request.getPin() : "");
    try {
      String name = ModelNames.requireValid(request.getName());
      DesiredModel want = DesiredModel.newBuilder().setLoaded(true).addAllVersions(request.getVersionsList())
          .setLatest(request.getLatest()).setAll(request.getAll()).build();
      ModelVersionPolicy policy = DesiredStateStore.policyOf(want);
      LoadResult result = lifecycle.load(name, policy, request.hasPin() ? request.getPin() : null);
      LoadModelResponse.Builder response = LoadModelResponse.newBuilder().setModel(ControlStatuses.of(manager, name));
      for (LoadResult.VersionChange c : result.changes()) {
        response.addChanges(VersionChange.newBuilder().setVersion(c.version()).setChange(c.change().label())
            .setReason(c.reason()));
      }
      out.onNext(response.build());
      out.onCompleted();
      audit("LoadModel", request.getName(), what + " -> " + result.summary(), Status.OK, t0);
    } catch (RuntimeException e) {
      fail(out, "LoadModel", request.getName(), what, e, t0);
    }
  }

  @Override
  public void unloadModel(UnloadModelRequest request, StreamObserver<UnloadModelResponse> out) {
    long t0 = System.nanoTime();
    try {
      String name = ModelNames.requireValid(request.getName());
      lifecycle.unload(name);
      out.onNext(UnloadModelResponse.getDefaultInstance());
      out.onCompleted();
      audit("UnloadModel", request.getName(), "", Status.OK, t0);
    } catch (RuntimeException e) {
      fail(out, "UnloadModel", request.getName(), "", e, t0);
    }
  }

  @Override
  public void setTraffic(SetTrafficRequest request, StreamObserver<SetTrafficResponse> out) {
    long t0 = System.nanoTime();
    StringBuilder what = new StringBuilder("weights={");
    for (TrafficWeight w : request.getWeightsList()) {
      what.append(w.getVersion()).append(':').append(w.getWeight()).append(' ');
    }
    what.append("} labels=").append(request.getLabelsMap());
    try {
      String name = ModelNames.requireValid(request.getName());
      Map<Long, Integer> weights = new HashMap<>();
      for (TrafficWeight w : request.getWeightsList()) {
        if (weights.put(w.getVersion(), w.getWeight()) != null) {
          throw InferenceException.invalidArgument("version %d is weighted twice", w.getVersion());
        }
      }
      TrafficSplit split = new TrafficSplit(weights, request.getLabelsMap());
      lifecycle.setTraffic(name, split);
      out.onNext(SetTrafficResponse.newBuilder().setModel(ControlStatuses.of(manager, name)).build());
      out.onCompleted();
      audit("SetTraffic", request.getName(), what.toString(), Status.OK, t0);
    } catch (RuntimeException e) {
      fail(out, "SetTraffic", request.getName(), what.toString(), e, t0);
    }
  }

  @Override
  public void setMonitoringReference(SetMonitoringReferenceRequest request,
      StreamObserver<SetMonitoringReferenceResponse> out) {
    long t0 = System.nanoTime();
    String what = "version=" + ModelNames.printable(request.getVersion()) + " source=" + switch (request.getSourceCase()) {
      case REQUESTS_JSONL -> "requests_jsonl(" + request.getRequestsJsonl().size() + " bytes)";
      case VERSION_FILE -> "version_file(" + ModelNames.printable(request.getVersionFile()) + ")";
      case CAPTURE_ROWS -> "capture_rows(" + request.getCaptureRows() + ")";
      case SOURCE_NOT_SET -> "none";
    };
    try {
      ModelNames.requireValid(request.getName());
      if (monitoring == null) {
        throw InferenceException.unimplemented("this server has no model monitoring");
      }
      out.onNext(monitoring.setReference(request));
      out.onCompleted();
      audit("SetMonitoringReference", request.getName(), what, Status.OK, t0);
    } catch (RuntimeException e) {
      fail(out, "SetMonitoringReference", request.getName(), what, e, t0);
    }
  }

  @Override
  public void watchModels(WatchModelsRequest request, StreamObserver<ModelEvent> out) {
    ServerCallStreamObserver<ModelEvent> call = (ServerCallStreamObserver<ModelEvent>) out;
    String filter = request.getName();
    AtomicLong sequence = new AtomicLong();
    Consumer<String> send = name -> {
      if (call.isCancelled()) {
        return;
      }
      try {
        call.onNext(ModelEvent.newBuilder().setSequence(sequence.incrementAndGet())
            .setUnixMillis(System.currentTimeMillis()).setModel(ControlStatuses.of(manager, name)).build());
      } catch (RuntimeException e) {
        log.debug("watch stream closed: {}", e.toString());
      }
    };
    Consumer<String> listener = name -> {
      if (filter.isEmpty() || filter.equals(name)) {
        watchSender.execute(() -> send.accept(name)); // the manager's thread must not block on a slow watcher
      }
    };
    call.setOnCancelHandler(() -> manager.removeListener(listener));
    manager.addListener(listener);
    watchSender.execute(() -> {
      for (var model : ControlStatuses.all(manager)) {
        if (filter.isEmpty() || filter.equals(model.getName())) {
          send.accept(model.getName());
        }
      }
    });
  }

  @Override
  public StreamObserver<UploadModelRequest> uploadModel(StreamObserver<UploadModelResponse> out) {
    return new Upload(out);
  }

  // ---------------------------------------------------------------------------------------------

  /** One UploadModel call: a header, then files in chunks, staged on disk, verified, then put into the repository. */
  private final class Upload implements StreamObserver<UploadModelRequest> {
    private final StreamObserver<UploadModelResponse> out;
    private final long t0 = System.nanoTime();
    private UploadHeader header;
    private Path staging;
    private String openPath;
    private OutputStream openFile;
    private MessageDigest digest;
    private long bytes;
    private int files;
    private boolean failed;

    Upload(StreamObserver<UploadModelResponse> out) {
      this.out = out;
    }

    @Override
    public void onNext(UploadModelRequest message) {
      if (failed) {
        return;
      }
      try {
        switch (message.getPartCase()) {
          case HEADER -> onHeader(message.getHeader());
          case CHUNK -> onChunk(message.getChunk());
          default -> throw InferenceException.invalidArgument("upload message has neither header nor chunk");
        }
      } catch (RuntimeException | IOException e) {
        abort(e);
      }
    }

    private void onHeader(UploadHeader h) throws IOException {
      if (header != null) {
        throw InferenceException.invalidArgument("upload sent a second header");
      }
      ModelNames.requireValid(h.getName());
      if (h.hasVersion() && h.getVersion() < 0) {
        throw InferenceException.invalidArgument("upload version must be >= 0; was %d", h.getVersion());
      }
      if (!h.getConfigPbtxt().isEmpty()) {
        ModelConfigParser.parse(h.getConfigPbtxt(), "uploaded config.pbtxt", h.getName());
      }
      if (!(manager.repository() instanceof WritableModelRepository)) {
        throw InferenceException.failedPrecondition("repository %s does not take uploads", manager.repository().location());
      }
      header = h;
      // Under the model cache directory, swept at start: an upload cut off by kill -9 leaves nothing behind for long.
      staging = lifecycle.uploads().newDirectory();
    }

    private void onChunk(FileChunk chunk) throws IOException {
      if (header == null) {
        throw InferenceException.invalidArgument("upload must start with a header");
      }
      if (!chunk.getPath().equals(openPath)) {
        if (openPath != null) {
          throw InferenceException.invalidArgument("file '%s' ended without its sha256", openPath);
        }
        if (!isSafeRelativePath(chunk.getPath())) {
          throw InferenceException.invalidArgument("upload file path must be relative, '/'-separated, without '.', '..' "
              + "or empty segments; was '%s'", ModelNames.printable(chunk.getPath()));
        }
        Path file = staging.resolve(chunk.getPath());
        if (Files.exists(file)) {
          throw InferenceException.invalidArgument("file '%s' is sent twice", chunk.getPath());
        }
        Files.createDirectories(file.getParent());
        openFile = Files.newOutputStream(file);
        openPath = chunk.getPath();
        digest = sha256();
        files++;
      }
      bytes += chunk.getData().size();
      if (bytes > options.maxUploadBytes()) {
        throw InferenceException.resourceExhausted(0, "upload exceeds the limit of %d bytes", options.maxUploadBytes());
      }
      chunk.getData().writeTo(openFile);
      digest.update(chunk.getData().asReadOnlyByteBuffer());
      if (!chunk.getSha256().isEmpty()) {
        openFile.close();
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equalsIgnoreCase(chunk.getSha256())) {
          throw InferenceException.invalidArgument("file '%s': sha256 %s does not match the %s sent", openPath, actual,
              chunk.getSha256());
        }
        openFile = null;
        openPath = null;
      }
    }

    @Override
    public void onError(Throwable t) {
      cleanup();
      audit("UploadModel", header == null ? "" : header.getName(), "client cancelled", Status.fromThrowable(t), t0);
    }

    @Override
    public void onCompleted() {
      if (failed) {
        return;
      }
      try {
        if (header == null) {
          throw InferenceException.invalidArgument("upload carried no header");
        }
        if (openPath != null) {
          throw InferenceException.invalidArgument("file '%s' ended without its sha256", openPath);
        }
        if (files == 0) {
          throw InferenceException.invalidArgument("upload carried no files");
        }
        ModelLifecycle.UploadResult put = lifecycle.putVersion(header.getName(),
            header.hasVersion() ? header.getVersion() : null, staging,
            header.getConfigPbtxt().isEmpty() ? null : header.getConfigPbtxt(), header.getLoad());
        long version = put.version();
        cleanup(); // the files are in the repository now: nothing stays staged once the client has its answer
        out.onNext(UploadModelResponse.newBuilder().setName(header.getName()).setVersion(version).setBytes(bytes)
            .setFiles(files).setModel(ControlStatuses.of(manager, header.getName())).build());
        out.onCompleted();
        audit("UploadModel", header.getName(), "version=" + version + " files=" + files + " bytes=" + bytes
            + " load=" + header.getLoad(), Status.OK, t0);
      } catch (RuntimeException e) {
        abort(e);
      } finally {
        cleanup();
      }
    }

    private void abort(Exception e) {
      failed = true;
      cleanup();
      fail(out, "UploadModel", header == null ? "" : header.getName(), "files=" + files + " bytes=" + bytes, e, t0);
    }

    private void cleanup() {
      if (openFile != null) {
        try {
          openFile.close();
        } catch (IOException ignored) {
          // the staging directory is deleted next
        }
        openFile = null;
      }
      lifecycle.uploads().release(staging);
    }
  }

  static boolean isSafeRelativePath(String relative) {
    if (relative.isEmpty() || relative.length() > 1024 || relative.startsWith("/") || relative.contains("\\")) {
      return false;
    }
    for (String segment : relative.split("/", -1)) {
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..") || segment.startsWith(".quiver")) {
        return false;
      }
      for (int i = 0; i < segment.length(); i++) {
        if (Character.isISOControl(segment.charAt(i))) {
          return false;
        }
      }
    }
    return true;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private void fail(StreamObserver<?> out, String op, String model, String what, Exception e, long t0) {
    io.grpc.StatusRuntimeException error = GrpcErrors.toStatus(e);
    if (!(e instanceof InferenceException)) {
      log.warn("{} '{}' failed", op, model, e);
    }
    audit(op, model, what, error.getStatus(), t0);
    try {
      out.onError(error);
    } catch (IllegalStateException alreadyClosed) {
      // the call was already cancelled
    }
  }

  private static void audit(String op, String model, String what, Status result, long t0) {
    String who = PEER.get();
    audit.info("who={} op={} model={} args=[{}] when={} result={}{} duration_ms={}", who == null ? "in-process" : who,
        op, ModelNames.printable(model), what, Instant.now(), result.getCode(),
        result.getDescription() == null ? "" : " (" + result.getDescription() + ")",
        (System.nanoTime() - t0) / 1_000_000);
  }
}
