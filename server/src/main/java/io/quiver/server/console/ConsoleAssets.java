package io.quiver.server.console;

import io.netty.buffer.Unpooled;
import io.quiver.server.http.RestExchange;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The console's static files, read once from the class path when the server starts: the app (in this
 * jar, under {@code io/quiver/server/console/web/}) and uPlot (from its pinned webjar). Only the files
 * named here are served; anything else under /console/ is 404. Answers carry an ETag, and a matching
 * If-None-Match gets 304. Immutable after construction; served on the event loop.
 */
final class ConsoleAssets {
  private static final String WEB = "io/quiver/server/console/web/";
  private static final List<String> APP_FILES = List.of("index.html", "console.css", "app.js", "api.js",
      "models.js", "live.js", "tryit.js", "server.js", "charts.js", "format.js", "favicon.svg");
  private static final String UPLOT_POM = "META-INF/maven/org.webjars.npm/uplot/pom.properties";
  private static final String UPLOT_DIST = "META-INF/resources/webjars/uplot/%s/dist/";

  private record Asset(byte[] bytes, String contentType, String etag) {}

  private final Map<String, Asset> assets = new LinkedHashMap<>();
  private final String uplotVersion;

  ConsoleAssets() {
    ClassLoader loader = ConsoleAssets.class.getClassLoader();
    for (String file : APP_FILES) {
      assets.put("/console/" + file, asset(loader, WEB + file, file));
    }
    assets.put("/console/", assets.get("/console/index.html"));
    Properties pom = new Properties();
    try (InputStream in = loader.getResourceAsStream(UPLOT_POM)) {
      if (in == null) {
        throw new IllegalStateException("uPlot's webjar (org.webjars.npm:uplot) is not on the class path");
      }
      pom.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    uplotVersion = pom.getProperty("version");
    String dist = String.format(UPLOT_DIST, uplotVersion);
    assets.put("/console/vendor/uplot/uPlot.esm.js", asset(loader, dist + "uPlot.esm.js", "uPlot.esm.js"));
    assets.put("/console/vendor/uplot/uPlot.min.css", asset(loader, dist + "uPlot.min.css", "uPlot.min.css"));
  }

  String uplotVersion() {
    return uplotVersion;
  }

  void serve(RestExchange exchange, FullHttpRequest request, String path, boolean keepAlive) {
    Asset asset = assets.get(path);
    if (asset == null) {
      ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.NOT_FOUND, "no such console file: " + path);
      return;
    }
    if (!request.method().equals(HttpMethod.GET) && !request.method().equals(HttpMethod.HEAD)) {
      ConsoleHttp.error(exchange, keepAlive, HttpResponseStatus.METHOD_NOT_ALLOWED, "console files answer GET only");
      return;
    }
    FullHttpResponse response;
    if (asset.etag.equals(request.headers().get(HttpHeaderNames.IF_NONE_MATCH))) {
      response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.NOT_MODIFIED, Unpooled.EMPTY_BUFFER);
    } else {
      response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
          request.method().equals(HttpMethod.HEAD) ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(asset.bytes));
      response.headers().set(HttpHeaderNames.CONTENT_TYPE, asset.contentType);
    }
    response.headers().set(HttpHeaderNames.ETAG, asset.etag);
    response.headers().set(HttpHeaderNames.CACHE_CONTROL, "no-cache"); // revalidate: a new server may bring new files
    ConsoleHttp.write(exchange, keepAlive, response);
  }

  private static Asset asset(ClassLoader loader, String resource, String name) {
    byte[] bytes;
    try (InputStream in = loader.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("console file missing from the class path: " + resource);
      }
      bytes = in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    String etag;
    try {
      etag = '"' + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes), 0, 16) + '"';
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    return new Asset(bytes, contentType(name), etag);
  }

  private static String contentType(String name) {
    if (name.endsWith(".html")) {
      return "text/html; charset=utf-8";
    }
    if (name.endsWith(".js")) {
      return "text/javascript; charset=utf-8";
    }
    if (name.endsWith(".css")) {
      return "text/css; charset=utf-8";
    }
    if (name.endsWith(".svg")) {
      return "image/svg+xml";
    }
    return "application/octet-stream";
  }
}
