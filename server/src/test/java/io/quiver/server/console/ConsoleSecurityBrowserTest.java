package io.quiver.server.console;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.quiver.proto.inference.ModelReadyRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * The console with authentication on, in a real headless Chromium: no credential, no console; a key
 * that may only read metadata sees the models but cannot unload (the page offers no button, and the API
 * refuses the request made anyway); an admin key unloads through the control plane with the same audit
 * lines as the CLI. No credential ever reaches a URL or a log line.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConsoleSecurityBrowserTest {
  static final String ADMIN_KEY = "console-test-ops-key-0123456789";
  static final String READER_KEY = "console-test-reader-key-9876543210";
  ConsoleFixture fixture;
  Browser browser;
  ListAppender<ILoggingEvent> logs;
  HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeAll
  void start(@TempDir Path repository, @TempDir Path config) throws Exception {
    Files.writeString(config.resolve("security.json"), """
        {
          "api_keys": [
            {"name": "ops", "sha256": "%s", "roles": ["admin"]},
            {"name": "reader", "sha256": "%s", "roles": ["reader"]}
          ],
          "roles": {
            "reader": {"models": {"*": ["metadata"]}},
            "admin": {"models": {"*": ["infer", "metadata"]}, "admin": true}
          }
        }
        """.formatted(sha256(ADMIN_KEY), sha256(READER_KEY)));
    logs = new ListAppender<>();
    logs.start();
    ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).addAppender(logs);
    fixture = new ConsoleFixture(repository, config.resolve("security.json"));
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
    ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(logs);
    // Whatever happened above, no log line carried a key.
    for (ILoggingEvent event : logs.list) {
      assertThat(event.getFormattedMessage()).doesNotContain(ADMIN_KEY).doesNotContain(READER_KEY);
    }
  }

  @Test
  @Order(1)
  void withoutACredential_theConsoleAsksForOne_andItsApiRefuses() throws Exception {
    browser.open(fixture.base + "/console/");
    browser.find("#login-value");
    assertThat(browser.present("#models-table")).isFalse();
    browser.screenshot("sign-in");
    assertThat(get("/console/api/models", null).statusCode()).isEqualTo(401);
    assertThat(get("/console/api/session", null).statusCode()).isEqualTo(401);
    assertThat(get("/console/api/server", null).statusCode()).isEqualTo(401);
    HttpResponse<String> unload = http.send(HttpRequest.newBuilder(URI.create(fixture.base + "/console/api/models/simple/unload"))
        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(unload.statusCode()).isEqualTo(401);
    assertThat(ready("simple")).isTrue();
    // A wrong key is refused as well, and the page says so.
    signIn("not-a-key");
    assertThat(browser.find("#login-error").getText()).contains("unknown API key");
  }

  @Test
  @Order(2)
  void metadataOnlyKey_readsTheModels_butCannotUnload() {
    signIn(READER_KEY);
    assertThat(browser.find("tr[data-model='simple'][data-version='1'] td.state").getText()).isEqualTo("READY");
    assertThat(browser.find("#who").getText()).isEqualTo("reader (read-only)");
    assertThat(browser.find("button[data-action='unload'][data-model='simple']").isEnabled()).isFalse();
    assertThat(browser.driver.getCurrentUrl()).doesNotContain(READER_KEY);
    // The request the page would not make, made from the page anyway: refused by the control plane's own check.
    Object status = browser.script("""
        const done = arguments[arguments.length - 1];
        const c = JSON.parse(sessionStorage.getItem('quiver.console.credential'));
        fetch('/console/api/session', {headers: {'x-api-key': c.value}}).then((r) => r.json())
          .then((s) => fetch('/console/api/models/simple/unload',
            {method: 'POST', headers: {'x-api-key': c.value, 'x-quiver-csrf': s.csrf}}))
          .then((r) => r.text().then((t) => done(r.status + ' ' + t))).catch((e) => done('error ' + e));
        """);
    assertThat(String.valueOf(status)).startsWith("403").contains("'reader' may not perform administration");
    assertThat(ready("simple")).isTrue();
    assertThat(logs.list).anySatisfy(e -> assertThat(e.getFormattedMessage())
        .contains("'reader' denied administration (quiver.control.v1.ModelControl/UnloadModel) from console /127.0.0.1"));
    // The server page: visible to a reader of every model, audit lines for administrators only.
    browser.open(fixture.base + "/console/#/server");
    assertThat(browser.find("[data-fact='authentication']").getText()).startsWith("API keys / JWT");
    assertThat(browser.present("#audit")).isFalse();
  }

  @Test
  @Order(3)
  void adminKey_unloadsThroughTheControlPlane_withTheCliAuditLines() {
    browser.open(fixture.base + "/console/#/models");
    browser.click("#logout");
    signIn(ADMIN_KEY);
    assertThat(browser.find("#who").getText()).isEqualTo("ops (admin)");
    browser.click("button[data-action='unload'][data-model='simple']");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    assertThat(ready("simple")).isFalse();
    assertThat(logs.list).anySatisfy(e -> assertThat(e.getFormattedMessage())
        .contains("quiver.control.v1.ModelControl/UnloadModel by 'ops' from console /127.0.0.1"));
    assertThat(logs.list).anySatisfy(e -> assertThat(e.getFormattedMessage())
        .startsWith("who=console /127.0.0.1").contains("op=UnloadModel model=simple").contains("result=OK"));
    browser.click("button[data-action='load'][data-model='simple']");
    browser.click("#dialog-confirm");
    browser.dialogClosed();
    assertThat(ready("simple")).isTrue();
    browser.open(fixture.base + "/console/#/server");
    assertThat(browser.find("#audit").getText()).contains("op=LoadModel model=simple");
    assertThat(browser.driver.getCurrentUrl()).doesNotContain(ADMIN_KEY);
  }

  private void signIn(String key) {
    browser.find("#login-value").sendKeys(key);
    browser.click("#login-submit");
    if (!key.startsWith("not-")) {
      browser.find("#nav");
    }
  }

  private boolean ready(String model) {
    return fixture.inference(ADMIN_KEY).modelReady(ModelReadyRequest.newBuilder().setName(model).build()).getReady();
  }

  private HttpResponse<String> get(String path, String key) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(fixture.base + path)).GET();
    if (key != null) {
      b.header("x-api-key", key);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static String sha256(String key) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
  }
}
