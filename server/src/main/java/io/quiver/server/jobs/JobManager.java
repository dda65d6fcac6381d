package io.quiver.server.jobs;

import com.fasterxml.jackson.core.JsonGenerator;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.core.ModelSignature;
import io.quiver.core.RequestValidator;
import io.quiver.core.Tensor;
import io.quiver.lifecycle.LoadedVersion;
import io.quiver.proto.jobs.v1.InputFormat;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobOptions;
import io.quiver.proto.jobs.v1.JobRecord;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.registry.WritableModelRepository;
import io.quiver.registry.s3.S3ModelRepository;
import io.quiver.registry.s3.S3Objects;
import io.quiver.server.CpuSharing;
import io.quiver.server.DataPlane;
import io.quiver.server.metrics.ServerMetrics;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The batch-job service behind both transports (gRPC {@code quiver.jobs.v1.BatchJobs} on the
 * control-plane port, REST {@code /v2/jobs}): checks and queues submissions, runs at most
 * {@link JobsOptions#maxRunningJobs()} jobs at once ({@link JobRunner}), stores every job's state and
 * committed progress beside the desired state ({@code .quiver-jobs/<id>.json} in the model
 * repository), and on {@link #start()} resumes the jobs a previous server left unfinished. Submit and
 * cancel write one audit line each (logger {@code io.quiver.control.audit}, with the control plane's).
 *
 * <p>Thread-safe. Every public method may block for storage I/O (S3 or disk): callers run them off
 * the event loops (the gRPC control server's handler pool, {@link #apiExecutor()} for REST).
 */
public final class JobManager implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(JobManager.class);
  static final Logger AUDIT = LoggerFactory.getLogger("io.quiver.control.audit");
  /** Where job records live in the repository's storage. */
  static final String STATE_DIR = ".quiver-jobs";
  static final String RESULTS_PREFIX = "results-";
  static final String FAILURES_PREFIX = "failures-";
  static final String MANIFEST = "manifest.json";
  private static final Pattern JOB_ID = Pattern.compile("job-[0-9a-f]{16}");
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .omittingInsignificantWhitespace();
  private static final int MAX_QUEUED_JOBS = 1000;

  private final DataPlane plane;
  private final CpuSharing.LoopScheduling loopScheduling;
  private final JobsOptions options;
  private final WritableModelRepository stateStore; // null: job state is kept in memory only
  private final S3Client s3Client; // null without S3 settings
  private final JobStorage storage;
  private final List<JobLocation> inputRoots = new ArrayList<>();
  private final List<JobLocation> outputRoots = new ArrayList<>();
  private final ConcurrentHashMap<String, BatchJob> jobs = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, JobRunner> runners = new ConcurrentHashMap<>();
  private final ThreadPoolExecutor jobThreads;
  private final ThreadPoolExecutor api;
  private final SecureRandom random = new SecureRandom();
  private volatile boolean closed;

  /**
   * @param stateStore where job records are stored (the model repository); null keeps them in memory
   *     only (a restart then forgets the jobs)
   */
  public JobManager(DataPlane plane, JobsOptions options, WritableModelRepository stateStore, ServerMetrics metrics,
      CpuSharing.LoopScheduling loopScheduling) {
    this.plane = plane;
    this.loopScheduling = loopScheduling;
    this.options = options;
    this.stateStore = stateStore;
    for (String root : options.inputRoots()) {
      inputRoots.add(JobLocation.parseRoot("--jobs-input-root", root));
    }
    for (String root : options.outputRoots()) {
      outputRoots.add(JobLocation.parseRoot("--jobs-output-root", root));
    }
    this.s3Client = options.s3() == null ? null : S3ModelRepository.buildClient(options.s3());
    this.storage = new JobStorage(s3Client == null ? null : new S3Objects(s3Client, options.s3()));
    AtomicInteger n = new AtomicInteger();
    this.jobThreads = new ThreadPoolExecutor(options.maxRunningJobs(), options.maxRunningJobs(), 0, TimeUnit.MILLISECONDS,
        new LinkedBlockingQueue<>(), r -> {
          Thread t = new Thread(r, "quiver-job-" + n.incrementAndGet());
          t.setDaemon(true);
          return t;
        });
    AtomicInteger m = new AtomicInteger();
    this.api = new ThreadPoolExecutor(2, 2, 0, TimeUnit.MILLISECONDS, new ArrayBlockingQueue<>(256), r -> {
      Thread t = new Thread(r, "quiver-jobs-api-" + m.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    // Started now, by the thread building the manager: a Linux thread inherits the CPU policy of the
    // thread that starts it, and the first user of a pool is an event loop (SCHED_BATCH where loops
    // share cores with compute). Job threads lower their own priority when they take a job.
    jobThreads.prestartAllCoreThreads();
    api.prestartAllCoreThreads();
    if (metrics != null) {
      new JobMetrics(metrics.registry(), this::allJobs);
    }
  }

  /** Where REST job requests run (they block on storage); bounded, so a flood is refused, not queued forever. */
  public Executor apiExecutor() {
    return api;
  }

  DataPlane plane() {
    return plane;
  }

  JobStorage storage() {
    return storage;
  }

  int threadNice() {
    return options.threadNice();
  }

  Collection<BatchJob> allJobs() {
    return jobs.values();
  }

  /**
   * Reads the stored job records and resumes every unfinished job from its last committed chunk
   * (records of jobs that were being cancelled are finished as CANCELLED). Call once the models are
   * loaded.
   */
  public void start() {
    if (stateStore == null) {
      log.warn("batch jobs: the model repository cannot store state; jobs will not survive a restart");
      return;
    }
    List<String> names;
    try {
      names = stateStore.listState(STATE_DIR + "/");
    } catch (InferenceException e) {
      log.warn("batch jobs: cannot list stored jobs in {}: {}", STATE_DIR, e.getMessage());
      return;
    }
    List<BatchJob> loaded = new ArrayList<>();
    for (String name : names) {
      if (!name.endsWith(".json")) {
        continue;
      }
      try {
        byte[] bytes = stateStore.readState(name).bytes();
        if (bytes == null) {
          continue;
        }
        JobRecord.Builder record = JobRecord.newBuilder();
        JsonFormat.parser().ignoringUnknownFields().merge(new String(bytes, StandardCharsets.UTF_8), record);
        loaded.add(BatchJob.fromRecord(record.build()));
      } catch (InvalidProtocolBufferException | InferenceException e) {
        log.warn("batch jobs: ignoring unreadable job record {}: {}", name, e.getMessage());
      }
    }
    loaded.sort(Comparator.comparingLong((BatchJob j) -> j.createdMillis));
    int resumed = 0;
    for (BatchJob job : loaded) {
      jobs.put(job.id, job);
      JobState state = job.state();
      if (state == JobState.CANCELLING) {
        finalizeJob(job, JobState.CANCELLED, "cancelled: the output holds the first " + job.recordsCommitted()
            + " records of the input (" + job.chunksCommitted() + " chunk(s)); later records were not written", true);
      } else if (state == JobState.QUEUED || state == JobState.RUNNING) {
        schedule(job, true);
        resumed++;
      }
    }
    forgetOldJobs();
    if (!loaded.isEmpty()) {
      log.info("batch jobs: {} stored job(s) read, {} resumed", loaded.size(), resumed);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The API

  /**
   * Checks a submission completely (model, URIs under the configured roots, options, the input's schema
   * against the model's inputs), stores it and queues it.
   *
   * @param principal who asks (for the record and the audit line)
   * @param peer the caller's address (audit)
   * @throws InferenceException INVALID_ARGUMENT (naming the field), NOT_FOUND, UNAVAILABLE,
   *     ALREADY_EXISTS (output already used), FAILED_PRECONDITION (jobs not configured)
   * @throws InferenceException PERMISSION_DENIED for a URI outside the configured roots
   */
  public Job submit(SubmitJobRequest request, String principal, String peer) {
    long t0 = System.nanoTime();
    try {
      BatchJob job = checkAndCreate(request, principal);
      persist(job);
      jobs.put(job.id, job);
      schedule(job, false);
      audit("SubmitJob", job.id, request, principal, peer, "OK", t0);
      forgetOldJobs();
      return job.toProto();
    } catch (RuntimeException e) {
      audit("SubmitJob", "-", request, principal, peer, outcome(e), t0);
      throw e;
    }
  }

  public Job get(String id) {
    return find(id).toProto();
  }

  /** Jobs, newest first; only those in {@code states} when it is not empty. */
  public List<Job> list(Set<JobState> states) {
    List<BatchJob> all = new ArrayList<>(jobs.values());
    all.sort(Comparator.comparingLong((BatchJob j) -> j.createdMillis).reversed());
    List<Job> out = new ArrayList<>();
    for (BatchJob j : all) {
      if (states.isEmpty() || states.contains(j.state())) {
        out.add(j.toProto());
      }
    }
    return out;
  }

  /** Cancels a queued or running job; a finished one is returned unchanged. */
  public Job cancel(String id, String principal, String peer) {
    long t0 = System.nanoTime();
    BatchJob job;
    try {
      job = find(id);
    } catch (RuntimeException e) {
      audit("CancelJob", id, null, principal, peer, outcome(e), t0);
      throw e;
    }
    synchronized (job) {
      if (!job.isFinished()) {
        job.cancelRequested = true;
        job.markCancelling();
      }
    }
    if (!job.isFinished()) {
      persist(job);
      JobRunner runner = runners.get(job.id);
      if (runner != null) {
        runner.cancelled();
      } else if (jobThreads.remove(queuedTask(job))) {
        // never started: nothing was written
        finalizeJob(job, JobState.CANCELLED, "cancelled before it started; nothing was written", true);
      }
      // A job whose task is queued but not found above starts, sees the flag and finishes as CANCELLED.
    }
    audit("CancelJob", job.id, null, principal, peer, "OK", t0);
    return job.toProto();
  }

  private BatchJob find(String id) {
    if (id == null || !JOB_ID.matcher(id).matches()) {
      throw InferenceException.invalidField("id", "job id must look like job-0123456789abcdef; was '%s'",
          id == null ? "" : id.length() > 40 ? id.substring(0, 40) + "..." : id);
    }
    BatchJob job = jobs.get(id);
    if (job == null) {
      throw InferenceException.notFound("no job '%s' on this server", id);
    }
    return job;
  }

  // ---------------------------------------------------------------------------------------------
  // Checking a submission

  private BatchJob checkAndCreate(SubmitJobRequest request, String principal) {
    if (inputRoots.isEmpty() || outputRoots.isEmpty()) {
      throw InferenceException.failedPrecondition("batch jobs are off on this server: start it with --jobs-input-root"
          + " and --jobs-output-root (directories or s3://bucket/prefix that jobs may read and write)");
    }
    if (request.getModel().isEmpty()) {
      throw InferenceException.invalidField("model", "model is required");
    }
    try {
      DataPlane.checkModelReference(request.getModel(), request.getModelVersion());
    } catch (InferenceException e) {
      String field = "model_name".equals(e.field()) ? "model" : e.field();
      throw new InferenceException(e.code(), e.getMessage(), field, 0L, null);
    }
    JobLocation input = JobLocation.parse("input_uri", request.getInputUri());
    JobLocation output = JobLocation.parse("output_uri", request.getOutputUri()).asPrefix();
    requireUnder("input_uri", input, inputRoots, "--jobs-input-root");
    requireUnder("output_uri", output, outputRoots, "--jobs-output-root");
    JobOptions o = request.getOptions();
    if (o.getMaxConcurrency() > options.maxConcurrency()) {
      throw InferenceException.invalidField("options.max_concurrency", "options.max_concurrency must be at most %d; was %d",
          options.maxConcurrency(), o.getMaxConcurrency());
    }
    if (o.getRecordsPerChunk() > options.maxRecordsPerChunk()) {
      throw InferenceException.invalidField("options.records_per_chunk", "options.records_per_chunk must be at most %d; was %d",
          options.maxRecordsPerChunk(), o.getRecordsPerChunk());
    }
    if (!(o.getMaxRecordsPerSecond() >= 0) || Double.isInfinite(o.getMaxRecordsPerSecond())) {
      throw InferenceException.invalidField("options.max_records_per_second",
          "options.max_records_per_second must be a finite number >= 0 (0 = no limit); was %s", o.getMaxRecordsPerSecond());
    }
    InputFormat format = formatOf(request, input);
    for (BatchJob other : jobs.values()) {
      if (!other.isFinished() && JobLocation.parse("output_uri", other.spec.getOutputUri()).asPrefix().equals(output)) {
        throw new InferenceException(ErrorCode.ALREADY_EXISTS, "output_uri " + output + " is the output of job "
            + other.id + ", which has not finished", "output_uri", 0L, null);
      }
    }
    long size = storage.size("input_uri", input);
    if (size < 0) {
      throw InferenceException.notFound("input_uri: %s does not exist", input);
    }
    for (String name : storage.list(output)) {
      if (isJobOutput(name)) {
        throw new InferenceException(ErrorCode.ALREADY_EXISTS, "output_uri " + output + " already holds job output ('"
            + name + "'); choose an empty location", "output_uri", 0L, null);
      }
    }
    SubmitJobRequest spec = request.toBuilder().setInputFormat(format).build();
    checkSchema(spec, input);
    int perChunk = o.getRecordsPerChunk() > 0 ? o.getRecordsPerChunk() : options.defaultRecordsPerChunk();
    BatchJob job = new BatchJob(newId(), spec, principal, perChunk, System.currentTimeMillis());
    job.bytesTotal = size;
    return job;
  }

  private static void requireUnder(String field, JobLocation location, List<JobLocation> roots, String flag) {
    for (JobLocation root : roots) {
      if (location.isUnder(root)) {
        return;
      }
    }
    throw InferenceException.permissionDenied("%s %s is outside the locations this server lets jobs use (%s)", field,
        location, flag);
  }

  private static InputFormat formatOf(SubmitJobRequest request, JobLocation input) {
    InputFormat format = request.getInputFormat();
    if (format == InputFormat.UNRECOGNIZED) {
      throw InferenceException.invalidField("input_format", "input_format is not one of JSONL, ARROW_IPC");
    }
    if (format != InputFormat.INPUT_FORMAT_UNSPECIFIED) {
      return format;
    }
    String name = input.name().toLowerCase(Locale.ROOT);
    if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) {
      return InputFormat.JSONL;
    }
    if (name.endsWith(".arrow") || name.endsWith(".arrows") || name.endsWith(".feather") || name.endsWith(".ipc")) {
      return InputFormat.ARROW_IPC;
    }
    throw InferenceException.invalidField("input_format", "input_format is not given and '%s' has no known extension"
        + " (.jsonl, .ndjson, .arrow, .arrows, .feather, .ipc)", input.name());
  }

  /**
   * Refuses a job that could not run: the model must be served now, the requested outputs must exist,
   * and the input must fit the model's inputs (Arrow: the schema binds to the inputs; JSON Lines: the
   * first record passes the same validation an online request does).
   */
  private void checkSchema(SubmitJobRequest spec, JobLocation input) {
    LoadedVersion version = plane.models().acquire(spec.getModel(), spec.getModelVersion());
    try {
      ModelSignature signature = version.signature();
      RequestValidator.resolveOutputs(version.name(), signature, spec.getOptions().getOutputsList());
      try (RecordSource source = openSource(spec, input, signature, 0, 0, 0)) {
        if (spec.getInputFormat() == InputFormat.JSONL) {
          InputRecord first = source.next();
          if (first == null) {
            throw InferenceException.invalidField("input_uri", "input_uri %s holds no record", input);
          }
          if (first.error() != null) {
            throw InferenceException.invalidField("input_uri", "the first record of %s (line %d) cannot be read: %s", input,
                first.line(), first.error().getMessage());
          }
          try {
            RequestValidator.validateInputs(version.name(), signature, first.decoded().inputs(),
                new Tensor[signature.inputs().size()]);
            List<String> outputs = first.decoded().outputs().isEmpty() ? spec.getOptions().getOutputsList()
                : first.decoded().outputs();
            RequestValidator.resolveOutputs(version.name(), signature, outputs);
          } catch (InferenceException e) {
            throw InferenceException.invalidField("input_uri", "the first record of %s (line %d) does not fit model '%s': %s",
                input, first.line(), version.name(), e.getMessage());
          }
        }
      } catch (IOException e) {
        throw InferenceException.unavailable("cannot read input_uri %s: %s", input, e.getMessage());
      }
    } finally {
      version.release();
    }
  }

  private String newId() {
    byte[] bytes = new byte[8];
    random.nextBytes(bytes);
    return "job-" + HexFormat.of().formatHex(bytes);
  }

  static boolean isJobOutput(String name) {
    return name.equals(MANIFEST) || name.startsWith(RESULTS_PREFIX) || name.startsWith(FAILURES_PREFIX);
  }

  // ---------------------------------------------------------------------------------------------
  // Running

  /** The task a queued job runs as; equal for the same job, so a cancel can take it off the queue. */
  private record JobTask(JobManager manager, BatchJob job, boolean resumed) implements Runnable {
    @Override
    public void run() {
      manager.runJob(job, resumed);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof JobTask t && t.job == job;
    }

    @Override
    public int hashCode() {
      return System.identityHashCode(job);
    }
  }

  private Runnable queuedTask(BatchJob job) {
    return new JobTask(this, job, false);
  }

  private void schedule(BatchJob job, boolean resumed) {
    if (jobThreads.getQueue().size() >= MAX_QUEUED_JOBS) {
      throw InferenceException.resourceExhausted(TimeUnit.SECONDS.toNanos(10),
          "%d jobs are already waiting to run; retry later", MAX_QUEUED_JOBS);
    }
    try {
      jobThreads.execute(new JobTask(this, job, resumed));
    } catch (RejectedExecutionException e) {
      throw InferenceException.unavailable("the server is shutting down");
    }
  }

  private void runJob(BatchJob job, boolean resumed) {
    if (closed) {
      return;
    }
    if (job.cancelRequested) {
      finalizeJob(job, JobState.CANCELLED, "cancelled before it started; nothing was written", true);
      return;
    }
    SubmitJobRequest spec = job.spec;
    JobOptions o = spec.getOptions();
    JobRunner runner;
    try {
      JobLocation input = JobLocation.parse("input_uri", spec.getInputUri());
      JobLocation output = JobLocation.parse("output_uri", spec.getOutputUri()).asPrefix();
      // A resumed job obeys today's roots, not those of the server that accepted it.
      requireUnder("input_uri", input, inputRoots, "--jobs-input-root");
      requireUnder("output_uri", output, outputRoots, "--jobs-output-root");
      int concurrency = o.getMaxConcurrency() > 0 ? (int) Math.min(o.getMaxConcurrency(), options.maxConcurrency())
          : options.defaultConcurrency();
      runner = new JobRunner(this, job, input, output, concurrency, o.getMaxRecordsPerSecond(), o.getMaxFailedRecords(),
          resumed || job.chunksCommitted() > 0);
    } catch (RuntimeException e) {
      finalizeJob(job, JobState.FAILED, "cannot start: " + e.getMessage(), true);
      return;
    }
    runners.put(job.id, runner);
    loopScheduling.backgroundWorkStarted(); // online requests must not wait for the job's batches' time slices
    try {
      runner.run();
    } catch (RuntimeException e) {
      log.error("job {} failed", job.id, e);
      finalizeJob(job, JobState.FAILED, "internal error: " + e.getMessage(), true);
    } finally {
      loopScheduling.backgroundWorkEnded();
      runners.remove(job.id);
    }
  }

  /** Opens a job's input at its resume point, in its format. Job reader thread. */
  RecordSource openSource(BatchJob job, JobLocation input, long firstRecord, long offset, long line) throws IOException {
    LoadedVersion version = plane.models().acquire(job.spec.getModel(), job.spec.getModelVersion());
    ModelSignature signature;
    try {
      signature = version.signature();
    } finally {
      version.release();
    }
    return openSource(job.spec, input, signature, firstRecord, offset, line);
  }

  private RecordSource openSource(SubmitJobRequest spec, JobLocation input, ModelSignature signature, long firstRecord,
      long offset, long line) throws IOException {
    if (spec.getInputFormat() == InputFormat.ARROW_IPC) {
      InputStream in = storage.open(input, 0);
      return ArrowRecordSource.open(in, signature, spec.getOptions().getColumnsMap(), firstRecord);
    }
    InputStream in = storage.open(input, offset);
    return new JsonlRecordSource(in, offset, firstRecord, line, options.maxRecordBytes());
  }

  /**
   * Stores a job's record (state and committed progress).
   *
   * @throws InferenceException when the store cannot be written (logged here)
   */
  void persist(BatchJob job) {
    persist(job, job.toRecord());
  }

  void persist(BatchJob job, JobRecord record) {
    if (stateStore == null) {
      return;
    }
    try {
      stateStore.writeState(STATE_DIR + "/" + job.id + ".json", PRINTER.print(record).getBytes(StandardCharsets.UTF_8));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    } catch (InferenceException e) {
      log.warn("job {}: cannot store its state: {}", job.id, e.getMessage());
      throw e;
    }
  }

  /**
   * Writes the output's manifest (final, complete or partial), removes chunk files a restarted attempt
   * left beyond the committed ones, and stores the final state.
   */
  void finalizeJob(BatchJob job, JobState state, String message, boolean partial) {
    String why = message;
    try {
      JobLocation output = JobLocation.parse("output_uri", job.spec.getOutputUri()).asPrefix();
      long chunks = job.chunksCommitted();
      List<String> results = new ArrayList<>();
      List<String> failures = new ArrayList<>();
      for (String name : storage.list(output)) {
        long index = chunkIndex(name);
        if (index < 0) {
          continue;
        }
        if (index >= chunks) {
          storage.delete(output, name); // written by an attempt that did not get to commit it
        } else if (name.startsWith(RESULTS_PREFIX)) {
          results.add(name);
        } else {
          failures.add(name);
        }
      }
      results.sort(null);
      failures.sort(null);
      storage.write(output, MANIFEST, manifest(job, state, message, partial, results, failures));
    } catch (RuntimeException e) {
      log.warn("job {}: cannot write the output manifest: {}", job.id, e.getMessage());
      why = (message.isEmpty() ? "" : message + "; ") + "the output manifest could not be written: " + e.getMessage();
      if (state == JobState.SUCCEEDED) {
        state = JobState.FAILED;
        partial = true;
      }
    }
    job.finish(state, why, partial, System.currentTimeMillis());
    try {
      persist(job);
    } catch (RuntimeException e) {
      // logged by persist; the in-memory state is final anyway
    }
    log.info("job {} {}: {} record(s) committed ({} succeeded, {} failed){}", job.id, state, job.recordsCommitted(),
        job.succeeded.get(), job.failed.get(), why.isEmpty() ? "" : ": " + why);
  }

  /** The chunk index of a results or failures file name, or -1 for any other name. */
  static long chunkIndex(String name) {
    String rest;
    if (name.startsWith(RESULTS_PREFIX)) {
      rest = name.substring(RESULTS_PREFIX.length());
    } else if (name.startsWith(FAILURES_PREFIX)) {
      rest = name.substring(FAILURES_PREFIX.length());
    } else {
      return -1;
    }
    if (!rest.endsWith(".jsonl")) {
      return -1;
    }
    try {
      return Long.parseLong(rest.substring(0, rest.length() - ".jsonl".length()));
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  private static byte[] manifest(BatchJob job, JobState state, String message, boolean partial, List<String> results,
      List<String> failures) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator gen = io.quiver.server.http.RestInferCodec.JSON.getFactory().createGenerator(out)) {
      gen.useDefaultPrettyPrinter();
      gen.writeStartObject();
      gen.writeStringField("job_id", job.id);
      gen.writeStringField("model", job.spec.getModel());
      gen.writeStringField("input_uri", job.spec.getInputUri());
      gen.writeStringField("state", state.name());
      gen.writeBooleanField("complete", !partial);
      gen.writeNumberField("records_committed", job.recordsCommitted());
      gen.writeNumberField("chunks", job.chunksCommitted());
      gen.writeNumberField("records_per_chunk", job.recordsPerChunk);
      gen.writeArrayFieldStart("results");
      for (String r : results) {
        gen.writeString(r);
      }
      gen.writeEndArray();
      gen.writeArrayFieldStart("failures");
      for (String f : failures) {
        gen.writeString(f);
      }
      gen.writeEndArray();
      gen.writeStringField("message", message);
      gen.writeStringField("finished", Instant.now().toString());
      gen.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    out.write('\n');
    return out.toByteArray();
  }

  /** Keeps at most the configured number of finished jobs in memory (their records stay stored). */
  private void forgetOldJobs() {
    int excess = jobs.size() - options.retainedJobs();
    if (excess <= 0) {
      return;
    }
    List<BatchJob> finished = new ArrayList<>();
    for (BatchJob j : jobs.values()) {
      if (j.isFinished()) {
        finished.add(j);
      }
    }
    finished.sort(Comparator.comparingLong((BatchJob j) -> j.createdMillis));
    for (int i = 0; i < excess && i < finished.size(); i++) {
      jobs.remove(finished.get(i).id);
    }
  }

  private static String outcome(RuntimeException e) {
    if (e instanceof InferenceException ie) {
      return ie.code().name() + " (" + ie.getMessage() + ")";
    }
    return "INTERNAL (" + e + ")";
  }

  private static void audit(String op, String id, SubmitJobRequest request, String principal, String peer, String result,
      long t0) {
    String what = request == null ? "" : "model=" + request.getModel() + " version=" + request.getModelVersion()
        + " input=" + request.getInputUri() + " output=" + request.getOutputUri();
    AUDIT.atInfo()
        .addKeyValue("event", "job_" + op)
        .addKeyValue("principal", principal)
        .addKeyValue("peer", peer)
        .addKeyValue("job", id)
        .log("who={} principal={} op={} job={} args=[{}] when={} result={} duration_ms={}", peer, principal, op, id, what,
            Instant.now(), result, (System.nanoTime() - t0) / 1_000_000);
  }

  /**
   * Stops the running jobs without finishing them (their stored state says RUNNING, so the next start
   * resumes them from their last committed chunk). Idempotent.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (JobRunner r : runners.values()) {
      r.stop();
    }
    jobThreads.shutdown(); // no interrupt: a job finishing now completes its writes; queued ones see `closed` and return
    api.shutdownNow();
    try {
      jobThreads.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (s3Client != null) {
      s3Client.close();
    }
  }
}
