package io.quiver.server.jobs;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonParser;
import io.quiver.core.InferenceException;
import io.quiver.server.http.RestInferCodec;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * JSON Lines of KServe v2 REST inference requests, one per line ('\n' or "\r\n" ends a line; blank
 * lines are skipped), each decoded by the REST codec exactly as {@code POST /v2/models/m/infer} would
 * decode it (there is no binary section, so {@code binary_data_size} inputs fail). A line longer than
 * the record limit is a failed record and is skipped without being held in memory. Reading resumes at
 * any record boundary from its byte offset and line number.
 */
final class JsonlRecordSource implements RecordSource {
  private static final ByteBuffer NO_BINARY = ByteBuffer.allocate(0);

  private final CountingInputStream counting;
  private final int maxRecordBytes;
  private final byte[] buffer = new byte[1 << 16];
  private int bufferPos;
  private int bufferLimit;
  private byte[] line = new byte[8192];
  private long index;
  private long lineNumber;

  /**
   * @param in the input, positioned at {@code offset}
   * @param offset byte offset of {@code in} in the input
   * @param firstIndex index of the next record
   * @param linesBefore lines before {@code offset}
   */
  JsonlRecordSource(InputStream in, long offset, long firstIndex, long linesBefore, int maxRecordBytes) {
    this.counting = new CountingInputStream(in, offset);
    this.startOffset = offset;
    this.index = firstIndex;
    this.lineNumber = linesBefore;
    this.maxRecordBytes = maxRecordBytes;
  }

  private long position; // bytes consumed by this reader (the stream itself has read ahead into the buffer)
  private final long startOffset;

  /** The next byte, or -1 at the end. */
  private int read() throws IOException {
    if (bufferPos == bufferLimit) {
      int n = counting.read(buffer, 0, buffer.length);
      if (n <= 0) {
        return -1;
      }
      bufferPos = 0;
      bufferLimit = n;
    }
    return buffer[bufferPos++] & 0xff;
  }

  @Override
  public InputRecord next() throws IOException {
    while (true) {
      int length = 0;
      boolean tooLong = false;
      boolean any = false;
      int b;
      while ((b = read()) >= 0) {
        any = true;
        position++;
        if (b == '\n') {
          break;
        }
        if (length < maxRecordBytes) {
          if (length == line.length) {
            line = Arrays.copyOf(line, (int) Math.min((long) maxRecordBytes, 2L * line.length));
          }
          line[length++] = (byte) b;
        } else {
          tooLong = true;
        }
      }
      if (!any) {
        return null;
      }
      lineNumber++;
      if (length > 0 && line[length - 1] == '\r') {
        length--;
      }
      if (!tooLong && isBlank(line, length)) {
        continue;
      }
      long end = startOffset + position;
      long i = index++;
      if (tooLong) {
        return new InputRecord(i, lineNumber, end, fallbackId(), null, InferenceException.invalidField("",
            "line %d is longer than the record limit of %d bytes", lineNumber, maxRecordBytes));
      }
      return decode(i, end, length);
    }
  }

  /** The id of a record that has none of its own: made only for those (most records carry an id). */
  private String fallbackId() {
    return "line-" + lineNumber;
  }

  private InputRecord decode(long i, long end, int length) {
    RestInferCodec.Parsed request;
    try (JsonParser parser = RestInferCodec.JSON.createParser(line, 0, length)) {
      request = RestInferCodec.parse(parser);
    } catch (JsonProcessingException e) {
      return new InputRecord(i, lineNumber, end, fallbackId(), null,
          InferenceException.invalidField("", "line %d is not valid JSON: %s", lineNumber, e.getOriginalMessage()));
    } catch (IOException e) {
      return new InputRecord(i, lineNumber, end, fallbackId(), null,
          InferenceException.invalidField("", "line %d cannot be read: %s", lineNumber, e.getMessage()));
    }
    if (request == null) {
      return new InputRecord(i, lineNumber, end, fallbackId(), null,
          InferenceException.invalidField("", "line %d must be a JSON object (a KServe v2 inference request)", lineNumber));
    }
    String ownId = request.ownId();
    try {
      RestInferCodec.Decoded decoded = RestInferCodec.decode(request, NO_BINARY);
      if (decoded.sequence() != null || !decoded.plan().isPlain()) {
        // A job's records run independently, in no set order: no sequences; answers are JSON lines.
        throw InferenceException.invalidField(decoded.sequence() != null ? "parameters[sequence_id]" : "outputs",
            "line %d: batch job records cannot use sequence_id or classification", lineNumber);
      }
      String id = decoded.id().isEmpty() ? fallbackId() : decoded.id();
      return new InputRecord(i, lineNumber, end, id, decoded, null);
    } catch (InferenceException e) {
      return new InputRecord(i, lineNumber, end, ownId == null ? fallbackId() : ownId, null, e);
    }
  }

  private static boolean isBlank(byte[] bytes, int length) {
    for (int i = 0; i < length; i++) {
      byte c = bytes[i];
      if (c != ' ' && c != '\t' && c != '\r') {
        return false;
      }
    }
    return true;
  }

  @Override
  public long bytesRead() {
    return counting.count();
  }

  @Override
  public void close() throws IOException {
    counting.close();
  }
}
