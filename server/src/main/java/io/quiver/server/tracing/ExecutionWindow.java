package io.quiver.server.tracing;

/**
 * The last model execution on this thread: when {@code ModelRunner.run} started and ended, for which
 * model version, and how many rows the batch had. Written by the timing runner wrapper on an instance
 * worker thread; read by the completion callback, which the batcher calls on that same worker thread
 * right after the batch ran (see {@link ServerTracing#finish}). One mutable object per worker thread:
 * recording allocates nothing. Only used while tracing is on.
 */
public final class ExecutionWindow {
  private static final ThreadLocal<ExecutionWindow> CURRENT = ThreadLocal.withInitial(ExecutionWindow::new);

  String model;
  long version;
  long startNanos;
  long endNanos;
  long rows;

  private ExecutionWindow() {
  }

  /** Worker thread, after each {@code run} (also a failed one). */
  public static void record(String model, long version, long startNanos, long endNanos, long rows) {
    ExecutionWindow w = CURRENT.get();
    w.model = model;
    w.version = version;
    w.startNanos = startNanos;
    w.endNanos = endNanos;
    w.rows = rows;
  }

  /** This thread's window; its model is null when this thread never ran a model. */
  static ExecutionWindow current() {
    return CURRENT.get();
  }
}
