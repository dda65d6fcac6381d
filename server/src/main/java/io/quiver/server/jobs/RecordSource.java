package io.quiver.server.jobs;

import java.io.IOException;

/**
 * A job's input as a sequence of records, read on the job's reader thread only (not thread-safe).
 * Holds at most one record (and one Arrow record batch) in memory, whatever the input's size.
 */
interface RecordSource extends AutoCloseable {
  /** The next record, or null at the end of the input. Blocks for I/O. */
  InputRecord next() throws IOException;

  /** Input bytes consumed so far, counted from the start of the input (not of this reading). */
  long bytesRead();

  @Override
  void close() throws IOException;
}
