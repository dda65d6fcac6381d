package io.quiver.server.console;

import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.Function;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * A real headless Chromium driven through ChromeDriver (Debian's {@code chromium} and {@code chromium-driver},
 * installed by {@code .ci/install-test-deps}). Nothing is downloaded: both executables are named, so
 * Selenium Manager never runs. Without them the test fails, naming the install script. Screenshots go to
 * {@code target/console-screenshots/}. One browser per instance; not thread-safe.
 */
final class Browser implements AutoCloseable {
  static final Path CHROMIUM = Path.of(System.getProperty("quiver.chromium", "/usr/bin/chromium"));
  static final Path CHROMEDRIVER = Path.of(System.getProperty("quiver.chromedriver", "/usr/bin/chromedriver"));
  static final Path SCREENSHOTS = Path.of("target", "console-screenshots");
  static final Duration WAIT = Duration.ofSeconds(30);

  final ChromeDriver driver;
  private final Path profile;

  Browser() throws IOException {
    if (!Files.isExecutable(CHROMIUM) || !Files.isExecutable(CHROMEDRIVER)) {
      fail("The console's browser tests need Chromium and ChromeDriver (" + CHROMIUM + ", " + CHROMEDRIVER
          + "): run .ci/install-test-deps (Debian packages chromium and chromium-driver), as .ci/run does.");
    }
    profile = Files.createTempDirectory("quiver-console-chromium-");
    ChromeOptions options = new ChromeOptions();
    options.setBinary(CHROMIUM.toFile());
    options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1000", "--user-data-dir=" + profile);
    ChromeDriverService service = new ChromeDriverService.Builder()
        .usingDriverExecutable(CHROMEDRIVER.toFile())
        .usingAnyFreePort()
        .build();
    driver = new ChromeDriver(service, options);
    driver.manage().timeouts().scriptTimeout(WAIT);
  }

  void open(String url) {
    driver.get(url);
  }

  WebElement find(String css) {
    return until(d -> {
      List<WebElement> found = d.findElements(By.cssSelector(css));
      return found.isEmpty() || !found.get(0).isDisplayed() ? null : found.get(0);
    }, "visible " + css);
  }

  boolean present(String css) {
    return !driver.findElements(By.cssSelector(css)).isEmpty();
  }

  /** Clicks the element once it is visible and enabled (found again if the page re-rendered it meanwhile). */
  void click(String css) {
    until(d -> {
      List<WebElement> found = d.findElements(By.cssSelector(css));
      if (found.isEmpty() || !found.get(0).isDisplayed() || !found.get(0).isEnabled()) {
        return null;
      }
      found.get(0).click();
      return true;
    }, "enabled " + css);
  }

  /** Waits until the page's dialog is closed. */
  void dialogClosed() {
    until(d -> d.findElement(By.id("dialog")).isDisplayed() ? null : true, "the dialog to close");
  }

  /** Waits for the condition to give a non-null, non-false value. */
  <T> T until(Function<WebDriver, T> condition, String what) {
    // The models page re-renders its table every few seconds: an element found just before may be gone.
    return new WebDriverWait(driver, WAIT).withMessage("waiting for " + what)
        .ignoring(org.openqa.selenium.StaleElementReferenceException.class)
        .until(condition::apply);
  }

  /** Runs an async script in the page: the last argument is the callback. */
  Object script(String asyncScript, Object... args) {
    return driver.executeAsyncScript(asyncScript, args);
  }

  Path screenshot(String name) throws IOException {
    Files.createDirectories(SCREENSHOTS);
    Path file = SCREENSHOTS.resolve(name + ".png");
    Files.write(file, driver.getScreenshotAs(OutputType.BYTES));
    return file;
  }

  @Override
  public void close() {
    try {
      driver.quit();
    } finally {
      io.quiver.registry.LocalModelRepository.deleteTree(profile);
    }
  }
}
