package io.quiver.server.jobs;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferRequest;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.server.CpuSharing;
import io.quiver.server.DataPlane;
import io.quiver.server.http.RestInferCodec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs one job from its resume point to the end of its input, a cancel, a failure or a server stop.
 *
 * <h2>Threads</h2>
 * <ul>
 *   <li>The <b>reader</b> (the thread that calls {@link #run}, one of the manager's job threads) reads
 *       records, paces them (rate limit), takes a concurrency permit and submits each through
 *       {@link DataPlane#submit} at {@link InferRequest#BACKGROUND_PRIORITY}: the same routing,
 *       validation and scheduler path as online requests, below every online priority level.</li>
 *   <li><b>Runner threads</b> complete the records ({@link PendingRecord}, a {@link DataPlane.Completion}):
 *       they only store the outputs in the record's chunk slot and return the permit; a retryable
 *       failure (a full background queue, a version being swapped) goes back to the reader. They serve
 *       online requests too, so they never wait for anything a job thread holds (lock-free structures,
 *       {@link #wake}): a nice-19 job thread preempted while holding a lock may not run again for tens
 *       of milliseconds on a busy core.</li>
 *   <li>The <b>committer</b> (one thread per running job) waits for chunks in order, encodes each one's
 *       results (KServe v2 REST responses, one per line, in input order) and failures, writes them
 *       atomically, then stores the job's progress: a restart resumes after the last stored chunk and
 *       rewrites any chunk written after it, so the output never holds a record twice or misses one.</li>
 * </ul>
 * Memory is bounded by the concurrency (requests in flight) and by {@link #CHUNKS_AHEAD} chunks of
 * results, never by the input's size.
 */
final class JobRunner {
  private static final Logger log = LoggerFactory.getLogger(JobRunner.class);
  /** Chunks the reader may be ahead of the last committed one (their results are held in memory). */
  static final int CHUNKS_AHEAD = 2;
  /** How long a model may stay unavailable (not loaded, being swapped) before the job fails. */
  static final long UNAVAILABLE_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(60);
  static final long MAX_RETRY_SLEEP_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
  private final JobManager manager;
  private final BatchJob job;
  private final DataPlane plane;
  private final JobStorage storage;
  private final JobLocation input;
  private final JobLocation output;
  private final int concurrency;
  private final double maxRate;
  private final long maxFailed;
  private final List<String> defaultOutputs;
  private final boolean resumed;
  private final Semaphore permits;
  private final ConcurrentLinkedQueue<PendingRecord> retries = new ConcurrentLinkedQueue<>();
  // Lock-free (a ConcurrentHashMap locks a bin while it adds to it): runner threads remove from it, and
  // must never wait for the nice-19 reader that was preempted inside an add.
  private final Set<PendingRecord> outstanding =
      new ConcurrentSkipListSet<>(Comparator.comparingLong((PendingRecord p) -> p.record.index()));
  private final ConcurrentHashMap<Long, Chunk> chunks = new ConcurrentHashMap<>();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private volatile long lastChunk = -1; // index of the input's last chunk once the input has ended; -2 = no chunk at all
  private volatile String fatal;
  private volatile boolean stopping; // the server is shutting down: leave the job to a restart
  private final ChunkBuffer resultBytes = new ChunkBuffer(1 << 16); // committer thread only
  private final ChunkBuffer failureBytes = new ChunkBuffer(1 << 10); // committer thread only
  // The layout of the last record that succeeded, offered to the next one. Written and read by runner
  // threads without ordering: an OutputLayout is immutable (final fields), so a thread sees either
  // nothing or a whole layout, and a stale one only means building a new layout.
  private Chunk.OutputLayout lastLayout;

  JobRunner(JobManager manager, BatchJob job, JobLocation input, JobLocation output, int concurrency, double maxRate,
      long maxFailed, boolean resumed) {
    this.manager = manager;
    this.job = job;
    this.plane = manager.plane();
    this.storage = manager.storage();
    this.input = input;
    this.output = output;
    this.concurrency = concurrency;
    this.maxRate = maxRate;
    this.maxFailed = maxFailed;
    this.defaultOutputs = job.spec.getOptions().getOutputsList();
    this.resumed = resumed;
    this.permits = new Semaphore(concurrency);
  }

  /** Asks the job to stop for a server shutdown: no final state is stored, a restart resumes it. */
  void stop() {
    stopping = true;
    signal();
  }

  /**
   * A cancel was requested (the job's flag is set): wake the threads. No interrupt: the job's threads
   * do interruptible file I/O; their waits are short and check the flag.
   */
  void cancelled() {
    signal();
  }

  /** Runs the job on the calling thread (the reader); returns when it has finished or stopped. */
  void run() {
    // The job's own work gets the CPU that online work leaves idle; the committer started below inherits
    // the nice value (a failure to set it is logged by CpuSharing, and the job runs anyway).
    if (manager.threadNice() > 0) {
      CpuSharing.niceCurrentThread(manager.threadNice());
    }
    job.markRunning(System.currentTimeMillis());
    manager.persist(job);
    log.info("job {} running: model '{}', {} -> {}, from record {} (chunk {}), concurrency {}", job.id,
        job.spec.getModel(), input, output, job.resumeRecord(), job.chunksCommitted(), concurrency);
    Thread committer = new Thread(this::commitLoop, "quiver-job-" + job.id + "-commit");
    committer.setDaemon(true);
    committer.start();
    try {
      read();
    } catch (InferenceException e) {
      fail(e.getMessage());
    } catch (IOException e) {
      fail("reading " + input + " failed: " + e);
    } catch (RuntimeException e) {
      log.error("job {} failed", job.id, e);
      fail("internal error: " + e);
    } finally {
      Thread.interrupted(); // a cancel's interrupt must not disturb the joins below
    }
    if (job.cancelRequested || fatal != null || stopping) {
      for (PendingRecord p : outstanding) {
        InferRequest r = p.request;
        if (r != null) {
          r.cancel(); // dropped before it runs; its completion is ignored
        }
      }
    }
    // Records that come back for a retry after the input ended are resubmitted here until the last
    // chunk is committed (or the job halts, which abandons them).
    boolean interrupted = false;
    while (committer.isAlive()) {
      resubmitRetries();
      try {
        committer.join(10);
      } catch (InterruptedException e) {
        interrupted = true; // a cancel: halted() is true now, the committer returns promptly
      }
    }
    if (interrupted) {
      Thread.interrupted();
    }
    finish();
  }

  // ---------------------------------------------------------------------------------------------
  // Reader

  private void read() throws IOException {
    int perChunk = job.recordsPerChunk;
    long nextStart = System.nanoTime();
    long intervalNanos = maxRate > 0 ? (long) (1e9 / maxRate) : 0;
    long first = job.resumeRecord();
    long count = first;
    Chunk current = null;
    boolean reachedEnd = false;
    try (RecordSource source = manager.openSource(job, input, first, job.resumeOffset(), job.resumeLine())) {
      while (!halted()) {
        resubmitRetries();
        InputRecord record = source.next();
        job.bytesRead = source.bytesRead();
        if (record == null) {
          reachedEnd = true;
          break;
        }
        count = record.index() + 1;
        long chunkIndex = record.index() / perChunk;
        int slot = (int) (record.index() % perChunk);
        if (current == null || current.index != chunkIndex) {
          awaitRoomForChunk(chunkIndex);
          if (halted()) {
            return;
          }
          current = new Chunk(chunkIndex, perChunk);
          chunks.put(chunkIndex, current);
        }
        current.endOffset = record.endOffset();
        current.endLine = record.line();
        if (record.error() != null) {
          job.failed.incrementAndGet();
          if (current.complete(slot, new Chunk.Failure(record.id(), record.line(), record.error()))) {
            signal();
          }
          checkFailureLimit();
          continue;
        }
        if (intervalNanos > 0) {
          nextStart = pace(nextStart, intervalNanos);
        }
        if (!acquirePermit()) {
          return;
        }
        PendingRecord pending = new PendingRecord(current, slot, record);
        outstanding.add(pending);
        job.inFlight.incrementAndGet();
        submitUntilAccepted(pending);
      }
    }
    if (reachedEnd && !halted()) {
      // The input's end: the last chunk may be short; the committer stops after it.
      job.recordsTotal = count;
      if (current == null) {
        lastChunk = -2; // nothing (more) to read: the committed chunks are the whole output
      } else {
        int size = (int) (count - current.index * perChunk);
        lastChunk = current.index;
        if (size < perChunk && current.seal(size)) {
          signal();
        }
      }
      signal();
    }
  }

  private boolean halted() {
    return job.cancelRequested || fatal != null || stopping;
  }

  private void awaitRoomForChunk(long chunkIndex) {
    lock.lock();
    try {
      while (!halted() && chunkIndex - job.chunksCommitted() >= CHUNKS_AHEAD) {
        resubmitRetriesUnlocked();
        changed.await(10, TimeUnit.MILLISECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      lock.unlock();
    }
  }

  private void resubmitRetriesUnlocked() {
    lock.unlock();
    try {
      resubmitRetries();
    } finally {
      lock.lock();
    }
  }

  private long pace(long nextStart, long intervalNanos) {
    long now = System.nanoTime();
    if (nextStart > now) {
      // In slices, so a cancel is seen within one slice even at a very low rate.
      while (!halted() && (now = System.nanoTime()) < nextStart) {
        sleepQuietly(Math.min(nextStart - now, MAX_RETRY_SLEEP_NANOS));
      }
      return nextStart + intervalNanos;
    }
    // Behind schedule (idle, or the model was busy): no burst to catch up beyond one interval.
    return Math.max(nextStart, now - intervalNanos) + intervalNanos;
  }

  private boolean acquirePermit() {
    while (!halted()) {
      resubmitRetries();
      try {
        if (permits.tryAcquire(10, TimeUnit.MILLISECONDS)) {
          return true;
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return false;
  }

  /** Submits a record, sleeping through a full background queue; records other failures. Reader thread. */
  private void submitUntilAccepted(PendingRecord p) {
    while (!halted()) {
      try {
        p.request = plane.submit(job.spec.getModel(), job.spec.getModelVersion(), p.record.id(),
            p.record.decoded().inputs(), outputsOf(p.record), InferRequest.BACKGROUND_PRIORITY, 0L,
            InferRequest.NO_DEADLINE, p, "job");
        return;
      } catch (InferenceException e) {
        if (!retryable(e, p)) {
          p.fail(e);
          return;
        }
        sleepQuietly(retryDelay(e));
      } catch (RuntimeException e) {
        p.fail(InferenceException.internal("submit failed: " + e, e));
        return;
      }
    }
    p.abandon();
  }

  private List<String> outputsOf(InputRecord record) {
    List<String> own = record.decoded().outputs();
    return own.isEmpty() ? defaultOutputs : own;
  }

  private void resubmitRetries() {
    PendingRecord p;
    while ((p = retries.poll()) != null) {
      if (halted()) {
        p.abandon();
        continue;
      }
      submitUntilAccepted(p);
    }
  }

  /**
   * Whether a failure should be retried rather than recorded: a full background queue always (the
   * normal back-pressure), an unavailable model version for up to {@link #UNAVAILABLE_LIMIT_NANOS};
   * a model that is gone fails the whole job.
   */
  private boolean retryable(InferenceException e, PendingRecord p) {
    switch (e.code()) {
      case RESOURCE_EXHAUSTED:
        return true;
      case UNAVAILABLE:
        long now = System.nanoTime();
        if (p.unavailableSince == 0) {
          p.unavailableSince = now;
        }
        if (now - p.unavailableSince < UNAVAILABLE_LIMIT_NANOS) {
          return true;
        }
        fail("model '" + job.spec.getModel() + "' stayed unavailable for "
            + TimeUnit.NANOSECONDS.toSeconds(UNAVAILABLE_LIMIT_NANOS) + " s: " + e.getMessage());
        return false;
      case NOT_FOUND:
        fail("model '" + job.spec.getModel() + "' is no longer served: " + e.getMessage());
        return false;
      default:
        return false;
    }
  }

  private static long retryDelay(InferenceException e) {
    long hint = e.retryAfterNanos() > 0 ? e.retryAfterNanos() : TimeUnit.MILLISECONDS.toNanos(5);
    return Math.min(MAX_RETRY_SLEEP_NANOS, Math.max(TimeUnit.MILLISECONDS.toNanos(1), hint));
  }

  private static void sleepQuietly(long nanos) {
    try {
      TimeUnit.NANOSECONDS.sleep(nanos);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void checkFailureLimit() {
    if (maxFailed > 0 && job.failed.get() > maxFailed) {
      fail("more than " + maxFailed + " records failed (options.max_failed_records); see the failures files");
    }
  }

  private void fail(String why) {
    if (fatal == null && !job.cancelRequested) {
      fatal = why;
      log.warn("job {} failing: {}", job.id, why);
    }
    wake(); // may run on a runner thread (the failure limit)
  }

  /**
   * Wakes the reader and the committer without ever waiting for the lock, for runner threads: the
   * lock's other users are the job's nice-19 threads, and one preempted while holding it would stall
   * a compute thread that online requests wait for. A wake-up missed because the lock was held costs
   * at most one timed wait (10 ms for the reader, 50 ms for the committer): both re-check after it.
   */
  private void wake() {
    if (lock.tryLock()) {
      try {
        changed.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  private void signal() {
    lock.lock();
    try {
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /** One record between submission and completion; its completion runs on a runner thread and never blocks. */
  private final class PendingRecord implements DataPlane.Completion {
    final Chunk chunk;
    final int slot;
    final InputRecord record;
    volatile InferRequest request;
    long unavailableSince; // reader thread only

    PendingRecord(Chunk chunk, int slot, InputRecord record) {
      this.chunk = chunk;
      this.slot = slot;
      this.record = record;
    }

    @Override
    public void succeeded(InferRequest request, String version, Tensor[] outputs) {
      // The outputs are lent for this call only (a runner reuses its buffers): the committer encodes
      // them later, so keep a packed copy. The layout is shared while consecutive records' outputs
      // match (a racy cache of an immutable object: a lost update only costs a new layout).
      Chunk.OutputLayout layout = Chunk.OutputLayout.of(lastLayout, request.modelName(), outputs);
      lastLayout = layout;
      leaveFlight(false);
      stored(chunk.succeed(slot, record.id(), version, layout, outputs));
    }

    @Override
    public void failed(InferRequest request, InferenceException error) {
      if (halted()) {
        abandon();
        return;
      }
      ErrorCode code = error.code();
      if (code == ErrorCode.RESOURCE_EXHAUSTED || code == ErrorCode.UNAVAILABLE) {
        retries.add(this); // the reader resubmits it; the permit stays taken
        return;
      }
      fail(error);
    }

    /** Reader thread or runner thread: the record failed for good. */
    void fail(InferenceException error) {
      job.failed.incrementAndGet();
      leaveFlight(true);
      stored(chunk.complete(slot, new Chunk.Failure(record.id(), record.line(), error)));
      checkFailureLimit();
    }

    /** The record is no longer in flight (before its result is stored, as the committer may act on it at once). */
    private void leaveFlight(boolean failure) {
      outstanding.remove(this);
      job.inFlight.decrementAndGet();
      if (!failure) {
        job.succeeded.incrementAndGet();
      }
    }

    /** The record's result is stored: its permit goes back, and a chunk it completed to the committer. */
    private void stored(boolean complete) {
      permits.release();
      if (complete) {
        wake();
      }
    }

    /** The job stopped: this record will not be in the output; give its permit back. */
    void abandon() {
      if (outstanding.remove(this)) {
        job.inFlight.decrementAndGet();
        permits.release();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Committer

  private void commitLoop() {
    long next = job.chunksCommitted();
    try {
      while (true) {
        Chunk chunk = awaitChunk(next);
        if (chunk == null) {
          return;
        }
        commit(chunk);
        chunks.remove(next);
        next++;
        signal(); // room for the reader to start another chunk
      }
    } catch (InferenceException e) {
      fail("writing the output to " + output + " failed: " + e.getMessage());
    } catch (RuntimeException e) {
      log.error("job {}: committing failed", job.id, e);
      fail("writing the output failed: " + e);
    }
  }

  /** The chunk to commit next once complete, or null when there is none (end of input, cancel, failure, stop). */
  private Chunk awaitChunk(long index) {
    lock.lock();
    try {
      while (true) {
        if (halted()) {
          return null;
        }
        Chunk chunk = chunks.get(index);
        if (chunk != null && chunk.isComplete()) {
          return chunk;
        }
        long last = lastChunk;
        if (last == -2 || (last >= 0 && index > last)) {
          return null;
        }
        changed.await(50, TimeUnit.MILLISECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } finally {
      lock.unlock();
    }
  }

  private void commit(Chunk chunk) {
    int size = chunk.size;
    ChunkBuffer results = resultBytes;
    ChunkBuffer failures = failureBytes;
    results.reset();
    failures.reset();
    long succeeded = 0;
    long failed = 0;
    // One generator per file and chunk, not per line: a generator's buffers and contexts were a sixth
    // of a record's allocation.
    JsonFactory json = RestInferCodec.JSON.getFactory();
    try (JsonGenerator resultLines = lineGenerator(json, results);
        JsonGenerator failureLines = lineGenerator(json, failures)) {
      for (int i = 0; i < size; i++) {
        Object result = chunk.results[i];
        if (result instanceof Chunk.Answer a) {
          // Every result is JSON: a JSON Lines file has no room for binary tensors.
          RestInferCodec.writeJsonResponse(resultLines, a.layout().model, chunk.ids[i], a.version(), a.outputs(chunk, i));
          resultLines.writeRaw('\n');
          succeeded++;
        } else {
          writeFailure(failureLines, (Chunk.Failure) result);
          failed++;
        }
      }
    } catch (IOException e) {
      throw InferenceException.internal("cannot encode results: " + e, e);
    }
    String suffix = String.format("%06d.jsonl", chunk.index);
    storage.write(output, JobManager.RESULTS_PREFIX + suffix, results.array(), results.size());
    if (failed > 0) {
      storage.write(output, JobManager.FAILURES_PREFIX + suffix, failures.array(), failures.size());
    } else if (resumed) {
      storage.delete(output, JobManager.FAILURES_PREFIX + suffix); // a failed record of an attempt before the restart
    }
    long nextRecord = chunk.index * (long) job.recordsPerChunk + size;
    // Stored first, reported second: a restart resumes after this chunk once the store says so.
    manager.persist(job, job.recordAfterCommit(size, succeeded, failed, nextRecord, chunk.endOffset, chunk.endLine));
    job.committed(size, succeeded, failed, nextRecord, chunk.endOffset, chunk.endLine);
  }

  /**
   * The bytes of one output file of a chunk, kept by the committer from chunk to chunk: a chunk's
   * results (a couple of MB at the default chunk size) are written into the array the last chunk grew,
   * not into a new one grown and copied again for each chunk. Committer thread only.
   */
  private static final class ChunkBuffer extends ByteArrayOutputStream {
    ChunkBuffer(int capacity) {
      super(capacity);
    }

    /** The array holding the bytes written since the last reset (its first {@link #size()} bytes). */
    byte[] array() {
      return buf;
    }
  }

  /** A generator of JSON Lines: one object per line, each ended by the caller with a newline. */
  private static JsonGenerator lineGenerator(JsonFactory json, OutputStream out) throws IOException {
    JsonGenerator gen = json.createGenerator(out);
    gen.setRootValueSeparator(null); // the newline the caller writes separates them
    return gen;
  }

  private static void writeFailure(JsonGenerator gen, Chunk.Failure f) throws IOException {
    gen.writeStartObject();
    gen.writeStringField("id", f.id());
    gen.writeNumberField("line", f.line());
    gen.writeStringField("code", f.error().code().name());
    if (f.error().field() != null && !f.error().field().isEmpty()) {
      gen.writeStringField("field", f.error().field());
    }
    gen.writeStringField("error", f.error().getMessage());
    gen.writeEndObject();
    gen.writeRaw('\n');
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private void finish() {
    if (stopping && !job.cancelRequested) {
      log.info("job {} stopped with the server after {} committed chunk(s); a restart resumes it", job.id,
          job.chunksCommitted());
      return;
    }
    long committed = job.recordsCommitted();
    long chunksDone = job.chunksCommitted();
    JobState state;
    String message;
    boolean partial;
    if (job.cancelRequested) {
      state = JobState.CANCELLED;
      partial = true;
      message = "cancelled: the output holds the first " + committed + " records of the input (" + chunksDone
          + " chunk(s)); later records were not written";
    } else if (fatal != null) {
      state = JobState.FAILED;
      partial = true;
      message = fatal + "; the output holds the first " + committed + " records of the input (" + chunksDone + " chunk(s))";
    } else {
      state = JobState.SUCCEEDED;
      partial = false;
      message = "";
    }
    manager.finalizeJob(job, state, message, partial);
  }


}
