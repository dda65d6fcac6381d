package io.quiver.server.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonParser;
import io.quiver.core.InferenceException;
import io.quiver.core.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * REST v2 inference requests read outside an HTTP exchange (monitoring reference files: one request
 * per line), through the same codec as the REST data plane. Stateless and thread-safe.
 */
public final class RestInferRequests {
  private RestInferRequests() {}

  /**
   * The inputs of one REST v2 inference request written as a JSON object with {@code data} arrays (no
   * binary section). Allocates the tensors.
   *
   * @throws InferenceException INVALID_ARGUMENT naming the field, as the REST endpoint would answer
   */
  public static List<Tensor> inputs(byte[] json, int offset, int length) {
    RestInferCodec.Parsed request;
    try (JsonParser parser = RestInferCodec.JSON.createParser(json, offset, length)) {
      request = RestInferCodec.parse(parser);
    } catch (JsonProcessingException e) {
      throw InferenceException.invalidField("", "malformed JSON: %s", e.getOriginalMessage());
    } catch (IOException e) {
      throw InferenceException.invalidField("", "unreadable JSON: %s", e.getMessage());
    }
    if (request == null) {
      throw InferenceException.invalidField("", "each request must be a JSON object");
    }
    return RestInferCodec.decode(request, ByteBuffer.allocate(0)).inputs();
  }
}
