package io.quiver.server.console;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.quiver.core.InferenceException;
import io.quiver.proto.control.v1.FileChunk;
import io.quiver.proto.control.v1.UploadHeader;
import io.quiver.proto.control.v1.UploadModelRequest;
import io.quiver.proto.control.v1.UploadModelResponse;
import io.quiver.registry.LocalModelRepository;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Uploads from the browser, turned into the control plane's UploadModel stream. A browser cannot hold a
 * gRPC stream, so an upload is a session: {@code create} (the header), then one HTTP request per chunk
 * of at most {@link #chunkBytes()}, then {@code finish}. Two sources:
 *
 * <ul>
 *   <li><b>files</b> (a directory or single files): each chunk goes on at once as a FileChunk; the
 *       console hashes each file as it passes and sends that SHA-256 on the file's last chunk, after
 *       comparing it with the browser's own digest when the browser sent one (a mismatch cancels the
 *       upload). A chunk is acknowledged once the stream can take another message, so at most about
 *       one chunk per session waits in memory.
 *   <li><b>an archive</b> (.zip, .tar, .tar.gz): chunks are written to a staging file (hashed, bounded by
 *       the upload limit); {@code finish} unpacks it ({@link ArchiveReader}) into FileChunks.
 * </ul>
 *
 * <p>At most {@link #MAX_SESSIONS} sessions at once; one idle for {@link #IDLE_MILLIS} is cancelled when
 * the next one is created. A session belongs to the principal that created it. Methods run on console
 * worker threads; a session's steps are serialized by its monitor. Thread-safe.
 */
final class UploadSessions implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(UploadSessions.class);
  static final int MAX_SESSIONS = 4;
  static final long IDLE_MILLIS = 10 * 60_000;
  /** An upload may take this long end to end before its stream's deadline cancels it. */
  static final long UPLOAD_DEADLINE_SECONDS = 3600;
  private static final int MAX_CHUNK_BYTES = 4 << 20;
  private static final long READY_WAIT_MILLIS = 60_000;

  /** How an HTTP request of a session is answered: a JSON body or an error. Called once. */
  interface Reply {
    void ok(ConsoleHttp.JsonBody body);

    void fail(HttpResponseStatus status, String message);
  }

  private final ConcurrentHashMap<String, Session> sessions = new ConcurrentHashMap<>();
  private final SecureRandom random = new SecureRandom();
  private final long maxUploadBytes;
  private final io.quiver.lifecycle.UploadStaging staging; // null: the system temp directory
  private final int chunkBytes;

  /**
   * @param maxHttpBodyBytes the REST body limit: a chunk and its headers must fit under it
   * @param staging where archives are staged (the lifecycle's, under the model cache directory, swept at
   *     start); null = the system temp directory
   */
  UploadSessions(long maxUploadBytes, io.quiver.lifecycle.UploadStaging staging, int maxHttpBodyBytes) {
    this.maxUploadBytes = maxUploadBytes;
    this.staging = staging;
    this.chunkBytes = Math.max(4096, Math.min(MAX_CHUNK_BYTES, maxHttpBodyBytes - 4096));
  }

  int chunkBytes() {
    return chunkBytes;
  }

  long maxUploadBytes() {
    return maxUploadBytes;
  }

  /**
   * Starts an upload.
   *
   * @param archiveName the archive's file name when the upload is one archive; null for files
   * @throws InferenceException RESOURCE_EXHAUSTED when {@link #MAX_SESSIONS} are open; INVALID_ARGUMENT for
   *     an archive name of no known kind
   */
  Session create(ConsoleCaller caller, ControlClient control, UploadHeader header, String archiveName) throws IOException {
    sweep();
    if (sessions.size() >= MAX_SESSIONS) {
      throw InferenceException.resourceExhausted(5_000_000_000L, "%d uploads are already open; try again when one "
          + "finishes", MAX_SESSIONS);
    }
    ArchiveReader.Kind kind = null;
    if (archiveName != null) {
      kind = ArchiveReader.kindOf(archiveName);
      if (kind == null) {
        throw InferenceException.invalidField("archive", "the archive must be a .zip, .tar, .tar.gz or .tgz file; was '%s'",
            archiveName.length() > 100 ? archiveName.substring(0, 100) + "..." : archiveName);
      }
    }
    byte[] idBytes = new byte[16];
    random.nextBytes(idBytes);
    Session session = new Session(HexFormat.of().formatHex(idBytes), caller, control, header, kind);
    sessions.put(session.id, session);
    try {
      if (kind == null) {
        session.open();
      } else {
        Path dir = staging == null ? Files.createTempDirectory("quiver-console-upload-") : staging.newDirectory();
        session.archive = dir.resolve("archive");
        session.archiveOut = Files.newOutputStream(session.archive);
      }
    } catch (IOException | RuntimeException e) {
      session.cancel("could not start: " + e.getMessage());
      throw e;
    }
    return session;
  }

  /**
   * The open session {@code id} of this caller.
   *
   * @throws InferenceException NOT_FOUND when there is none (finished, cancelled, expired, or another principal's)
   */
  Session get(String id, ConsoleCaller caller) {
    Session s = id == null ? null : sessions.get(id);
    if (s == null || !java.util.Objects.equals(s.owner, caller.name())) {
      throw InferenceException.notFound("no open upload '%s'", id == null ? "" : id.length() > 40 ? id.substring(0, 40) : id);
    }
    return s;
  }

  private void sweep() {
    long now = System.currentTimeMillis();
    for (Session s : sessions.values()) {
      if (now - s.lastUsed > IDLE_MILLIS) {
        log.info("console upload {} of model '{}' idle for {} s: cancelled", s.id, s.header.getName(), IDLE_MILLIS / 1000);
        s.cancel("idle for too long");
      }
    }
  }

  @Override
  public void close() {
    for (Session s : sessions.values()) {
      s.cancel("the server is shutting down");
    }
  }

  /** One file as it reached the repository: its path, size and SHA-256 (hex). */
  record FileDigest(String path, long bytes, String sha256) {}

  final class Session {
    final String id;
    private final String owner;
    private final ConsoleCaller caller;
    private final ControlClient control;
    private final UploadHeader header;
    private final ArchiveReader.Kind kind;
    private final CompletableFuture<UploadModelResponse> result = new CompletableFuture<>();
    private final List<FileDigest> files = new ArrayList<>();
    private volatile long lastUsed = System.currentTimeMillis();
    private ClientCallStreamObserver<UploadModelRequest> requests;
    private String openPath;
    private long openBytes;
    private MessageDigest digest;
    private long bytes;
    private Runnable pendingAck;
    private boolean done;
    private String failure;
    // archive mode
    private Path archive;
    private OutputStream archiveOut;
    private final MessageDigest archiveDigest = sha256();
    private String archiveSha256;

    Session(String id, ConsoleCaller caller, ControlClient control, UploadHeader header, ArchiveReader.Kind kind) {
      this.id = id;
      this.owner = caller.name();
      this.caller = caller;
      this.control = control;
      this.header = header;
      this.kind = kind;
    }

    /** Opens the UploadModel stream and sends the header. */
    private void open() {
      control.stub(caller, UPLOAD_DEADLINE_SECONDS).uploadModel(
          new ClientResponseObserver<UploadModelRequest, UploadModelResponse>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<UploadModelRequest> stream) {
              requests = stream;
              stream.setOnReadyHandler(Session.this::onReady);
            }

            @Override
            public void onNext(UploadModelResponse value) {
              result.complete(value);
            }

            @Override
            public void onError(Throwable t) {
              failed(Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
              result.completeExceptionally(Status.INTERNAL.withDescription("the upload ended without an answer")
                  .asRuntimeException());
            }
          });
      requests.onNext(UploadModelRequest.newBuilder().setHeader(header).build());
    }

    private synchronized void onReady() {
      if (pendingAck != null && requests.isReady()) {
        Runnable ack = pendingAck;
        pendingAck = null;
        ack.run();
      }
      notifyAll();
    }

    private void failed(Status status) {
      Runnable ack;
      synchronized (this) {
        if (failure == null) {
          failure = ControlClient.message(status);
        }
        ack = pendingAck;
        pendingAck = null;
        notifyAll();
      }
      result.completeExceptionally(status.asRuntimeException());
      if (ack != null) {
        ack.run(); // answers the waiting chunk with the failure (it checks the state first)
      }
      cleanup();
    }

    /**
     * One chunk of the file {@code path} ({@code last}: the file ends with it; {@code browserSha256}: the
     * browser's digest of the whole file, on its last chunk, or null).
     */
    synchronized void chunk(String path, boolean last, String browserSha256, ByteString data, Reply reply) {
      lastUsed = System.currentTimeMillis();
      if (!checkOpen(reply)) {
        return;
      }
      bytes += data.size();
      if (bytes > maxUploadBytes) {
        abort(reply, HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE,
            "the upload exceeds the limit of " + maxUploadBytes + " bytes (--max-upload-bytes)");
        return;
      }
      if (kind != null) {
        try {
          data.writeTo(archiveOut);
        } catch (IOException e) {
          abort(reply, HttpResponseStatus.INTERNAL_SERVER_ERROR, "could not stage the archive: " + e.getMessage());
          return;
        }
        archiveDigest.update(data.asReadOnlyByteBuffer());
        if (last) {
          archiveSha256 = HexFormat.of().formatHex(archiveDigest.digest());
          if (browserSha256 != null && !browserSha256.equalsIgnoreCase(archiveSha256)) {
            abort(reply, HttpResponseStatus.BAD_REQUEST, "the archive's sha256 is " + archiveSha256
                + " here, but the browser computed " + browserSha256 + ": it changed on the way");
            return;
          }
        }
        long received = bytes;
        String sha = last ? archiveSha256 : null;
        reply.ok(gen -> chunkAnswer(gen, path, received, sha));
        return;
      }
      if (path == null || path.isEmpty()) {
        abort(reply, HttpResponseStatus.BAD_REQUEST, "a chunk must name its file (header x-quiver-path)");
        return;
      }
      if (!path.equals(openPath)) {
        if (openPath != null) {
          abort(reply, HttpResponseStatus.BAD_REQUEST, "file '" + openPath + "' ended without its last chunk");
          return;
        }
        openPath = path;
        openBytes = 0;
        digest = sha256();
      }
      openBytes += data.size();
      digest.update(data.asReadOnlyByteBuffer());
      FileChunk.Builder chunk = FileChunk.newBuilder().setPath(path).setData(data);
      String sha = null;
      if (last) {
        sha = HexFormat.of().formatHex(digest.digest());
        if (browserSha256 != null && !browserSha256.equalsIgnoreCase(sha)) {
          abort(reply, HttpResponseStatus.BAD_REQUEST, "file '" + path + "': sha256 " + sha
              + " here, but the browser computed " + browserSha256 + ": it changed on the way");
          return;
        }
        chunk.setSha256(sha);
        files.add(new FileDigest(path, openBytes, sha));
        openPath = null;
      }
      requests.onNext(UploadModelRequest.newBuilder().setChunk(chunk).build());
      long received = bytes;
      String fileSha = sha;
      Runnable ack = () -> {
        synchronized (this) {
          if (failure != null) {
            reply.fail(HttpResponseStatus.BAD_REQUEST, failure);
          } else {
            reply.ok(gen -> chunkAnswer(gen, path, received, fileSha));
          }
        }
      };
      if (requests.isReady()) {
        ack.run();
      } else {
        pendingAck = ack; // answered by onReady (the control plane took the chunk) or by a failure
      }
    }

    /** Ends the upload: the stream completes (after unpacking an archive) and the control plane's answer is returned. */
    void finish(Reply reply) {
      synchronized (this) {
        lastUsed = System.currentTimeMillis();
        if (!checkOpen(reply)) {
          return;
        }
        if (openPath != null) {
          abort(reply, HttpResponseStatus.BAD_REQUEST, "file '" + openPath + "' ended without its last chunk");
          return;
        }
        done = true;
        if (kind != null) {
          try {
            archiveOut.close();
            archiveOut = null;
            if (archiveSha256 == null) {
              archiveSha256 = HexFormat.of().formatHex(archiveDigest.digest());
            }
            open();
            ArchiveReader.read(archive, kind, maxUploadBytes, this::sendFile);
          } catch (InferenceException e) {
            cancelStream(e.getMessage());
            reply.fail(io.quiver.server.http.HttpErrors.status(e.code()), e.getMessage());
            cleanup();
            return;
          } catch (IOException | RuntimeException e) {
            cancelStream(e.toString());
            reply.fail(HttpResponseStatus.BAD_REQUEST, "could not unpack the archive: " + e.getMessage());
            cleanup();
            return;
          }
        } else if (files.isEmpty()) {
          abort(reply, HttpResponseStatus.BAD_REQUEST, "the upload carried no files");
          return;
        }
        requests.onCompleted();
      }
      result.whenComplete((response, error) -> {
        cleanup();
        if (error != null) {
          Status status = Status.fromThrowable(error);
          reply.fail(ControlClient.httpStatus(status), ControlClient.message(status));
          return;
        }
        reply.ok(gen -> {
          gen.writeStartObject();
          gen.writeStringField("name", response.getName());
          gen.writeNumberField("version", response.getVersion());
          gen.writeNumberField("bytes", response.getBytes());
          gen.writeNumberField("files", response.getFiles());
          if (archiveSha256 != null) {
            gen.writeStringField("archiveSha256", archiveSha256);
          }
          gen.writeArrayFieldStart("digests");
          for (FileDigest f : files) {
            gen.writeStartObject();
            gen.writeStringField("path", f.path());
            gen.writeNumberField("bytes", f.bytes());
            gen.writeStringField("sha256", f.sha256());
            gen.writeEndObject();
          }
          gen.writeEndArray();
          gen.writeFieldName("model");
          ConsoleJson.modelStatus(gen, response.getModel());
          gen.writeEndObject();
        });
      });
    }

    /** Unpacking: one archive file into FileChunks, waiting (bounded) for the stream to take each. */
    private void sendFile(String path, InputStream content) throws IOException {
      MessageDigest fileDigest = sha256();
      byte[] current = new byte[chunkBytes];
      byte[] following = new byte[chunkBytes];
      long size = 0;
      int n = content.readNBytes(current, 0, current.length);
      while (true) {
        // Read one chunk ahead to know whether this one is the file's last.
        int m = n < current.length ? 0 : content.readNBytes(following, 0, following.length);
        boolean last = m == 0;
        fileDigest.update(current, 0, n);
        size += n;
        FileChunk.Builder chunk = FileChunk.newBuilder().setPath(path).setData(ByteString.copyFrom(current, 0, n));
        if (last) {
          String sha = HexFormat.of().formatHex(fileDigest.digest());
          chunk.setSha256(sha);
          files.add(new FileDigest(path, size, sha));
        }
        awaitReady();
        requests.onNext(UploadModelRequest.newBuilder().setChunk(chunk).build());
        if (last) {
          return;
        }
        byte[] swap = current;
        current = following;
        following = swap;
        n = m;
      }
    }

    /** Holds this session's monitor (called from finish). */
    private void awaitReady() throws IOException {
      long deadline = System.currentTimeMillis() + READY_WAIT_MILLIS;
      while (!requests.isReady()) {
        if (failure != null) {
          throw InferenceException.invalidArgument("%s", failure);
        }
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
          throw new IOException("the control plane took no upload data for " + READY_WAIT_MILLIS / 1000 + " s");
        }
        try {
          wait(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while unpacking the archive");
        }
      }
      if (failure != null) {
        throw InferenceException.invalidArgument("%s", failure);
      }
    }

    /** Cancels at the browser's request (or when idle, or at shutdown). */
    synchronized void cancel(String why) {
      if (failure == null) {
        failure = "upload cancelled: " + why;
      }
      cancelStream(why);
      Runnable ack = pendingAck;
      pendingAck = null;
      if (ack != null) {
        ack.run();
      }
      cleanup();
    }

    private boolean checkOpen(Reply reply) {
      if (failure != null) {
        reply.fail(HttpResponseStatus.BAD_REQUEST, failure);
        return false;
      }
      if (done) {
        reply.fail(HttpResponseStatus.BAD_REQUEST, "the upload is already finishing");
        return false;
      }
      return true;
    }

    private void abort(Reply reply, HttpResponseStatus status, String message) {
      failure = message;
      cancelStream(message);
      reply.fail(status, message);
      cleanup();
    }

    private void cancelStream(String why) {
      if (requests != null) {
        try {
          requests.cancel(why, null);
        } catch (RuntimeException ignored) {
          // already closed
        }
      }
    }

    private synchronized void cleanup() {
      sessions.remove(id, this);
      if (archiveOut != null) {
        try {
          archiveOut.close();
        } catch (IOException ignored) {
          // deleted next
        }
        archiveOut = null;
      }
      if (archive != null) {
        if (staging != null) {
          staging.release(archive.getParent());
        } else {
          LocalModelRepository.deleteTree(archive.getParent());
        }
      }
    }
  }

  private static void chunkAnswer(com.fasterxml.jackson.core.JsonGenerator gen, String path, long received, String sha)
      throws IOException {
    gen.writeStartObject();
    gen.writeNumberField("received", received);
    if (path != null) {
      gen.writeStringField("path", path);
    }
    if (sha != null) {
      gen.writeStringField("sha256", sha);
    }
    gen.writeEndObject();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** How many uploads are open. */
  int openSessions() {
    return sessions.size();
  }
}
