package io.quiver.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class TimersTest {
  @Test
  void theTimersThreadRunsBeforeAnyTask_asADaemonWithItsName_andCancelledTasksLeaveTheQueue() throws Exception {
    ScheduledThreadPoolExecutor timer = Timers.startedNow("quiver-test-timer");
    try {
      assertThat(timer.getPoolSize()).as("started before its first task").isEqualTo(1);
      Thread thread = timer.submit(Thread::currentThread).get(10, TimeUnit.SECONDS);
      assertThat(thread.getName()).isEqualTo("quiver-test-timer");
      assertThat(thread.isDaemon()).isTrue();
      ScheduledFuture<?> later = timer.schedule(() -> { }, 1, TimeUnit.HOURS);
      assertThat(timer.getQueue()).hasSize(1);
      later.cancel(false);
      assertThat(timer.getQueue()).isEmpty();
    } finally {
      timer.shutdownNow();
    }
  }
}
