package io.quiver.server.jobs;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import io.quiver.core.ErrorCode;
import io.quiver.core.InferenceException;
import io.quiver.proto.jobs.v1.JobState;
import io.quiver.proto.jobs.v1.ListJobsResponse;
import io.quiver.proto.jobs.v1.SubmitJobRequest;
import io.quiver.server.http.RestRoutes;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executor;

/**
 * REST {@code /v2/jobs}: the BatchJobs messages in proto3 JSON (field names as in the .proto, as
 * Envoy's transcoder would map them), on the REST port.
 *
 * <pre>
 * POST /v2/jobs                  SubmitJobRequest  -> Job
 * GET  /v2/jobs[?state=RUNNING]                    -> {"jobs": [Job...]}
 * GET  /v2/jobs/{id}                               -> Job
 * POST /v2/jobs/{id}/cancel                        -> Job
 * </pre>
 * Thread-safe; runs on the manager's API executor.
 */
public final class JobsRestRoutes implements RestRoutes {
  /** Largest submission body (a job request is small; options included). */
  static final int MAX_BODY_BYTES = 1 << 20;
  private static final JsonFormat.Printer PRINTER = JsonFormat.printer().preservingProtoFieldNames()
      .includingDefaultValueFields().omittingInsignificantWhitespace();

  private final JobManager manager;

  public JobsRestRoutes(JobManager manager) {
    this.manager = manager;
  }

  @Override
  public Executor executor() {
    return manager.apiExecutor();
  }

  @Override
  public byte[] handle(String method, List<String> segments, Map<String, List<String>> query, byte[] body,
      String principal, String peer) {
    if (segments.isEmpty()) {
      if (method.equals("POST")) {
        return print(manager.submit(parse(body), principal, peer));
      }
      requireMethod(method, "GET", "/v2/jobs");
      Set<JobState> states = EnumSet.noneOf(JobState.class);
      for (String s : query.getOrDefault("state", List.of())) {
        try {
          JobState state = JobState.valueOf(s.toUpperCase(Locale.ROOT));
          if (state == JobState.UNRECOGNIZED || state == JobState.JOB_STATE_UNSPECIFIED) {
            throw new IllegalArgumentException();
          }
          states.add(state);
        } catch (IllegalArgumentException e) {
          throw InferenceException.invalidField("state", "state must be one of QUEUED, RUNNING, SUCCEEDED, FAILED,"
              + " CANCELLING, CANCELLED; was '%s'", s.length() > 40 ? s.substring(0, 40) : s);
        }
      }
      return print(ListJobsResponse.newBuilder().addAllJobs(manager.list(states)).build());
    }
    String id = segments.get(0);
    if (segments.size() == 1) {
      requireMethod(method, "GET", "/v2/jobs/{id}");
      return print(manager.get(id));
    }
    if (segments.size() == 2 && segments.get(1).equals("cancel")) {
      requireMethod(method, "POST", "/v2/jobs/{id}/cancel");
      return print(manager.cancel(id, principal, peer));
    }
    throw InferenceException.notFound("no such path: /v2/jobs/%s", String.join("/", segments));
  }

  private static void requireMethod(String method, String expected, String path) {
    if (!method.equals(expected)) {
      throw new InferenceException(ErrorCode.UNIMPLEMENTED, "method " + method + " is not supported on " + path
          + "; use " + expected);
    }
  }

  private static SubmitJobRequest parse(byte[] body) {
    if (body.length == 0) {
      throw InferenceException.invalidField("", "the request body is empty; it must be a JSON job request");
    }
    if (body.length > MAX_BODY_BYTES) {
      throw InferenceException.invalidField("", "the job request is %d bytes; at most %d", body.length, MAX_BODY_BYTES);
    }
    SubmitJobRequest.Builder request = SubmitJobRequest.newBuilder();
    try {
      JsonFormat.parser().merge(new String(body, StandardCharsets.UTF_8), request);
    } catch (InvalidProtocolBufferException e) {
      throw InferenceException.invalidField("", "the job request does not parse: %s", e.getMessage());
    }
    return request.build();
  }

  private static byte[] print(Message message) {
    try {
      return PRINTER.print(message).getBytes(StandardCharsets.UTF_8);
    } catch (InvalidProtocolBufferException e) {
      throw InferenceException.internal("cannot print a job as JSON", e);
    }
  }
}
