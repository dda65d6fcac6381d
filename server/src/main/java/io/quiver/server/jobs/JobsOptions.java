package io.quiver.server.jobs;

import io.quiver.registry.s3.S3RepositoryOptions;
import java.util.List;

/**
 * Settings of the batch-job service, as data (the command line fills them in; tests build them).
 *
 * @param inputRoots where inputs may be read from: directories, or {@code s3://bucket[/prefix]};
 *     empty = every submission is refused
 * @param outputRoots where outputs may be written, in the same forms
 * @param s3 connection settings for {@code s3://} inputs and outputs (the repository's S3 flags; the
 *     URL in it is not used); null = S3 locations are refused
 * @param maxRunningJobs jobs that run at once; more wait, QUEUED, in submission order
 * @param defaultConcurrency outstanding requests per job when the job does not say
 * @param maxConcurrency the most outstanding requests a job may ask for
 * @param defaultRecordsPerChunk records per committed output chunk when the job does not say
 * @param maxRecordsPerChunk the largest chunk a job may ask for (chunks are held in memory until committed)
 * @param maxRecordBytes the longest input record (one JSON line) accepted
 * @param retainedJobs finished jobs kept in the list (the oldest finished ones are forgotten first)
 * @param threadNice the Linux nice value given to each job's own threads (reading, parsing, encoding,
 *     writing), so the CPU they use is what online work leaves idle; 0 = leave them as they are
 */
public record JobsOptions(List<String> inputRoots, List<String> outputRoots, S3RepositoryOptions s3,
    int maxRunningJobs, int defaultConcurrency, int maxConcurrency, int defaultRecordsPerChunk,
    int maxRecordsPerChunk, int maxRecordBytes, int retainedJobs, int threadNice) {
  public static final int DEFAULT_MAX_RUNNING_JOBS = 2;
  /** Enough requests to fill a few batches of a typical model while the last ones complete. */
  public static final int DEFAULT_CONCURRENCY = 64;
  public static final int MAX_CONCURRENCY = 1024;
  /** 10,000 records: a restart repeats at most this much work; a chunk of small results is a few MiB. */
  public static final int DEFAULT_RECORDS_PER_CHUNK = 10_000;
  public static final int MAX_RECORDS_PER_CHUNK = 1_000_000;
  /** As the REST body limit: a record is one REST request. */
  public static final int DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024;
  public static final int DEFAULT_RETAINED_JOBS = 1000;
  /** The lowest CPU priority: job threads run when online work leaves a core idle. */
  public static final int DEFAULT_THREAD_NICE = 19;

  public JobsOptions {
    inputRoots = List.copyOf(inputRoots);
    outputRoots = List.copyOf(outputRoots);
    check(maxRunningJobs >= 1, "maxRunningJobs must be >= 1; was " + maxRunningJobs);
    check(maxConcurrency >= 1, "maxConcurrency must be >= 1; was " + maxConcurrency);
    check(defaultConcurrency >= 1 && defaultConcurrency <= maxConcurrency,
        "defaultConcurrency must be in [1, maxConcurrency]; was " + defaultConcurrency);
    check(maxRecordsPerChunk >= 1, "maxRecordsPerChunk must be >= 1; was " + maxRecordsPerChunk);
    check(defaultRecordsPerChunk >= 1 && defaultRecordsPerChunk <= maxRecordsPerChunk,
        "defaultRecordsPerChunk must be in [1, maxRecordsPerChunk]; was " + defaultRecordsPerChunk);
    check(maxRecordBytes >= 1, "maxRecordBytes must be >= 1; was " + maxRecordBytes);
    check(retainedJobs >= 1, "retainedJobs must be >= 1; was " + retainedJobs);
    check(threadNice >= 0 && threadNice <= 19, "threadNice must be in [0, 19]; was " + threadNice);
    for (String root : inputRoots) {
      JobLocation.parseRoot("--jobs-input-root", root);
    }
    for (String root : outputRoots) {
      JobLocation.parseRoot("--jobs-output-root", root);
    }
  }

  private static void check(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }

  /** Jobs allowed under these roots, with every other setting at its default. */
  public static JobsOptions of(List<String> inputRoots, List<String> outputRoots) {
    return new JobsOptions(inputRoots, outputRoots, null, DEFAULT_MAX_RUNNING_JOBS, DEFAULT_CONCURRENCY,
        MAX_CONCURRENCY, DEFAULT_RECORDS_PER_CHUNK, MAX_RECORDS_PER_CHUNK, DEFAULT_MAX_RECORD_BYTES,
        DEFAULT_RETAINED_JOBS, DEFAULT_THREAD_NICE);
  }

  /** No roots: the service answers, and refuses every submission saying which flags are missing. */
  public static JobsOptions none() {
    return of(List.of(), List.of());
  }

  public JobsOptions withThreadNice(int nice) {
    return new JobsOptions(inputRoots, outputRoots, s3, maxRunningJobs, defaultConcurrency, maxConcurrency,
        defaultRecordsPerChunk, maxRecordsPerChunk, maxRecordBytes, retainedJobs, nice);
  }

  public JobsOptions withS3(S3RepositoryOptions options) {
    return new JobsOptions(inputRoots, outputRoots, options, maxRunningJobs, defaultConcurrency, maxConcurrency,
        defaultRecordsPerChunk, maxRecordsPerChunk, maxRecordBytes, retainedJobs, threadNice);
  }

  public JobsOptions withMaxRunningJobs(int n) {
    return new JobsOptions(inputRoots, outputRoots, s3, n, defaultConcurrency, maxConcurrency,
        defaultRecordsPerChunk, maxRecordsPerChunk, maxRecordBytes, retainedJobs, threadNice);
  }

  public JobsOptions withDefaultConcurrency(int n) {
    return new JobsOptions(inputRoots, outputRoots, s3, maxRunningJobs, n, Math.max(n, maxConcurrency),
        defaultRecordsPerChunk, maxRecordsPerChunk, maxRecordBytes, retainedJobs, threadNice);
  }

  public JobsOptions withDefaultRecordsPerChunk(int n) {
    return new JobsOptions(inputRoots, outputRoots, s3, maxRunningJobs, defaultConcurrency, maxConcurrency, n,
        Math.max(n, maxRecordsPerChunk), maxRecordBytes, retainedJobs, threadNice);
  }
}
