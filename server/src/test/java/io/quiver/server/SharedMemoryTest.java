package io.quiver.server;

import static io.quiver.server.Tensors.input;
import static io.quiver.server.Tensors.ints;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.inference.CudaSharedMemoryStatusRequest;
import io.quiver.proto.inference.InferParameter;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ServerMetadataRequest;
import io.quiver.proto.inference.SystemSharedMemoryRegisterRequest;
import io.quiver.proto.inference.SystemSharedMemoryStatusRequest;
import io.quiver.proto.inference.SystemSharedMemoryStatusResponse;
import io.quiver.proto.inference.SystemSharedMemoryUnregisterRequest;
import io.quiver.server.shm.SharedMemoryRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Triton's system shared memory extension over real gRPC and REST, as tritonclient's
 * {@code tritonclient.utils.shared_memory} uses it: the client creates a POSIX shared memory object
 * (here a file under /dev/shm, which is what {@code shm_open} makes on Linux), registers it by key, offset
 * and size, sends inputs and receives outputs through it, and unregisters it.
 */
class SharedMemoryTest {
  @TempDir static Path repository;
  static ServerFixture fixture;
  static HttpClient http;
  static final ObjectMapper JSON = new ObjectMapper();
  static final String PREFIX = "quiver-test-" + ProcessHandle.current().pid() + "-";
  static final List<Path> objects = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    assumeTrue(SharedMemoryRegistry.supported(SharedMemoryRegistry.DEFAULT_ROOT), "no /dev/shm on this machine");
    ExampleModels.writeSimple(repository);
    fixture = new ServerFixture(repository);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (fixture != null) {
      fixture.close();
    }
    for (Path p : objects) {
      Files.deleteIfExists(p);
    }
  }

  @AfterEach
  void unregisterAll() {
    fixture.stub().systemSharedMemoryUnregister(SystemSharedMemoryUnregisterRequest.getDefaultInstance());
  }

  /** A POSIX shared memory object of {@code size} bytes (zeroed), as shm_open + ftruncate make it. */
  static String createObject(String name, int size) throws Exception {
    Path file = SharedMemoryRegistry.DEFAULT_ROOT.resolve(PREFIX + name);
    Files.deleteIfExists(file);
    Files.write(file, new byte[size]);
    objects.add(file);
    return "/" + PREFIX + name;
  }

  static MappedByteBuffer map(String key) throws Exception {
    try (FileChannel channel = FileChannel.open(SharedMemoryRegistry.DEFAULT_ROOT.resolve(key.substring(1)),
        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      MappedByteBuffer buffer = channel.map(FileChannel.MapMode.READ_WRITE, 0, channel.size());
      buffer.order(ByteOrder.LITTLE_ENDIAN);
      return buffer;
    }
  }

  static void register(String name, String key, long offset, long size) {
    fixture.stub().systemSharedMemoryRegister(SystemSharedMemoryRegisterRequest.newBuilder().setName(name).setKey(key)
        .setOffset(offset).setByteSize(size).build());
  }

  static InferParameter str(String s) {
    return InferParameter.newBuilder().setStringParam(s).build();
  }

  static InferParameter int64(long v) {
    return InferParameter.newBuilder().setInt64Param(v).build();
  }

  /** simple's INPUT0 and INPUT1 (INT32 [1,16]) from region {@code in} at 0 and 64; outputs into {@code out}. */
  static ModelInferRequest shmRequest(String in, String out) {
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName("simple");
    String[] names = {"INPUT0", "INPUT1"};
    for (int i = 0; i < 2; i++) {
      request.addInputs(input(names[i], "INT32", 1, 16).toBuilder()
          .putParameters("shared_memory_region", str(in))
          .putParameters("shared_memory_byte_size", int64(64))
          .putParameters("shared_memory_offset", int64(64L * i)));
    }
    String[] outputs = {"OUTPUT0", "OUTPUT1"};
    for (int i = 0; i < 2; i++) {
      request.addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName(outputs[i])
          .putParameters("shared_memory_region", str(out))
          .putParameters("shared_memory_byte_size", int64(64))
          .putParameters("shared_memory_offset", int64(64L * i)));
    }
    return request.build();
  }

  static void writeInputs(MappedByteBuffer in) {
    for (int i = 0; i < 16; i++) {
      in.putInt(i * 4, i);
      in.putInt(64 + i * 4, 1);
    }
  }

  static void assertOutputs(ByteBuffer out) {
    for (int i = 0; i < 16; i++) {
      assertThat(out.getInt(i * 4)).as("OUTPUT0[%d]", i).isEqualTo(i + 1);
      assertThat(out.getInt(64 + i * 4)).as("OUTPUT1[%d]", i).isEqualTo(i - 1);
    }
  }

  @Test
  void serverMetadata_advertisesSystemSharedMemory() {
    assertThat(fixture.stub().serverMetadata(ServerMetadataRequest.getDefaultInstance()).getExtensionsList())
        .contains("system_shared_memory")
        .doesNotContain("cuda_shared_memory");
  }

  @Test
  void grpc_registerStatusInferUnregister_readsInputsAndWritesOutputsInPlace() throws Exception {
    String inKey = createObject("grpc_in", 128);
    String outKey = createObject("grpc_out", 192);
    MappedByteBuffer in = map(inKey);
    MappedByteBuffer out = map(outKey);
    writeInputs(in);
    register("input_data", inKey, 0, 128);
    register("output_data", outKey, 64, 128); // the region starts 64 bytes into the object

    SystemSharedMemoryStatusResponse status = fixture.stub().systemSharedMemoryStatus(
        SystemSharedMemoryStatusRequest.getDefaultInstance());
    assertThat(status.getRegionsMap()).containsOnlyKeys("input_data", "output_data");
    SystemSharedMemoryStatusResponse.RegionStatus region = status.getRegionsOrThrow("output_data");
    assertThat(region.getName()).isEqualTo("output_data");
    assertThat(region.getKey()).isEqualTo(outKey);
    assertThat(region.getOffset()).isEqualTo(64);
    assertThat(region.getByteSize()).isEqualTo(128);
    assertThat(fixture.stub().systemSharedMemoryStatus(SystemSharedMemoryStatusRequest.newBuilder()
        .setName("input_data").build()).getRegionsMap()).containsOnlyKeys("input_data");

    ModelInferResponse response = fixture.stub().modelInfer(shmRequest("input_data", "output_data"));
    assertThat(response.getOutputsList()).hasSize(2);
    for (int i = 0; i < 2; i++) {
      ModelInferResponse.InferOutputTensor output = response.getOutputs(i);
      assertThat(output.getDatatype()).isEqualTo("INT32");
      assertThat(output.getShapeList()).containsExactly(1L, 16L);
      assertThat(output.getParametersOrThrow("shared_memory_region").getStringParam()).isEqualTo("output_data");
      assertThat(output.getParametersOrThrow("shared_memory_byte_size").getInt64Param()).isEqualTo(64);
      // Described, not carried: no tensor bytes travel back.
      assertThat(response.getRawOutputContentsCount() == 0 || response.getRawOutputContents(i).isEmpty()).isTrue();
    }
    assertThat(response.getOutputs(1).getParametersOrThrow("shared_memory_offset").getInt64Param()).isEqualTo(64);
    // The region starts at object offset 64: outputs land there.
    out.position(64);
    ByteBuffer view = out.slice().order(ByteOrder.LITTLE_ENDIAN);
    assertOutputs(view);
    assertThat(out.getInt(0)).as("bytes before the region are untouched").isZero();

    fixture.stub().systemSharedMemoryUnregister(SystemSharedMemoryUnregisterRequest.newBuilder()
        .setName("input_data").build());
    assertThat(fixture.stub().systemSharedMemoryStatus(SystemSharedMemoryStatusRequest.getDefaultInstance())
        .getRegionsMap()).containsOnlyKeys("output_data");
    // Unregistering a name that is not registered succeeds, as in Triton (clients clean up unconditionally).
    fixture.stub().systemSharedMemoryUnregister(SystemSharedMemoryUnregisterRequest.newBuilder()
        .setName("input_data").build());
    // A request naming the unregistered region is refused, naming it.
    assertGrpc(() -> fixture.stub().modelInfer(shmRequest("input_data", "output_data")), Status.Code.NOT_FOUND,
        "input_data");
  }

  @Test
  void grpc_inputsFromSharedMemory_mixWithRawContents_andPlainOutputs() throws Exception {
    String key = createObject("mixed", 64);
    MappedByteBuffer in = map(key);
    for (int i = 0; i < 16; i++) {
      in.putInt(i * 4, 10 * i);
    }
    register("mixed", key, 0, 64);
    // INPUT0 from shared memory, INPUT1 in raw_input_contents: raw_input_contents has one entry (Triton's rule).
    ModelInferRequest request = ModelInferRequest.newBuilder().setModelName("simple")
        .addInputs(input("INPUT0", "INT32", 1, 16).toBuilder()
            .putParameters("shared_memory_region", str("mixed"))
            .putParameters("shared_memory_byte_size", int64(64)))
        .addInputs(input("INPUT1", "INT32", 1, 16))
        .addRawInputContents(ints(new int[] {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}))
        .build();
    ModelInferResponse response = fixture.stub().modelInfer(request);
    int[] sum = Tensors.toInts(response.getRawOutputContents(0));
    for (int i = 0; i < 16; i++) {
      assertThat(sum[i]).isEqualTo(10 * i + 1);
    }
  }

  @Test
  void grpc_badRegistrations_areRefusedNamingTheField() throws Exception {
    String key = createObject("bad_reg", 64);
    register("taken", key, 0, 64);
    assertGrpc(() -> register("taken", key, 0, 64), Status.Code.ALREADY_EXISTS, "taken");
    assertGrpc(() -> register("r", "/" + PREFIX + "no_such_object", 0, 64), Status.Code.NOT_FOUND, "no_such_object");
    assertGrpc(() -> register("r", key, 0, 65), Status.Code.INVALID_ARGUMENT, "byte_size");
    assertGrpc(() -> register("r", key, 65, 1), Status.Code.INVALID_ARGUMENT, "offset");
    assertGrpc(() -> register("r", key, 0, 0), Status.Code.INVALID_ARGUMENT, "byte_size");
    assertGrpc(() -> register("r", key, Long.MIN_VALUE, 1), Status.Code.INVALID_ARGUMENT, "offset");
    // Keys are POSIX names: no path escapes, no other directories.
    assertGrpc(() -> register("r", "/../etc/passwd", 0, 1), Status.Code.INVALID_ARGUMENT, "key");
    assertGrpc(() -> register("r", "relative", 0, 1), Status.Code.INVALID_ARGUMENT, "key");
    assertGrpc(() -> register("r", "/..", 0, 1), Status.Code.INVALID_ARGUMENT, "key");
    assertGrpc(() -> register("", key, 0, 1), Status.Code.INVALID_ARGUMENT, "name");
    assertGrpc(() -> fixture.stub().systemSharedMemoryStatus(SystemSharedMemoryStatusRequest.newBuilder()
        .setName("never_registered").build()), Status.Code.NOT_FOUND, "never_registered");
    // CUDA shared memory is refused plainly, never pretended.
    assertGrpc(() -> fixture.stub().cudaSharedMemoryStatus(CudaSharedMemoryStatusRequest.getDefaultInstance()),
        Status.Code.UNIMPLEMENTED, "CUDA shared memory");
  }

  @Test
  void grpc_badTensorReferences_areRefusedNamingTheParameter() throws Exception {
    String inKey = createObject("bad_in", 128);
    String outKey = createObject("bad_out", 128);
    writeInputs(map(inKey));
    register("in", inKey, 0, 128);
    register("out", outKey, 0, 128);
    ModelInferRequest good = shmRequest("in", "out");

    // Offset past the region.
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 1, "shared_memory_offset", int64(100))),
        Status.Code.INVALID_ARGUMENT, "shared_memory_offset");
    // Byte size past the region.
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 0, "shared_memory_byte_size", int64(1000))),
        Status.Code.INVALID_ARGUMENT, "shared_memory_byte_size");
    // Byte size that does not match the tensor's shape.
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 0, "shared_memory_byte_size", int64(60))),
        Status.Code.INVALID_ARGUMENT, "INPUT0");
    // Wrong parameter types.
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 0, "shared_memory_byte_size", str("64"))),
        Status.Code.INVALID_ARGUMENT, "shared_memory_byte_size");
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 0, "shared_memory_region", int64(1))),
        Status.Code.INVALID_ARGUMENT, "shared_memory_region");
    // Unknown region.
    assertGrpc(() -> fixture.stub().modelInfer(withInputParam(good, 0, "shared_memory_region", str("nope"))),
        Status.Code.NOT_FOUND, "nope");
    // Byte size missing.
    ModelInferRequest.Builder noSize = good.toBuilder();
    noSize.setInputs(0, noSize.getInputs(0).toBuilder().removeParameters("shared_memory_byte_size"));
    assertGrpc(() -> fixture.stub().modelInfer(noSize.build()), Status.Code.INVALID_ARGUMENT,
        "shared_memory_byte_size");
    // Offset without a region.
    ModelInferRequest.Builder noRegion = good.toBuilder();
    noRegion.setInputs(0, noRegion.getInputs(0).toBuilder().removeParameters("shared_memory_region"));
    assertGrpc(() -> fixture.stub().modelInfer(noRegion.build()), Status.Code.INVALID_ARGUMENT,
        "shared_memory_region");
    // Contents as well as a region.
    ModelInferRequest.Builder both = good.toBuilder();
    both.setInputs(0, both.getInputs(0).toBuilder().setContents(
        io.quiver.proto.inference.InferTensorContents.newBuilder().addIntContents(1)));
    assertGrpc(() -> fixture.stub().modelInfer(both.build()), Status.Code.INVALID_ARGUMENT, "content");
    // An output region too small for the output.
    ModelInferRequest.Builder small = good.toBuilder();
    small.setOutputs(0, small.getOutputs(0).toBuilder().putParameters("shared_memory_byte_size", int64(16)));
    assertGrpc(() -> fixture.stub().modelInfer(small.build()), Status.Code.INVALID_ARGUMENT,
        "shared_memory_byte_size");
    // Classification and shared memory on the same output.
    ModelInferRequest.Builder classified = good.toBuilder();
    classified.setOutputs(0, classified.getOutputs(0).toBuilder().putParameters("classification", int64(1)));
    assertGrpc(() -> fixture.stub().modelInfer(classified.build()), Status.Code.INVALID_ARGUMENT, "classification");

    // Nothing leaked: the good request still works and the regions unregister.
    fixture.stub().modelInfer(good);
    assertOutputs(map(outKey));
  }

  static ModelInferRequest withInputParam(ModelInferRequest request, int input, String name, InferParameter value) {
    ModelInferRequest.Builder b = request.toBuilder();
    b.setInputs(input, b.getInputs(input).toBuilder().putParameters(name, value));
    return b.build();
  }

  @Test
  void rest_registerStatusInferUnregister_asTritonclientHttpSendsThem() throws Exception {
    String inKey = createObject("rest_in", 128);
    String outKey = createObject("rest_out", 128);
    writeInputs(map(inKey));
    // tritonclient.http: POST /v2/systemsharedmemory/region/<name>/register {"key","offset","byte_size"}.
    assertThat(post("/v2/systemsharedmemory/region/input_data/register",
        "{\"key\":\"" + inKey + "\",\"offset\":0,\"byte_size\":128}").statusCode()).isEqualTo(200);
    assertThat(post("/v2/systemsharedmemory/region/output_data/register",
        "{\"key\":\"" + outKey + "\",\"offset\":0,\"byte_size\":128}").statusCode()).isEqualTo(200);
    HttpResponse<String> status = get("/v2/systemsharedmemory/status");
    assertThat(status.statusCode()).isEqualTo(200);
    JsonNode regions = JSON.readTree(status.body());
    assertThat(regions.isArray()).isTrue();
    assertThat(regions).hasSize(2);
    assertThat(regions.get(0).get("name").asText()).isEqualTo("input_data");
    assertThat(regions.get(0).get("key").asText()).isEqualTo(inKey);
    assertThat(regions.get(0).get("offset").asLong()).isZero();
    assertThat(regions.get(0).get("byte_size").asLong()).isEqualTo(128);
    JsonNode one = JSON.readTree(get("/v2/systemsharedmemory/region/output_data/status").body());
    assertThat(one).hasSize(1);
    assertThat(one.get(0).get("name").asText()).isEqualTo("output_data");

    String body = restBody(64, "output_data", SIZE_64);
    HttpResponse<String> infer = post("/v2/models/simple/infer", body);
    assertThat(infer.statusCode()).as(infer.body()).isEqualTo(200);
    JsonNode outputs = JSON.readTree(infer.body()).get("outputs");
    assertThat(outputs).hasSize(2);
    for (JsonNode output : outputs) {
      assertThat(output.has("data")).isFalse();
      assertThat(output.get("datatype").asText()).isEqualTo("INT32");
      assertThat(output.get("parameters").get("shared_memory_region").asText()).isEqualTo("output_data");
      assertThat(output.get("parameters").get("shared_memory_byte_size").asLong()).isEqualTo(64);
    }
    assertThat(outputs.get(1).get("parameters").get("shared_memory_offset").asLong()).isEqualTo(64);
    assertOutputs(map(outKey));

    // Bad references over REST: 400 (or 404 for an unknown region) with the parameter named.
    HttpResponse<String> outside = post("/v2/models/simple/infer", restBody(100, "output_data", SIZE_64));
    assertThat(outside.statusCode()).isEqualTo(400);
    assertThat(outside.body()).contains("shared_memory_offset").contains("input_data");
    HttpResponse<String> unknown = post("/v2/models/simple/infer", restBody(64, "nope", SIZE_64));
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(unknown.body()).contains("nope");
    HttpResponse<String> negative = post("/v2/models/simple/infer",
        restBody(64, "output_data", "\"shared_memory_byte_size\":-1"));
    assertThat(negative.statusCode()).isEqualTo(400);
    assertThat(negative.body()).contains("shared_memory_byte_size");
    HttpResponse<String> binaryToo = post("/v2/models/simple/infer",
        restBody(64, "output_data", SIZE_64 + ",\"binary_data\":true"));
    assertThat(binaryToo.statusCode()).isEqualTo(400);
    assertThat(binaryToo.body()).contains("binary_data");

    HttpResponse<String> badRegister = post("/v2/systemsharedmemory/region/x/register", "{\"key\":\"" + inKey + "\"}");
    assertThat(badRegister.statusCode()).isEqualTo(400);
    assertThat(badRegister.body()).contains("byte_size");
    HttpResponse<String> tooBig = post("/v2/systemsharedmemory/region/x/register",
        "{\"key\":\"" + inKey + "\",\"offset\":0,\"byte_size\":129}");
    assertThat(tooBig.statusCode()).isEqualTo(400);
    assertThat(tooBig.body()).contains("byte_size");
    assertThat(post("/v2/systemsharedmemory/region/input_data/register",
        "{\"key\":\"" + inKey + "\",\"offset\":0,\"byte_size\":128}").statusCode()).isEqualTo(409);
    assertThat(post("/v2/cudasharedmemory/region/x/register", "{}").statusCode()).isEqualTo(501);

    // Unregister every region: POST /v2/systemsharedmemory/unregister.
    assertThat(post("/v2/systemsharedmemory/unregister", "").statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(get("/v2/systemsharedmemory/status").body())).isEmpty();
  }

  /**
   * tritonclient.http's JSON for simple with both inputs in region input_data (INPUT1 at {@code in1Offset})
   * and both outputs in {@code outRegion}; {@code out0Size} is OUTPUT0's parameters after the region.
   */
  static final String SIZE_64 = "\"shared_memory_byte_size\":64";

  static String restBody(long in1Offset, String outRegion, String out0Size) {
    return "{\"inputs\":["
        + "{\"name\":\"INPUT0\",\"shape\":[1,16],\"datatype\":\"INT32\",\"parameters\":{\"shared_memory_region\":"
        + "\"input_data\",\"shared_memory_byte_size\":64}},"
        + "{\"name\":\"INPUT1\",\"shape\":[1,16],\"datatype\":\"INT32\",\"parameters\":{\"shared_memory_region\":"
        + "\"input_data\",\"shared_memory_byte_size\":64,\"shared_memory_offset\":" + in1Offset + "}}],"
        + "\"outputs\":["
        + "{\"name\":\"OUTPUT0\",\"parameters\":{\"shared_memory_region\":\"" + outRegion + "\","
        + out0Size + "}},"
        + "{\"name\":\"OUTPUT1\",\"parameters\":{\"shared_memory_region\":\"" + outRegion + "\","
        + "\"shared_memory_byte_size\":64,\"shared_memory_offset\":64}}]}";
  }

  static void assertGrpc(org.assertj.core.api.ThrowableAssert.ThrowingCallable call, Status.Code code,
      String message) {
    assertThatThrownBy(call).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
      assertThat(e.getStatus().getCode()).as(e.getStatus().toString()).isEqualTo(code);
      assertThat(e.getStatus().getDescription()).contains(message);
    });
  }

  static String base() {
    return "http://127.0.0.1:" + fixture.server.httpPort();
  }

  static HttpResponse<String> get(String path) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(String path, String body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path)).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
  }

}
