package io.quiver.bench.perf;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The context-switch reading: parsed from /proc status text, and monotonic while threads come and go. */
class ServerProbeTest {
  @Test
  void switchesOf_addsVoluntaryAndInvoluntary() {
    String status = "Name:\tjava\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
    assertThat(ServerProbe.switchesOf(status)).isEqualTo(127);
  }

  @Test
  void contextSwitches_neverGoBack_whenThreadsEnd() throws Exception {
    try (ServerProbe probe = new ServerProbe(ProcessHandle.current().pid())) {
      long first = probe.contextSwitches();
      assertThat(first).isZero(); // counted from the first reading
      List<Thread> threads = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        Thread t = new Thread(() -> {
          for (int k = 0; k < 50; k++) {
            try {
              Thread.sleep(1); // voluntary switches
            } catch (InterruptedException e) {
              return;
            }
          }
        });
        t.start();
        threads.add(t);
      }
      long during = probe.contextSwitches();
      for (Thread t : threads) {
        t.join();
      }
      long after = probe.contextSwitches(); // the threads are gone: their switches stay counted
      assertThat(during).isGreaterThanOrEqualTo(first);
      assertThat(after).isGreaterThanOrEqualTo(during);
      assertThat(after).isPositive();
    }
  }
}
