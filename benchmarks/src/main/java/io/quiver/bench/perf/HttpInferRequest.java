package io.quiver.bench.perf;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import io.quiver.core.DataType;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferRequest.InferInputTensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One REST v2 infer request, encoded once before the run: the path, the headers and the body. Sending
 * it wraps the same body bytes again ({@link #newRequest}: a retained duplicate, no copy).
 *
 * <p>Binary mode (the default, what tritonclient's HTTP client sends for raw tensors): the body is a
 * JSON header naming each input with {@code "parameters":{"binary_data_size":N}}, followed by the
 * tensors' raw bytes; the header {@code Inference-Header-Content-Length} gives the JSON's length, and
 * {@code "parameters":{"binary_data_output":true}} asks for binary outputs too. JSON mode: every
 * tensor as a flat {@code data} array (numbers, {@code true}/{@code false}, strings for BYTES).
 */
public final class HttpInferRequest {
  public static final String HEADER_LENGTH = "Inference-Header-Content-Length";

  private final String path;
  private final ByteBuf body;
  private final HttpHeaders headers;

  private HttpInferRequest(String path, ByteBuf body, HttpHeaders headers) {
    this.path = path;
    this.body = body;
    this.headers = headers;
  }

  /** The infer path of a model: /v2/models/{m}[/versions/{v}]/infer. */
  public static String inferPath(String model, String version) {
    return modelPath(model, version) + "/infer";
  }

  /** /v2/models/{m}[/versions/{v}] (names URL-encoded as path segments). */
  public static String modelPath(String model, String version) {
    return "/v2/models/" + segment(model) + (version.isEmpty() ? "" : "/versions/" + segment(version));
  }

  private static String segment(String s) {
    return java.net.URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
  }

  /** Encodes {@code request} (its tensors in raw_input_contents, as {@link InputData} builds them). */
  public static HttpInferRequest encode(ModelInferRequest request, String hostHeader, boolean json) {
    StringBuilder header = new StringBuilder(256).append("{\"inputs\":[");
    List<ByteBuffer> raw = new ArrayList<>();
    for (int i = 0; i < request.getInputsCount(); i++) {
      InferInputTensor input = request.getInputs(i);
      ByteBuffer bytes = request.getRawInputContents(i).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
      if (i > 0) {
        header.append(',');
      }
      header.append("{\"name\":");
      quote(header, input.getName());
      header.append(",\"datatype\":");
      quote(header, input.getDatatype());
      header.append(",\"shape\":[");
      for (int d = 0; d < input.getShapeCount(); d++) {
        header.append(d > 0 ? "," : "").append(input.getShape(d));
      }
      header.append(']');
      if (json) {
        header.append(",\"data\":");
        appendData(header, DataType.fromWireName(input.getDatatype()), bytes);
      } else {
        header.append(",\"parameters\":{\"binary_data_size\":").append(bytes.remaining()).append('}');
        raw.add(bytes);
      }
      header.append('}');
    }
    header.append(']');
    if (!json) {
      header.append(",\"parameters\":{\"binary_data_output\":true}");
    }
    header.append('}');
    byte[] headerBytes = header.toString().getBytes(StandardCharsets.UTF_8);
    int size = headerBytes.length;
    for (ByteBuffer b : raw) {
      size += b.remaining();
    }
    ByteBuf body = Unpooled.directBuffer(size, size);
    body.writeBytes(headerBytes);
    for (ByteBuffer b : raw) {
      body.writeBytes(b.duplicate());
    }
    HttpHeaders headers = new DefaultHttpHeaders();
    headers.set(HttpHeaderNames.HOST, hostHeader);
    headers.set(HttpHeaderNames.CONTENT_LENGTH, size);
    if (json) {
      headers.set(HttpHeaderNames.CONTENT_TYPE, "application/json");
    } else {
      headers.set(HttpHeaderNames.CONTENT_TYPE, "application/octet-stream");
      headers.set(HEADER_LENGTH, headerBytes.length);
    }
    return new HttpInferRequest(inferPath(request.getModelName(), request.getModelVersion()), Unpooled.unreleasableBuffer(body), headers);
  }

  /** A request to write: shares the body bytes and the (never modified) headers. */
  FullHttpRequest newRequest() {
    return new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, path, body.retainedDuplicate(), headers,
        EmptyHttpHeaders.INSTANCE);
  }

  public String path() {
    return path;
  }

  /** The encoded body, for tests and inspection (a copy). */
  public byte[] bodyBytes() {
    byte[] bytes = new byte[body.readableBytes()];
    body.getBytes(body.readerIndex(), bytes);
    return bytes;
  }

  public String header(String name) {
    return headers.get(name);
  }

  private static void appendData(StringBuilder out, DataType type, ByteBuffer d) {
    if (type == null) {
      throw new IllegalArgumentException("unknown datatype");
    }
    out.append('[');
    boolean first = true;
    while (d.hasRemaining()) {
      if (!first) {
        out.append(',');
      }
      first = false;
      switch (type) {
        case BOOL -> out.append(d.get() != 0);
        case INT8 -> out.append(d.get());
        case UINT8 -> out.append(d.get() & 0xFF);
        case INT16 -> out.append(d.getShort());
        case UINT16 -> out.append(d.getShort() & 0xFFFF);
        case INT32 -> out.append(d.getInt());
        case UINT32 -> out.append(d.getInt() & 0xFFFF_FFFFL);
        case INT64 -> out.append(d.getLong());
        case UINT64 -> out.append(Long.toUnsignedString(d.getLong()));
        case FP32 -> number(out, d.getFloat());
        case FP64 -> number(out, d.getDouble());
        case FP16 -> number(out, halfToFloat(d.getShort()));
        case BF16 -> number(out, Float.intBitsToFloat((d.getShort() & 0xFFFF) << 16));
        case BYTES -> {
          int length = d.getInt();
          byte[] s = new byte[length];
          d.get(s);
          quote(out, new String(s, StandardCharsets.UTF_8));
        }
        default -> throw new IllegalArgumentException("datatype " + type + " has no JSON form");
      }
    }
    out.append(']');
  }

  private static void number(StringBuilder out, double v) {
    if (Double.isNaN(v) || Double.isInfinite(v)) {
      throw new IllegalArgumentException("JSON has no " + v + "; use the binary extension");
    }
    out.append(v);
  }

  static float halfToFloat(short h) {
    int bits = h & 0xFFFF;
    int sign = (bits & 0x8000) << 16;
    int exponent = (bits >>> 10) & 0x1F;
    int mantissa = bits & 0x3FF;
    if (exponent == 0) {
      float v = mantissa * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    if (exponent == 31) {
      return Float.intBitsToFloat(sign | 0x7F80_0000 | (mantissa << 13));
    }
    return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
  }

  private static void quote(StringBuilder out, String s) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
