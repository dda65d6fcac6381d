package io.quiver.server.jobs;

import io.quiver.core.InferenceException;
import io.quiver.server.http.RestInferCodec;

/**
 * One record read from a job's input: either a decoded request or the reason it could not be read.
 * Immutable; made on the job's reader thread.
 *
 * @param index 0-based position among the input's records (blank JSON lines are not records)
 * @param line 1-based line (JSON Lines) or row (Arrow) number, for the failures file
 * @param endOffset the input byte offset just after this record (JSON Lines; -1 for Arrow), where a
 *     restart after this record resumes reading
 * @param id the record's own request id, or one made from its position ("line-7", "row-7")
 * @param decoded the request, or null when {@code error} is set
 * @param error why the record cannot be run (malformed JSON, wrong field types...), or null
 */
record InputRecord(long index, long line, long endOffset, String id, RestInferCodec.Decoded decoded,
    InferenceException error) {}
