package io.quiver.server.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import io.quiver.core.spi.InferenceScheduler;
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
}
