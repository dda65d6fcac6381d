package io.quiver.server.jobs;

import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobRecord;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One job as this server knows it: its request, its state, live counters, and the committed progress
 * a restart resumes from. Thread-safe: counters are atomics written by the job's threads and the
 * runner threads that complete its requests; state changes and committed progress are guarded by this
 * object's monitor; reads for status are snapshots.
 */
final class BatchJob {
  /** Window over which records per second are measured while running. */
  static final long RATE_WINDOW_NANOS = 5_000_000_000L;

  final String id;
  final SubmitJobRequest spec;
  final String submittedBy;
  final int recordsPerChunk;
  final long createdMillis;
  final AtomicLong succeeded = new AtomicLong();
  final AtomicLong failed = new AtomicLong();
  final AtomicLong inFlight = new AtomicLong();
  volatile long bytesRead;
  volatile long bytesTotal;
  volatile long recordsTotal;
  volatile boolean cancelRequested;

  // Guarded by this.
  private JobState state;
  private String message = "";
  private long startedMillis;
  private long finishedMillis;
  private boolean outputPartial;
  private long chunksCommitted;
  private long recordsCommitted;
  private long committedSucceeded;
  private long committedFailed;
  private long resumeRecord;
  private long resumeOffset;
  private long resumeLine;
  private long rateSampleNanos;
  private long rateSampleCount;
  private double rate;

  BatchJob(String id, SubmitJobRequest spec, String submittedBy, int recordsPerChunk, long createdMillis) {
    this.id = id;
    this.spec = spec;
    this.submittedBy = submittedBy;
    this.recordsPerChunk = recordsPerChunk;
    this.createdMillis = createdMillis;
    this.state = JobState.QUEUED;
  }

  /** A job read back from its stored record (after a restart): live counters start at the committed ones. */
  static BatchJob fromRecord(JobRecord record) {
    Job j = record.getJob();
    BatchJob job = new BatchJob(j.getId(), j.getSpec(), j.getSubmittedBy(), record.getRecordsPerChunk(),
        j.getCreatedUnixMillis());
    synchronized (job) {
      job.state = j.getState();
      job.message = j.getMessage();
      job.startedMillis = j.getStartedUnixMillis();
      job.finishedMillis = j.getFinishedUnixMillis();
      job.outputPartial = j.getOutputPartial();
      job.chunksCommitted = j.getChunksCommitted();
      job.recordsCommitted = j.getRecordsCommitted();
      job.committedSucceeded = j.getRecordsSucceeded();
      job.committedFailed = j.getRecordsFailed();
      job.resumeRecord = record.getResumeRecord();
      job.resumeOffset = record.getResumeOffset();
      job.resumeLine = record.getResumeLine();
      job.rate = j.getRecordsPerSecond();
    }
    job.succeeded.set(j.getRecordsSucceeded());
    job.failed.set(j.getRecordsFailed());
    job.recordsTotal = j.getRecordsTotal();
    job.bytesTotal = j.getInputBytesTotal();
    job.bytesRead = record.getResumeOffset();
    return job;
  }

  synchronized JobState state() {
    return state;
  }

  synchronized boolean isFinished() {
    return state == JobState.SUCCEEDED || state == JobState.FAILED || state == JobState.CANCELLED;
  }

  synchronized long chunksCommitted() {
    return chunksCommitted;
  }

  synchronized long resumeRecord() {
    return resumeRecord;
  }

  synchronized long resumeOffset() {
    return resumeOffset;
  }

  synchronized long resumeLine() {
    return resumeLine;
  }

  synchronized long recordsCommitted() {
    return recordsCommitted;
  }

  synchronized void markRunning(long nowMillis) {
    state = JobState.RUNNING;
    if (startedMillis == 0) {
      startedMillis = nowMillis;
    }
    rateSampleNanos = System.nanoTime();
    rateSampleCount = succeeded.get() + failed.get();
  }

  synchronized void markCancelling() {
    if (!isFinished()) {
      state = JobState.CANCELLING;
    }
  }

