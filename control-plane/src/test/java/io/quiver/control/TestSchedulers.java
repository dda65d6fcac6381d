package io.quiver.control;

import io.quiver.core.spi.SchedulerFactory;

/** The scheduler factory the ONNX tests run with. */
final class TestSchedulers {
  private TestSchedulers() {}

  static SchedulerFactory factory() {
    return new WorkerThreadSchedulerFactory();
  }
}
