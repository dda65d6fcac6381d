package io.quiver.server.console;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.google.protobuf.util.JsonFormat;
import io.quiver.examples.ExampleModels;
import io.quiver.proto.control.v1.ListModelsRequest;
import io.quiver.proto.control.v1.ModelStatus;
import io.quiver.proto.control.v1.VersionStatus;
import io.quiver.proto.inference.InferStatistics;
import io.quiver.proto.inference.ModelInferRequest;
import io.quiver.proto.inference.ModelInferResponse;
import io.quiver.proto.inference.ModelReadyRequest;
import io.quiver.proto.inference.ModelStatisticsRequest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.WebElement;

/**
 * The console in a real headless Chromium against a real Quiver (no security): every page, every control
 * operation, checked against what gRPC and the control plane then say. One server and one browser for the
 * class; the tests run in order, each on its own model, and write a screenshot of each page to
 * target/console-screenshots/.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleBrowserTest {
  Path scratch;
  ConsoleFixture fixture;
  Browser browser;

  @BeforeAll
  void start(@TempDir Path repository, @TempDir Path scratchDir) throws Exception {
    scratch = scratchDir;
    fixture = new ConsoleFixture(repository, null);
    browser = new Browser();
  }

  @AfterAll
  void stop() throws Exception {
    if (browser != null) {
      browser.close();
    }
    if (fixture != null) {
      fixture.close();
    }
  }

  @Test
  @Order(1)
  void modelsPage_listsTheExampleModels() throws IOException {
    browser.open(fixture.base + "/console/");
    for (String model : List.of("identity_fp32", "simple", "identity_bytes", "mlp_classifier",
        ExampleModels.NO_CONFIG_MODEL, ConsoleFixture.CANARY)) {
      WebElement state = browser.find("tr[data-model='" + model + "'][data-version='1'] td.state");
      assertThat(state.getText()).isEqualTo("READY");
    }
    WebElement row = browser.find("tr[data-model='identity_fp32'][data-version='1']");
    assertThat(row.getText()).contains("onnxruntime_onnx").contains("onnxruntime");
    browser.screenshot("models");
  }

  @Test
  @Order(2)
  void liveView_movesUnderLoad_andAgreesWithTheStatisticsRpc() throws Exception {
    String card = ".version-card[data-version='1'] ";
    try (Load load = new Load(() -> fixture.inference(null), "identity_fp32", 2)) {
      browser.open(fixture.base + "/console/#/live/identity_fp32");
      browser.until(d -> number(card + "[data-field='rate']") > 0 ? true : null, "a request rate above 0");
      long first = (long) number(card + "[data-field='total']");
      browser.until(d -> number(card + "[data-field='total']") > first ? true : null, "the total to move");
      double p50 = number(card + "[data-field='p50']");
      double p90 = number(card + "[data-field='p90']");
      double p99 = number(card + "[data-field='p99']");
      assertThat(p50).isPositive().isLessThanOrEqualTo(p90);
      assertThat(p90).isLessThanOrEqualTo(p99);
      assertThat(number(card + "[data-field='batch']")).isGreaterThanOrEqualTo(1.0);
      assertThat(number(card + "[data-field='compute']")).isPositive();

      // While the load runs: the page's total, sampled after one RPC read and shown before the next,
      // lies between the two (the tolerance is exactly what was served between the two reads).
      for (int round = 0; round < 3; round++) {
        long before = success("identity_fp32");
        long readAt = System.currentTimeMillis();
        browser.until(d -> Long.parseLong(browser.find("#live-updated").getAttribute("data-t")) > readAt ? true : null,
            "a sample taken after the RPC read");
        long pageTotal = (long) number(card + "[data-field='total']");
        long after = success("identity_fp32");
        assertThat(pageTotal).isBetween(before, after);
        assertThat(after).isGreaterThan(before); // still moving
      }
      browser.screenshot("live");
      assertThat(load.failed()).as("requests of the load that failed").isZero();
    }
    // Once the load stops and the 5 s window has passed, the page and the RPC agree exactly.
    browser.until(d -> number(card + "[data-field='rate']") == 0 ? true : null, "the rate to fall to 0");
    InferStatistics stats = statistics("identity_fp32");
    assertThat((long) number(card + "[data-field='total']")).isEqualTo(stats.getSuccess().getCount());
    assertThat(number(card + "[data-field='mean']"))
        .isCloseTo(stats.getSuccess().getNs() / 1e9 / stats.getSuccess().getCount(), within(1e-9));
  }

  @Test
  @Order(3)
  void tryIt_sendsAnInference_andItsCommandsWork() throws Exception {
    browser.open(fixture.base + "/console/#/try/simple");
    browser.click("#try-send");
    WebElement sum = browser.find("[data-output='OUTPUT0'] .values");
    // INPUT0 = INPUT1 = 0..15, so OUTPUT0 = 0, 2, ..., 30.
    assertThat(sum.getText()).isEqualTo("[0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30]");
    browser.screenshot("try-it");

    // The curl command shown, run as shown.
    String curl = browser.find("#try-curl").getText();
    assertThat(curl).contains("/v2/models/simple/infer");
    Process p = new ProcessBuilder("bash", "-c", curl).redirectErrorStream(true).start();
    String answer = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(answer).contains("\"OUTPUT0\"").contains("[0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30]");

    // The grpcurl command's message is valid proto3 JSON for ModelInfer (grpcurl itself is not installed here).
    String grpcurl = browser.find("#try-grpcurl").getText();
    assertThat(grpcurl).contains("inference.GRPCInferenceService/ModelInfer").contains(":" + fixture.server.port());
    String json = grpcurl.substring(grpcurl.indexOf("-d '") + 4, grpcurl.lastIndexOf("}'") + 1);
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder();
    JsonFormat.parser().merge(json, request);
    ModelInferResponse response = fixture.inference(null).modelInfer(request.build());
    ByteBuffer out = response.getRawOutputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    assertThat(out.getInt(15 * 4)).isEqualTo(30);
  }

  @Test
  @Order(4)
  void unloadAndLoad_fromThePage_changeTheStateSeenOverGrpc() throws Exception {
    browser.open(fixture.base + "/console/#/models");
    browser.click("button[data-action='unload'][data-model='simple']");
    assertThat(browser.find("#dialog-title").getText()).isEqualTo("Unload simple?");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    assertThat(ready("simple")).isFalse();
    assertThat(listed("simple").getVersionsList()).isEmpty();
    browser.until(d -> browser.present("tr[data-model='simple'][data-version='']") ? true : null, "simple shown unloaded");

    browser.click("button[data-action='load'][data-model='simple']");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    browser.until(d -> browser.present("tr[data-model='simple'][data-version='1']") ? true : null, "simple shown loaded");
    assertThat(ready("simple")).isTrue();
    assertThat(listed("simple").getVersions(0).getState().name()).isEqualTo("READY");
  }

  @Test
  @Order(5)
  void trafficChange_showsInTheRouting_andTheLiveViewSetsCanaryBesideStable() throws Exception {
    browser.open(fixture.base + "/console/#/models");
    browser.click("button[data-action='traffic'][data-model='" + ConsoleFixture.CANARY + "']");
    setValue("input[data-weight-version='1']", "0");
    setValue("input[data-weight-version='2']", "100");
    addLabel("stable", 1);
    addLabel("canary", 2);
    browser.screenshot("traffic-dialog");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    browser.until(d -> browser.find("tr[data-model='" + ConsoleFixture.CANARY + "'][data-version='2'] td.labels")
        .getText().contains("canary") ? true : null, "the canary label on version 2");

    ModelStatus status = listed(ConsoleFixture.CANARY);
    assertThat(version(status, 2).getWeight()).isEqualTo(100);
    assertThat(version(status, 1).getWeight()).isZero();
    assertThat(version(status, 2).getLabelsList()).containsExactly("canary");
    assertThat(version(status, 1).getLabelsList()).containsExactly("stable");
    for (int i = 0; i < 20; i++) {
      assertThat(infer(ConsoleFixture.CANARY, "", "all-to-2-" + i)).isEqualTo("2");
    }
    assertThat(infer(ConsoleFixture.CANARY, "stable", "s")).isEqualTo("1");
    assertThat(infer(ConsoleFixture.CANARY, "canary", "c")).isEqualTo("2");

    // Now 50 / 50: both versions take version-less requests.
    browser.click("button[data-action='traffic'][data-model='" + ConsoleFixture.CANARY + "']");
    setValue("input[data-weight-version='1']", "50");
    setValue("input[data-weight-version='2']", "50");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    browser.until(d -> browser.find("tr[data-model='" + ConsoleFixture.CANARY + "'][data-version='1'] td.weight")
        .getText().startsWith("50") ? true : null, "weight 50 on version 1");
    Map<String, Integer> seen = new HashMap<>();
    for (int i = 0; i < 200; i++) {
      seen.merge(infer(ConsoleFixture.CANARY, "", "split-" + i), 1, Integer::sum);
    }
    assertThat(seen.keySet()).containsExactlyInAnyOrder("1", "2");
    browser.screenshot("models-traffic");

    try (Load load = new Load(() -> fixture.inference(null), ConsoleFixture.CANARY, 2)) {
      browser.open(fixture.base + "/console/#/live/" + ConsoleFixture.CANARY);
      for (int v = 1; v <= 2; v++) {
        String rate = ".version-card[data-version='" + v + "'] [data-field='rate']";
        browser.until(d -> number(rate) > 0 ? true : null, "traffic on version " + v);
      }
      assertThat(browser.find(".version-card[data-version='1']").getText()).contains("stable");
      assertThat(browser.find(".version-card[data-version='2']").getText()).contains("canary");
      Thread.sleep(4000); // a few seconds of chart
      browser.screenshot("live-canary");
      assertThat(load.failed()).as("requests of the load that failed").isZero();
    }
  }

  @Test
  @Order(6)
  void upload_ofAGeneratedModelVersion_servesRequests() throws Exception {
    ExampleModels.writeMlpClassifier(scratch);
    Path versionDir = scratch.resolve("mlp_classifier").resolve("1");
    String expectedSha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
        .digest(Files.readAllBytes(versionDir.resolve(ExampleModels.MODEL_FILE))));
    browser.open(fixture.base + "/console/#/models");
    browser.click("button[data-action='upload'][data-model='mlp_classifier']");
    assertThat(browser.find("#upload-model").getAttribute("value")).isEqualTo("mlp_classifier");
    browser.find("#upload-version").sendKeys("2");
    browser.driver.findElement(By.id("upload-dir")).sendKeys(versionDir.toAbsolutePath().toString());
    browser.click("#dialog-confirm");
    WebElement digest = browser.find("#upload-result .digest[data-path='model.onnx']");
    assertThat(digest.getAttribute("data-sha256")).isEqualTo(expectedSha);
    assertThat(digest.getText()).contains("matches the browser's");
    assertThat(browser.find("#upload-status").getText()).contains("uploaded mlp_classifier version 2");
    browser.screenshot("upload");
    browser.click("#dialog-confirm"); // Close

    assertThat(listed("mlp_classifier").getVersionsList()).extracting(VersionStatus::getVersion).contains(2L);
    ByteBuffer features = ByteBuffer.allocate(16 * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      features.putFloat(i / 16f);
    }
    ModelInferResponse response = fixture.inference(null).modelInfer(ModelInferRequest.newBuilder()
        .setModelName("mlp_classifier").setModelVersion("2")
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("features").setDatatype("FP32")
            .addShape(1).addShape(16))
        .addRawInputContents(com.google.protobuf.ByteString.copyFrom(features.flip())).build());
    assertThat(response.getModelVersion()).isEqualTo("2");
    ByteBuffer probabilities = response.getRawOutputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float total = 0;
    for (int i = 0; i < 4; i++) {
      total += probabilities.getFloat(i * 4);
    }
    assertThat(total).isCloseTo(1f, within(1e-4f));
  }

  @Test
  @Order(7)
  void serverPage_showsPortsRuntimeAndTheAuditLinesOfThePageActions() throws IOException {
    browser.open(fixture.base + "/console/#/server");
    assertThat(browser.find("[data-fact='gRPC port']").getText()).isEqualTo(String.valueOf(fixture.server.port()));
    assertThat(browser.find("[data-fact='control port']").getText()).isEqualTo(String.valueOf(fixture.server.controlPort()));
    assertThat(browser.find("[data-fact='TLS']").getText()).isEqualTo("plaintext");
    assertThat(browser.find("[data-fact='heap']").getText()).contains("used of");
    String audit = browser.find("#audit").getText();
    assertThat(audit).contains("op=UnloadModel model=simple").contains("op=SetTraffic model=" + ConsoleFixture.CANARY)
        .contains("op=UploadModel model=mlp_classifier").contains("who=console /127.0.0.1");
    browser.screenshot("server");
  }

  // ---------------------------------------------------------------------------------------------

  private double number(String css) {
    List<WebElement> found = browser.driver.findElements(By.cssSelector(css));
    if (found.isEmpty()) {
      return -1;
    }
    String value = found.get(0).getAttribute("data-value");
    return value == null || value.isEmpty() ? -1 : Double.parseDouble(value);
  }

  private void setValue(String css, String value) {
    WebElement input = browser.find(css);
    input.clear();
    input.sendKeys(value);
  }

  private void addLabel(String label, long version) {
    browser.click("#traffic-add-label");
    List<WebElement> names = browser.driver.findElements(By.cssSelector("#traffic-labels .label-name"));
    List<WebElement> versions = browser.driver.findElements(By.cssSelector("#traffic-labels .label-version"));
    names.get(names.size() - 1).sendKeys(label);
    versions.get(versions.size() - 1).sendKeys(Long.toString(version));
  }

  private boolean ready(String model) {
    return fixture.inference(null).modelReady(ModelReadyRequest.newBuilder().setName(model).build()).getReady();
  }

  private ModelStatus listed(String model) {
    return fixture.controlPlane(null).listModels(ListModelsRequest.newBuilder().setName(model).build()).getModels(0);
  }

  private static VersionStatus version(ModelStatus status, long version) {
    return status.getVersionsList().stream().filter(v -> v.getVersion() == version).findFirst().orElseThrow();
  }

  private InferStatistics statistics(String model) {
    return fixture.inference(null).modelStatistics(ModelStatisticsRequest.newBuilder().setName(model).build())
        .getModelStats(0).getInferenceStats();
  }

  private long success(String model) {
    return statistics(model).getSuccess().getCount();
  }

  /** Sends one identity request; returns the version that answered. */
  private String infer(String model, String version, String id) {
    ByteBuffer bytes = ByteBuffer.allocate(16 * 4).order(ByteOrder.LITTLE_ENDIAN);
    return fixture.inference(null).modelInfer(ModelInferRequest.newBuilder().setModelName(model).setModelVersion(version)
        .setId(id)
        .addInputs(ModelInferRequest.InferInputTensor.newBuilder().setName("INPUT0").setDatatype("FP32")
            .addShape(1).addShape(16))
        .addRawInputContents(com.google.protobuf.ByteString.copyFrom(bytes)).build()).getModelVersion();
  }
}