  /** Records one committed chunk and where a restart resumes after it. */
  synchronized void committed(int records, long chunkSucceeded, long chunkFailed, long nextRecord, long nextOffset,
      long nextLine) {
    chunksCommitted++;
    recordsCommitted += records;
    committedSucceeded += chunkSucceeded;
    committedFailed += chunkFailed;
    resumeRecord = nextRecord;
    resumeOffset = nextOffset;
    resumeLine = nextLine;
  }

  /** The final state; the live counters fall back to the committed ones (uncommitted work is not in the output). */
  synchronized void finish(JobState finalState, String why, boolean partial, long nowMillis) {
    long elapsed = Math.max(1, nowMillis - (startedMillis == 0 ? nowMillis : startedMillis));
    rate = recordsCommitted * 1000.0 / elapsed;
    state = finalState;
    message = why == null ? "" : why;
    outputPartial = partial;
    finishedMillis = nowMillis;
    succeeded.set(committedSucceeded);
    failed.set(committedFailed);
  }

  /** Records per second over the last few seconds (running), or the average (finished). */
  synchronized double recordsPerSecond() {
    if (state != JobState.RUNNING && state != JobState.CANCELLING) {
      return rate;
    }
    long now = System.nanoTime();
    long done = succeeded.get() + failed.get();
    long elapsed = now - rateSampleNanos;
    if (elapsed >= RATE_WINDOW_NANOS) {
      rate = (done - rateSampleCount) * 1e9 / elapsed;
      rateSampleNanos = now;
      rateSampleCount = done;
    } else if (rate == 0 && elapsed > 0) {
      return (done - rateSampleCount) * 1e9 / elapsed;
    }
    return rate;
  }

  /** Records read but not yet in a committed chunk: what a crash now would make the server redo. */
  long lagRecords() {
    return Math.max(0, succeeded.get() + failed.get() + inFlight.get() - recordsCommitted());
  }

  Job toProto() {
    double perSecond = recordsPerSecond();
    synchronized (this) {
      return Job.newBuilder()
          .setId(id)
          .setSpec(spec)
          .setState(state)
          .setRecordsSucceeded(succeeded.get())
          .setRecordsFailed(failed.get())
          .setRecordsTotal(recordsTotal)
          .setRecordsCommitted(recordsCommitted)
          .setChunksCommitted(chunksCommitted)
          .setRecordsPerSecond(perSecond)
          .setInputBytesRead(Math.min(bytesRead, bytesTotal > 0 ? bytesTotal : Long.MAX_VALUE))
          .setInputBytesTotal(bytesTotal)
          .setCreatedUnixMillis(createdMillis)
          .setStartedUnixMillis(startedMillis)
          .setFinishedUnixMillis(finishedMillis)
          .setMessage(message)
          .setSubmittedBy(submittedBy)
          .setOutputPartial(outputPartial)
          .build();
    }
  }

  /**
   * The record as it will be once one more chunk is committed, for storing it before the chunk is
   * reported as committed (a status never says more is committed than the store holds).
   */
  synchronized JobRecord recordAfterCommit(int records, long chunkSucceeded, long chunkFailed, long nextRecord,
      long nextOffset, long nextLine) {
    JobRecord now = toRecord();
    return now.toBuilder()
        .setJob(now.getJob().toBuilder()
            .setChunksCommitted(chunksCommitted + 1)
            .setRecordsCommitted(recordsCommitted + records)
            .setRecordsSucceeded(committedSucceeded + chunkSucceeded)
            .setRecordsFailed(committedFailed + chunkFailed)
            .setInputBytesRead(nextOffset))
        .setResumeRecord(nextRecord)
        .setResumeOffset(nextOffset)
        .setResumeLine(nextLine)
        .build();
  }

  /** What is stored: the committed counters only, so a restart never counts uncommitted records. */
  synchronized JobRecord toRecord() {
    Job live = toProto();
    return JobRecord.newBuilder()
        .setJob(live.toBuilder().setRecordsSucceeded(committedSucceeded).setRecordsFailed(committedFailed)
            .setInputBytesRead(resumeOffset))
        .setResumeRecord(resumeRecord)
        .setResumeOffset(resumeOffset)
        .setResumeLine(resumeLine)
        .setRecordsPerChunk(recordsPerChunk)
        .build();
  }
}
