package io.quiver.server.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.quiver.core.InferenceException;
import io.quiver.server.DataPlane;
import io.quiver.server.shm.SharedMemoryRegistry;
import java.util.List;

/**
 * Triton's shared-memory paths over REST: {@code /v2/systemsharedmemory[/region/NAME]/status} (GET),
 * {@code /v2/systemsharedmemory/region/NAME/register} (POST {"key", "offset", "byte_size"}),
 * {@code /v2/systemsharedmemory[/region/NAME]/unregister} (POST; without a name: every region), and
 * {@code /v2/cudasharedmemory/...}, answered 501 (CUDA shared memory is not offered yet). Stateless; on
 * the event loop (registration maps a tmpfs file: no disk I/O).
 */
final class SharedMemoryRoutes {
  private SharedMemoryRoutes() {}

  static void system(DataPlane plane, RestExchange exchange, FullHttpRequest request, boolean keepAlive,
      String path, String[] parts, String owner) {
    SharedMemoryRegistry shm = plane.sharedMemory();
    String region = "";
    String action;
    if (parts.length == 3) {
      action = parts[2];
    } else if (parts.length == 5 && parts[2].equals("region")) {
      region = parts[3];
      action = parts[4];
    } else {
      throw InferenceException.notFound("no such path: %s", path);
    }
    if (shm == null) {
      throw InferenceException.unimplemented("system shared memory is not available on this server (no %s)",
          SharedMemoryRegistry.DEFAULT_ROOT);
    }
    switch (action) {
      case "status" -> {
        RestHandler.requireMethod(request.method(), HttpMethod.GET, path);
        List<SharedMemoryRegistry.RegionStatus> status = shm.status(region, owner);
        RestHandler.sendJson(exchange, keepAlive, HttpResponseStatus.OK, gen -> {
          gen.writeStartArray();
          for (SharedMemoryRegistry.RegionStatus s : status) {
            gen.writeStartObject();
            gen.writeStringField("name", s.name());
            gen.writeStringField("key", s.key());
            gen.writeNumberField("offset", s.offset());
            gen.writeNumberField("byte_size", s.byteSize());
            gen.writeEndObject();
          }
          gen.writeEndArray();
        });
      }
      case "register" -> {
        RestHandler.requireMethod(request.method(), HttpMethod.POST, path);
        if (region.isEmpty()) {
          throw InferenceException.invalidField("name", "'region name' is necessary to register system shared memory"
              + " region");
        }
        JsonNode body = RestHandler.parse(request.content(), request.content().readableBytes());
        JsonNode key = body.get("key");
        if (key == null || !key.isTextual()) {
          throw InferenceException.invalidField("key", "Shared memory register request has no 'key' field (a string)");
        }
        JsonNode size = body.get("byte_size");
        if (size == null || !size.isIntegralNumber() || !size.canConvertToLong()) {
          throw InferenceException.invalidField("byte_size",
              "Shared memory register request has no 'byte_size' field (an unsigned integer)");
        }
        JsonNode offset = body.get("offset");
        if (offset != null && (!offset.isIntegralNumber() || !offset.canConvertToLong())) {
          throw InferenceException.invalidField("offset", "'offset' must be an unsigned integer");
        }
        shm.register(region, key.textValue(), offset == null ? 0 : offset.longValue(), size.longValue(), owner);
        RestHandler.sendEmpty(exchange, keepAlive, HttpResponseStatus.OK);
      }
      case "unregister" -> {
        RestHandler.requireMethod(request.method(), HttpMethod.POST, path);
        shm.unregister(region, owner);
        RestHandler.sendEmpty(exchange, keepAlive, HttpResponseStatus.OK);
      }
      default -> throw InferenceException.notFound("no such path: %s", path);
    }
  }

  static void cuda(FullHttpRequest request, String path, String[] parts) {
    throw InferenceException.unimplemented("%s", "CUDA shared memory is not supported by Quiver yet (its GPU paths are"
        + " not verified on a GPU); use /v2/systemsharedmemory or send tensors in the request");
  }
}
