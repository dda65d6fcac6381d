package io.quiver.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.examples.ExampleModels;
import io.quiver.lifecycle.ControlMode;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelInferRequest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The small HTTP points, over raw sockets so that nothing cleans the request up on the way: bad
 * percent-encoding is 400, a wrong method is 405 with Allow, request lines that are not HTTP/1.x or whose
 * method is not a token are refused and the connection closed; and request parameters: unknown reserved
 * ({@code triton_}) keys are refused over gRPC and REST, custom keys accepted, as Triton does.
 */
class HttpEdgeCasesTest {
  static Path repository;
  static ServerFixture fixture;

  @BeforeAll
  static void start() throws Exception {
    repository = Files.createTempDirectory("quiver-http-edges");
    ExampleModels.writeIdentityFp32(repository);
    fixture = new ServerFixture(repository, ControlMode.NONE, List.of());
  }

  @AfterAll
  static void stop() throws Exception {
    fixture.close();
    try (var files = Files.walk(repository)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  /** Sends raw bytes and reads until the server closes the connection or a full answer arrived. */
  static String exchange(byte[] request) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", fixture.server.httpPort())) {
      socket.setSoTimeout(10_000);
      OutputStream out = socket.getOutputStream();
      out.write(request);
      out.flush();
      InputStream in = socket.getInputStream();
      ByteArrayOutputStream answer = new ByteArrayOutputStream();
      byte[] buf = new byte[4096];
      try {
        int n;
        while ((n = in.read(buf)) > 0) {
          answer.write(buf, 0, n);
          String text = answer.toString(StandardCharsets.ISO_8859_1);
          int headersEnd = text.indexOf("\r\n\r\n");
          int length = contentLength(text);
          if (headersEnd >= 0 && length >= 0 && text.length() >= headersEnd + 4 + length) {
            break;
          }
        }
      } catch (SocketTimeoutException e) {
        // return what came
      }
      return answer.toString(StandardCharsets.ISO_8859_1);
    }
  }

  private static int contentLength(String text) {
    for (String line : text.split("\r\n")) {
      if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
        return Integer.parseInt(line.substring(15).trim());
      }
    }
    return -1;
  }

  static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  @Test
  void badPercentEncoding_is400() throws IOException {
    String answer = exchange(ascii("POST /v2/models/%zz/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
    assertThat(answer).startsWith("HTTP/1.1 400").contains("percent-encoding");
    assertThat(exchange(ascii("GET /v2/models/identity_fp32%2 HTTP/1.1\r\nHost: x\r\n\r\n"))).startsWith("HTTP/1.1 400");
  }

  @Test
  void wrongMethod_is405_withAllow() throws IOException {
    String answer = exchange(ascii("DELETE /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\n\r\n"));
    assertThat(answer).startsWith("HTTP/1.1 405").containsIgnoringCase("allow: POST");
    assertThat(exchange(ascii("PUT /v2/logging HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")))
        .startsWith("HTTP/1.1 405").containsIgnoringCase("allow: GET, POST");
  }

  @Test
  void unsupportedHttpVersion_isRefused_andTheConnectionClosed() throws IOException {
    String answer = exchange(ascii("GET /v2/health/live HTTP/1.9\r\nHost: x\r\n\r\n"));
    assertThat(answer).startsWith("HTTP/1.1 505").containsIgnoringCase("connection: close");
    assertThat(exchange(ascii("GET /v2/health/live HTTP/2.0\r\nHost: x\r\n\r\n"))).startsWith("HTTP/1.1 505");
    // Still served: 1.0 and 1.1.
    assertThat(exchange(ascii("GET /v2/health/live HTTP/1.0\r\n\r\n"))).contains(" 200 ");
  }

  @Test
  void methodWithAControlCharacter_isRefused_andTheConnectionClosed() throws IOException {
    String answer = exchange(ascii("GET\0 /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
    assertThat(answer).startsWith("HTTP/1.1 400");
    assertThat(answer).doesNotContain(" 200 ");
  }

  @Test
  void requestParameters_unknownReservedKeysRefused_customKeysAccepted() throws Exception {
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName("identity_fp32")
        .addInputs(Tensors.input("INPUT0", "FP32", 1, 16)).addRawInputContents(Tensors.floats(new float[16]));
    assertThatThrownBy(() -> fixture.stub().modelInfer(request.clone()
        .putParameters("triton_whatever", InferParameter.newBuilder().setBoolParam(true).build()).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
          assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
          assertThat(e.getStatus().getDescription()).contains("triton_whatever").contains("reserved");
        });
    assertThat(fixture.stub().modelInfer(request.clone()
        .putParameters("my_tracking_tag", InferParameter.newBuilder().setStringParam("a").build())
        .putParameters("triton_enable_empty_final_response", InferParameter.newBuilder().setBoolParam(true).build())
        .build()).getOutputsCount()).isEqualTo(1);

    String body = "{\"parameters\":{\"triton_x\":1},\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,16],"
        + "\"data\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}";
    assertThat(exchange(ascii("POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + body.length()
        + "\r\n\r\n" + body))).startsWith("HTTP/1.1 400").contains("triton_x");
    String custom = body.replace("triton_x", "my_tag");
    assertThat(exchange(ascii("POST /v2/models/identity_fp32/infer HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + custom.length() + "\r\n\r\n" + custom))).startsWith("HTTP/1.1 200");
  }
}
