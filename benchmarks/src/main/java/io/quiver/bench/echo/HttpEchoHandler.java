package io.quiver.bench.echo;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.quiver.bench.perf.HttpInferRequest;
import io.quiver.proto.inference.ModelMetadataResponse;
import io.quiver.server.http.RestInferCodec;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The REST v2 counterpart of {@link EchoService}: what is left of a REST inference when the model,
 * the queue and all validation are taken away, so a side-by-side run shows what HTTP/1.1, Netty's
 * HTTP codec and a JSON header cost on this machine. The infer answer mirrors the request as
 * EchoService does: each input becomes an output ("INPUT" → "OUTPUT") of the same datatype and
 * shape. With the binary tensor extension (an {@code Inference-Header-Content-Length} header) the
 * JSON header is parsed and a new one written, and the answer carries the request's tensor bytes
 * without a copy (a retained slice, as the gRPC echo shares its ByteString); a JSON-only request is
 * answered with its {@code data} arrays copied over.
 *
 * <p>Paths: {@code POST /v2/models/{m}[/versions/{v}]/infer}, {@code GET /v2/models/{m}[...]/ready},
 * {@code GET /v2/models/{m}[...]} (metadata), {@code GET /v2/health/live|ready}; anything else is 404,
 * an unreadable body 400. Runs on the event loop and never blocks; stateless and sharable.
 */
@ChannelHandler.Sharable
final class HttpEchoHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final EchoService service;

  /** @param service the gRPC echo whose metadata this one serves */
  HttpEchoHandler(EchoService service) {
    this.service = service;
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
    boolean keepAlive = HttpUtil.isKeepAlive(request);
    String path = request.uri();
    int query = path.indexOf('?');
    if (query >= 0) {
      path = path.substring(0, query);
    }
    if (!request.decoderResult().isSuccess()) {
      text(ctx, keepAlive, HttpResponseStatus.BAD_REQUEST, "malformed HTTP request");
    } else if (path.startsWith("/v2/models/") && path.endsWith("/infer") && request.method().equals(HttpMethod.POST)) {
      infer(ctx, keepAlive, request, modelName(path));
    } else if (path.startsWith("/v2/models/") && path.endsWith("/ready") || path.equals("/v2/health/ready")
        || path.equals("/v2/health/live")) {
      text(ctx, keepAlive, HttpResponseStatus.OK, "");
    } else if (path.startsWith("/v2/models/") && isModelPath(path) && request.method().equals(HttpMethod.GET)) {
      metadata(ctx, keepAlive, modelName(path));
    } else {
      text(ctx, keepAlive, HttpResponseStatus.NOT_FOUND, "no such path: " + path);
    }
  }

  /** /v2/models/{m} or /v2/models/{m}/versions/{v}: the metadata path (statistics and the rest are 404). */
  private static boolean isModelPath(String path) {
    String[] parts = path.substring("/v2/models/".length()).split("/", -1);
    return parts.length == 1 || parts.length == 3 && parts[1].equals("versions");
  }

  /** The model segment of /v2/models/{m}/... (not percent-decoded: the echo serves any name). */
  private static String modelName(String path) {
    int start = "/v2/models/".length();
    int end = path.indexOf('/', start);
    return path.substring(start, end < 0 ? path.length() : end);
  }

  private void infer(ChannelHandlerContext ctx, boolean keepAlive, FullHttpRequest request, String model) {
    ByteBuf body = request.content();
    int total = body.readableBytes();
    String lengthHeader = request.headers().get(HttpInferRequest.HEADER_LENGTH);
    int headerLength;
    JsonNode header;
    try {
      headerLength = lengthHeader == null ? total : Integer.parseInt(lengthHeader.trim());
      if (headerLength < 0 || headerLength > total) {
        throw new IllegalArgumentException(HttpInferRequest.HEADER_LENGTH + " is out of the body's range");
      }
      try (ByteBufInputStream in = new ByteBufInputStream(body.slice(body.readerIndex(), headerLength))) {
        header = JSON.readTree((java.io.InputStream) in);
      }
      if (header == null || !header.path("inputs").isArray()) {
        throw new IllegalArgumentException("the JSON header has no inputs array");
      }
    } catch (IOException | RuntimeException e) {
      text(ctx, keepAlive, HttpResponseStatus.BAD_REQUEST, "unreadable infer request: " + e.getMessage());
      return;
    }
    boolean binary = lengthHeader != null;
    ByteBuf json = ctx.alloc().buffer(256);
    try (OutputStream out = new ByteBufOutputStream(json); JsonGenerator gen = JSON.createGenerator(out)) {
      gen.writeStartObject();
      gen.writeStringField("model_name", model);
      gen.writeStringField("model_version", "1");
      if (header.has("id")) {
        gen.writeStringField("id", header.get("id").asText());
      }
      gen.writeArrayFieldStart("outputs");
      for (JsonNode in : header.get("inputs")) {
        gen.writeStartObject();
        gen.writeStringField("name", EchoService.outputName(in.path("name").asText()));
        gen.writeStringField("datatype", in.path("datatype").asText());
        gen.writeFieldName("shape");
        gen.writeTree(in.path("shape"));
        if (binary) {
          gen.writeObjectFieldStart("parameters");
          gen.writeNumberField("binary_data_size", in.path("parameters").path("binary_data_size").asLong());
          gen.writeEndObject();
        } else {
          gen.writeFieldName("data");
          gen.writeTree(in.path("data"));
        }
        gen.writeEndObject();
      }
      gen.writeEndArray();
      gen.writeEndObject();
    } catch (IOException e) {
      json.release();
      text(ctx, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, e.getMessage());
      return;
    }
    int jsonLength = json.readableBytes();
    ByteBuf answer = json;
    if (binary && total > headerLength) {
      CompositeByteBuf both = ctx.alloc().compositeBuffer(2);
      both.addComponents(true, json, body.retainedSlice(body.readerIndex() + headerLength, total - headerLength));
      answer = both;
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, answer);
    if (binary) {
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_OCTET_STREAM);
      response.headers().set(HttpInferRequest.HEADER_LENGTH, jsonLength);
    } else {
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON);
    }
    send(ctx, keepAlive, response);
  }

  /** The gRPC echo's metadata in REST v2's JSON form. */
  private void metadata(ChannelHandlerContext ctx, boolean keepAlive, String model) {
    ModelMetadataResponse m = service.metadata(model);
    ByteBuf json = ctx.alloc().buffer(256);
    try (OutputStream out = new ByteBufOutputStream(json); JsonGenerator gen = JSON.createGenerator(out)) {
      RestInferCodec.writeMetadata(gen, m); // the server's own REST v2 form
    } catch (IOException e) {
      json.release();
      text(ctx, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, e.getMessage());
      return;
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, json);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON);
    send(ctx, keepAlive, response);
  }

  private static void text(ChannelHandlerContext ctx, boolean keepAlive, HttpResponseStatus status, String message) {
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
        ctx.alloc().buffer().writeBytes(message.getBytes(StandardCharsets.UTF_8)));
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN);
    send(ctx, keepAlive, response);
  }

  private static void send(ChannelHandlerContext ctx, boolean keepAlive, FullHttpResponse response) {
    HttpUtil.setContentLength(response, response.content().readableBytes());
    if (keepAlive) {
      response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      ctx.writeAndFlush(response, ctx.voidPromise());
    } else {
      ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    ctx.close();
  }
}
