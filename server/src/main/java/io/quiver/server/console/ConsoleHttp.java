package io.quiver.server.console;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufOutputStream;
import io.netty.buffer.Unpooled;
import io.quiver.server.http.RestExchange;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import java.io.IOException;
import java.io.OutputStream;

/**
 * Writing the console's answers: every response carries the same protective headers (a strict
 * Content-Security-Policy that allows only the console's own files, no framing, no MIME sniffing, no
 * referrer). Any thread may write; Netty hands the write to the channel's event loop. Stateless.
 */
final class ConsoleHttp {
  static final JsonFactory JSON = new JsonFactory();
  /**
   * Scripts, styles, images and connections only from the console's own origin; no inline script or
   * style, no plugins, no framing, forms post nowhere.
   */
  static final String CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; "
      + "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
      + "frame-ancestors 'none'";

  private ConsoleHttp() {}

  interface JsonBody {
    void write(JsonGenerator gen) throws IOException;
  }

  static void protect(HttpHeaders headers) {
    headers.set("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    headers.set("X-Frame-Options", "DENY");
    headers.set("X-Content-Type-Options", "nosniff");
    headers.set("Referrer-Policy", "no-referrer");
    headers.set("Cross-Origin-Opener-Policy", "same-origin");
    headers.set("Cross-Origin-Resource-Policy", "same-origin");
    headers.set("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
  }

  static void json(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, JsonBody body) {
    ByteBuf buf = exchange.alloc().buffer();
    try (JsonGenerator gen = JSON.createGenerator((OutputStream) new ByteBufOutputStream(buf))) {
      body.write(gen);
    } catch (IOException | RuntimeException e) {
      buf.release();
      error(exchange, keepAlive, HttpResponseStatus.INTERNAL_SERVER_ERROR, "could not write the answer: " + e.getMessage());
      return;
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, buf);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json; charset=utf-8");
    response.headers().set(HttpHeaderNames.CACHE_CONTROL, "no-store");
    write(exchange, keepAlive, response);
  }

  static void error(RestExchange exchange, boolean keepAlive, HttpResponseStatus status, String message) {
    ByteBuf buf = exchange.alloc().buffer();
    try (JsonGenerator gen = JSON.createGenerator((OutputStream) new ByteBufOutputStream(buf))) {
      gen.writeStartObject();
      gen.writeStringField("error", message == null ? "" : message);
      gen.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e); // writing to memory cannot fail
    }
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, buf);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json; charset=utf-8");
    response.headers().set(HttpHeaderNames.CACHE_CONTROL, "no-store");
    if (status.code() == 401) {
      response.headers().set(HttpHeaderNames.WWW_AUTHENTICATE, "Bearer");
    }
    write(exchange, keepAlive, response);
  }

  static void redirect(RestExchange exchange, boolean keepAlive, String location) {
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.MOVED_PERMANENTLY,
        Unpooled.EMPTY_BUFFER);
    response.headers().set(HttpHeaderNames.LOCATION, location);
    write(exchange, keepAlive, response);
  }

  /** Writes and, when a request had turned reading off while it ran, turns it back on. */
  static void write(RestExchange exchange, boolean keepAlive, FullHttpResponse response) {
    protect(response.headers());
    HttpUtil.setContentLength(response, response.content().readableBytes());
    exchange.resumeReading();
    exchange.write(response, keepAlive);
  }
}
