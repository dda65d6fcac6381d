package io.quiver.server.http;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.quiver.core.InferenceException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.zip.DataFormatException;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import java.util.zip.ZipException;

/**
 * Request bodies sent with {@code Content-Encoding: gzip} or {@code deflate} (tritonclient's
 * {@code request_compression_algorithm}), inflated before the handler reads them, to at most the REST
 * body limit: a body that would inflate past it is refused as too large, whatever its compressed size
 * (no zip bomb grows past the limit). {@code deflate} is the zlib format (RFC 1950), or raw deflate as
 * some clients send it. Stateless; runs on the event loop (bounded CPU: at most the limit's bytes).
 */
final class ContentDecoding {
  /** Thrown when the inflated body would pass the limit; the handler answers 413. */
  static final class TooLarge extends RuntimeException {
    TooLarge(String message) {
      super(message, null, false, false);
    }
  }

  private ContentDecoding() {}

  /**
   * The request with its body inflated, or the request itself when it is not encoded. A new request
   * (which the caller releases) shares the headers, without Content-Encoding and with the new length.
   *
   * @throws InferenceException INVALID_ARGUMENT for an unknown encoding or a corrupt body
   * @throws TooLarge when the inflated body would pass {@code maxBytes}
   */
  static FullHttpRequest decode(FullHttpRequest request, int maxBytes) {
    String encoding = request.headers().get(HttpHeaderNames.CONTENT_ENCODING);
    if (encoding == null) {
      return request;
    }
    String e = encoding.trim().toLowerCase(Locale.ROOT);
    if (e.isEmpty() || e.equals("identity")) {
      return request;
    }
    ByteBuf body = request.content();
    ByteBuf inflated = body.alloc().buffer(Math.min(maxBytes, Math.max(256, body.readableBytes() * 4)));
    try {
      switch (e) {
        case "gzip", "x-gzip" -> copy(new GZIPInputStream(new ByteBufInputStream(body.duplicate()), 8192), inflated, maxBytes);
        case "deflate" -> inflate(body, inflated, maxBytes);
        default -> throw InferenceException.invalidField("Content-Encoding", "unsupported Content-Encoding '%s'; gzip,"
            + " deflate and identity are accepted", encoding);
      }
    } catch (ZipException | java.io.EOFException ex) {
      inflated.release();
      throw InferenceException.invalidField("Content-Encoding", "the body is not valid %s data (Content-Encoding: %s): %s", e, encoding, ex.getMessage());
    } catch (IOException ex) {
      inflated.release();
      throw InferenceException.invalidField("Content-Encoding", "the %s body could not be read (Content-Encoding: %s): %s", e, encoding, ex.getMessage());
    } catch (RuntimeException ex) {
      inflated.release();
      throw ex;
    }
    FullHttpRequest out = request.replace(inflated);
    out.headers().remove(HttpHeaderNames.CONTENT_ENCODING);
    out.headers().set(HttpHeaderNames.CONTENT_LENGTH, inflated.readableBytes());
    return out;
  }

  private static void copy(InputStream in, ByteBuf out, int maxBytes) throws IOException {
    try (in) {
      byte[] chunk = new byte[8192];
      int n;
      while ((n = in.read(chunk)) > 0) {
        if (out.readableBytes() + n > maxBytes) {
          throw new TooLarge("the inflated request body is over the limit of " + maxBytes + " bytes");
        }
        out.writeBytes(chunk, 0, n);
      }
    }
  }

  /** zlib first (what HTTP calls deflate), raw deflate when the zlib header is missing. */
  private static void inflate(ByteBuf body, ByteBuf out, int maxBytes) throws IOException {
    byte[] input = new byte[body.readableBytes()];
    body.getBytes(body.readerIndex(), input);
    try {
      inflateWith(new Inflater(false), input, out, maxBytes);
    } catch (DataFormatException zlib) {
      out.clear();
      try {
        inflateWith(new Inflater(true), input, out, maxBytes);
      } catch (DataFormatException raw) {
        throw new ZipException(raw.getMessage() == null ? "invalid deflate data" : raw.getMessage());
      }
    }
  }

  private static void inflateWith(Inflater inflater, byte[] input, ByteBuf out, int maxBytes)
      throws DataFormatException, ZipException {
    try {
      inflater.setInput(input);
      byte[] chunk = new byte[8192];
      while (!inflater.finished()) {
        int n = inflater.inflate(chunk);
        if (n == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
          throw new ZipException("truncated deflate data");
        }
        if (out.readableBytes() + n > maxBytes) {
          throw new TooLarge("the inflated request body is over the limit of " + maxBytes + " bytes");
        }
        out.writeBytes(chunk, 0, n);
      }
    } finally {
      inflater.end();
    }
  }
}
