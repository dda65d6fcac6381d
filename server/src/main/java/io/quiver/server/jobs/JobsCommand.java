package io.quiver.server.jobs;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.quiver.proto.jobs.v1.BatchJobsGrpc;
import io.quiver.proto.jobs.v1.CancelJobRequest;
import io.quiver.proto.jobs.v1.ColumnList;
import io.quiver.proto.jobs.v1.GetJobRequest;
import io.quiver.proto.jobs.v1.InputFormat;
import io.quiver.proto.jobs.v1.Job;
import io.quiver.proto.jobs.v1.JobOptions;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.ListJobsRequest;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code quiver jobs submit|status|cancel|list}: a client of {@code quiver.jobs.v1.BatchJobs} on the
 * control port (8003 by default). Exit codes: 0 ok (and, with {@code --wait}, the job SUCCEEDED), 1 the
 * server refused or the waited-for job did not succeed, 2 usage errors.
 */
@Command(name = "jobs", mixinStandardHelpOptions = true,
    description = "Batch prediction jobs on a running Quiver server (docs/batch-jobs.md).",
    subcommands = {JobsCommand.Submit.class, JobsCommand.Status.class, JobsCommand.Cancel.class, JobsCommand.List.class})
public final class JobsCommand {
  @Option(names = "--control", defaultValue = "localhost:8003", paramLabel = "HOST:PORT",
      description = "The control API address (default: ${DEFAULT-VALUE}).")
  String control;

  @Option(names = "--api-key", paramLabel = "KEY", description = "API key (x-api-key) when the server requires one;"
      + " default: $QUIVER_API_KEY.", defaultValue = "${env:QUIVER_API_KEY}")
  String apiKey;

  @Option(names = "--timeout-s", defaultValue = "60", description = "Deadline of each call, in seconds (default: ${DEFAULT-VALUE}).")
  long timeoutSeconds;

  @Spec CommandLine.Model.CommandSpec spec;

