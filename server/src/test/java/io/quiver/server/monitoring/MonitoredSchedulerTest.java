package io.quiver.server.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.InferRequest;
import io.quiver.core.InferenceStats;
import io.quiver.core.spi.InferenceScheduler;
import io.quiver.core.spi.SchedulerDecorator;
import java.lang.reflect.Method;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MonitoredSchedulerTest {
  /**
   * The wrapper must forward every scheduler method, default ones included: a method the interface
   * gains later (the batcher is being reworked) would otherwise silently run the interface's default
   * for monitored versions only.
   */
  @Test
  void forwardsEverySchedulerMethod() throws Exception {
    for (Method m : InferenceScheduler.class.getMethods()) {
      if (java.lang.reflect.Modifier.isStatic(m.getModifiers())) {
        continue;
      }
      Method own = MonitoredScheduler.class.getMethod(m.getName(), m.getParameterTypes());
      assertThat(own.getDeclaringClass()).as("%s", m).isEqualTo(MonitoredScheduler.class);
    }
    assertThat(Arrays.stream(InferenceScheduler.class.getMethods()).map(Method::getName))
        .contains("submit", "close", "stats");
  }

  /** What stands behind the monitor (an ensemble's scheduler, the response cache) stays findable. */
  @Test
  void isADecorator_soSchedulersBehindItAreFound() {
    final class Inner implements InferenceScheduler {
      @Override public void submit(InferRequest request) {}
      @Override public int queuedRequests() { return 0; }
      @Override public int inFlightRequests() { return 0; }
      @Override public InferenceStats stats() { return null; }
      @Override public void close() {}
    }
    Inner inner = new Inner();
    MonitoredScheduler monitored = new MonitoredScheduler(inner, null, null);
    assertThat(monitored.inner()).isSameAs(inner);
    assertThat(SchedulerDecorator.find(monitored, Inner.class)).isSameAs(inner);
  }
}
