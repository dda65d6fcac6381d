package io.quiver.lifecycle;

import io.quiver.core.spi.SchedulerFactory;

/** The scheduler factory the ONNX tests run with. */
public final class TestSchedulers {
  private TestSchedulers() {}

  public static SchedulerFactory factory() {
    return new WorkerThreadSchedulerFactory();
  }
}