  ManagedChannel channel() {
    int colon = control.lastIndexOf(':');
    if (colon < 0) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--control must be HOST:PORT; was " + control);
    }
    return NettyChannelBuilder.forAddress(control.substring(0, colon), Integer.parseInt(control.substring(colon + 1)))
        .usePlaintext().build();
  }

  /** One command over a fresh channel; a refusal prints "error: CODE: message" and returns 1. */
  abstract static class Sub implements Callable<Integer> {
    @ParentCommand JobsCommand parent;
    @Spec CommandLine.Model.CommandSpec spec;

    PrintWriter out() {
      return spec.commandLine().getOut();
    }

    BatchJobsGrpc.BatchJobsBlockingStub stub(ManagedChannel channel) {
      BatchJobsGrpc.BatchJobsBlockingStub stub = BatchJobsGrpc.newBlockingStub(channel)
          .withDeadlineAfter(parent.timeoutSeconds, TimeUnit.SECONDS);
      if (parent.apiKey != null && !parent.apiKey.isEmpty()) {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER), parent.apiKey);
        stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      }
      return stub;
    }

    @Override
    public Integer call() throws Exception {
      ManagedChannel channel = parent.channel();
      try {
        int code = run(channel);
        out().flush();
        return code;
      } catch (StatusRuntimeException e) {
        spec.commandLine().getErr().println("error: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
        spec.commandLine().getErr().flush();
        return 1;
      } finally {
        channel.shutdownNow();
        channel.awaitTermination(5, TimeUnit.SECONDS);
      }
    }

    abstract int run(ManagedChannel channel) throws Exception;

    /** Polls until the job finishes; prints progress lines; 0 when it SUCCEEDED. */
    int await(ManagedChannel channel, String id) throws InterruptedException {
      long lastPrint = 0;
      while (true) {
        Job job = stub(channel).getJob(GetJobRequest.newBuilder().setId(id).build());
        boolean finished = job.getState() == JobState.SUCCEEDED || job.getState() == JobState.FAILED
            || job.getState() == JobState.CANCELLED;
        if (finished || System.nanoTime() - lastPrint > TimeUnit.SECONDS.toNanos(5)) {
          print(out(), job);
          out().flush();
          lastPrint = System.nanoTime();
        }
        if (finished) {
          return job.getState() == JobState.SUCCEEDED ? 0 : 1;
        }
        Thread.sleep(500);
      }
    }
  }

  static void print(PrintWriter out, Job job) {
    out.printf(Locale.ROOT, "%s %-10s model=%s ok=%d failed=%d committed=%d%s %.0f rec/s%s%n", job.getId(), job.getState(),
        job.getSpec().getModel(), job.getRecordsSucceeded(), job.getRecordsFailed(), job.getRecordsCommitted(),
        job.getRecordsTotal() > 0 ? "/" + job.getRecordsTotal() : "", job.getRecordsPerSecond(),
        job.getMessage().isEmpty() ? "" : "  " + job.getMessage());
  }

  @Command(name = "submit", description = "Submit a job: score every record of INPUT with MODEL, write the results to OUTPUT.")
  static final class Submit extends Sub {
    @Parameters(paramLabel = "MODEL") String model;
    @Option(names = "--input", required = true, paramLabel = "URI", description = "/path, file:///path or s3://bucket/key.") String input;
    @Option(names = "--output", required = true, paramLabel = "URI", description = "A directory or s3://bucket/prefix with no job output yet.") String output;
    @Option(names = "--version", description = "A version number or traffic label (default: the model's routing).") String version;
    @Option(names = "--format", description = "jsonl or arrow (default: from the input's extension).") String format;
    @Option(names = "--concurrency", description = "Outstanding requests (default: the server's).") int concurrency;
    @Option(names = "--rate", description = "Records per second at most (default: no limit).") double rate;
    @Option(names = "--records-per-chunk", description = "Records per output chunk (default: the server's).") int perChunk;
    @Option(names = "--max-failed", description = "Fail the job after this many failed records (default: never).") long maxFailed;
    @Option(names = "--output-name", description = "An output to return (repeatable; default: all).") java.util.List<String> outputs = new ArrayList<>();
    @Option(names = "--columns", paramLabel = "INPUT=COL[,COL...]", description = "Arrow: the columns that fill an input (repeatable).")
    java.util.List<String> columns = new ArrayList<>();
    @Option(names = "--wait", description = "Wait until the job finishes, printing progress.") boolean wait;

    @Override
    int run(ManagedChannel channel) throws Exception {
      JobOptions.Builder options = JobOptions.newBuilder().setMaxConcurrency(concurrency).setMaxRecordsPerSecond(rate)
          .setRecordsPerChunk(perChunk).setMaxFailedRecords(maxFailed).addAllOutputs(outputs);
      for (String c : columns) {
        int eq = c.indexOf('=');
        if (eq <= 0) {
          throw new CommandLine.ParameterException(spec.commandLine(), "--columns must be INPUT=COL[,COL...]; was " + c);
        }
        options.putColumns(c.substring(0, eq), ColumnList.newBuilder().addAllNames(java.util.Arrays.asList(c.substring(eq + 1).split(","))).build());
      }
      InputFormat inputFormat = InputFormat.INPUT_FORMAT_UNSPECIFIED;
      if (format != null) {
        inputFormat = switch (format.toLowerCase(Locale.ROOT)) {
          case "jsonl" -> InputFormat.JSONL;
          case "arrow" -> InputFormat.ARROW_IPC;
          default -> throw new CommandLine.ParameterException(spec.commandLine(), "--format must be jsonl or arrow; was " + format);
        };
      }
      Job job = stub(channel).submitJob(SubmitJobRequest.newBuilder().setModel(model)
          .setModelVersion(version == null ? "" : version).setInputUri(input).setOutputUri(output)
          .setInputFormat(inputFormat).setOptions(options).build());
      print(out(), job);
      return wait ? await(channel, job.getId()) : 0;
    }
  }

  @Command(name = "status", description = "Show a job's state and progress.")
  static final class Status extends Sub {
    @Parameters(paramLabel = "JOB_ID") String id;
    @Option(names = "--wait", description = "Wait until the job finishes, printing progress.") boolean wait;

    @Override
    int run(ManagedChannel channel) throws Exception {
      if (wait) {
        return await(channel, id);
      }
      Job job = stub(channel).getJob(GetJobRequest.newBuilder().setId(id).build());
      print(out(), job);
      out().printf("  input %s (%d of %d bytes read) -> output %s; created %s by %s%n", job.getSpec().getInputUri(),
          job.getInputBytesRead(), job.getInputBytesTotal(), job.getSpec().getOutputUri(),
          Instant.ofEpochMilli(job.getCreatedUnixMillis()), job.getSubmittedBy());
      return 0;
    }
  }

  @Command(name = "cancel", description = "Cancel a job; its output keeps the committed chunks and says it is partial.")
  static final class Cancel extends Sub {
    @Parameters(paramLabel = "JOB_ID") String id;

    @Override
    int run(ManagedChannel channel) {
      print(out(), stub(channel).cancelJob(CancelJobRequest.newBuilder().setId(id).build()));
      return 0;
    }
  }

  @Command(name = "list", description = "List jobs, newest first.")
  static final class List extends Sub {
    @Option(names = "--state", description = "Only jobs in this state (repeatable).") java.util.List<JobState> states = new ArrayList<>();

    @Override
    int run(ManagedChannel channel) {
      for (Job job : stub(channel).listJobs(ListJobsRequest.newBuilder().addAllStates(states).build()).getJobsList()) {
        print(out(), job);
      }
      return 0;
    }
  }
}
